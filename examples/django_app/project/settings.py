"""Settings of the example project (development only: the secret key is public)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "maxsdk.integrations.django",  # settings hook, EAGER, and the maxsdk_listen command
    "chat",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

MAXSDK = {
    # `runserver` starts an embedded server and sets MAXSDK_URL (see manage.py); else `maxsdk serve`'s address.
    "URL": os.environ.get("MAXSDK_URL", "ws://127.0.0.1:4000/socket"),
    # A callable, by dotted path: evaluated on every connection attempt, in the process that connects.
    "PARAMS": "chat.realtime.connect_params",
    "OPTIONS": {"timeout": 5.0},
    "TOPICS": ["room:lobby"],  # what `manage.py maxsdk_listen` joins
    "EAGER": os.environ.get("MAXSDK_EAGER") == "1",  # connect at startup in serving processes
}

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"maxsdk": {"handlers": ["console"], "level": os.environ.get("MAXSDK_LOG_LEVEL", "WARNING")}},
}
