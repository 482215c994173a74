"""Connection params for the maxsdk client (``settings.MAXSDK["PARAMS"]`` points here)."""

import os


def connect_params() -> dict[str, str]:
    """Called on every connection attempt; a real app would return a fresh token here."""
    return {"user_id": f"django-{os.getpid()}"}
