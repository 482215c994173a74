"""Receivers of incoming events, run by ``manage.py maxsdk_listen`` on the client's dispatcher thread.

Each event is handled once, by the listener process, not once per web
worker. Database connections are handled as for a request (closed when stale).
"""

from typing import Any

from chat.models import Message
from maxsdk.integrations.django import on_event


@on_event("shout", topic="room:*")
def store_shout(sender: Any, *, topic: str, payload: Any, **kwargs: Any) -> None:
    payload = payload if isinstance(payload, dict) else {}
    Message.objects.create(topic=topic, user=str(payload.get("user", "?")), body=str(payload.get("body", "")))
