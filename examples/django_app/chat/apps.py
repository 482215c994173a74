"""The chat app config: importing the receivers module connects them."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from chat import handlers  # noqa: F401 - connects the @on_event receivers
