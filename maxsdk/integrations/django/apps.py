"""The Django app config of ``maxsdk.integrations.django``."""

from __future__ import annotations

from django.apps import AppConfig


class MaxsdkConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    """Registers the settings hook and, with ``EAGER``, connects at startup."""

    name = "maxsdk.integrations.django"
    label = "maxsdk"
    verbose_name = "maxsdk"

    def ready(self) -> None:
        """Hook ``setting_changed`` and connect now if ``settings.MAXSDK["EAGER"]`` asks for it."""
        from maxsdk.integrations.django import _ready

        _ready()
