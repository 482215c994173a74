"""``manage.py maxsdk_listen``."""
