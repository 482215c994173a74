"""The Phoenix message envelope and the reserved event names (reference §2.1, §3.1)."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "HEARTBEAT",
    "PHOENIX_TOPIC",
    "PHX_CLOSE",
    "PHX_ERROR",
    "PHX_JOIN",
    "PHX_LEAVE",
    "PHX_REPLY",
    "RESERVED_EVENTS",
    "Message",
]

PHX_JOIN = "phx_join"
PHX_REPLY = "phx_reply"
PHX_LEAVE = "phx_leave"
PHX_CLOSE = "phx_close"
PHX_ERROR = "phx_error"
HEARTBEAT = "heartbeat"
PHOENIX_TOPIC = "phoenix"

#: Events users may not push themselves: the client sends and interprets them.
RESERVED_EVENTS = frozenset({PHX_JOIN, PHX_REPLY, PHX_LEAVE, PHX_CLOSE, PHX_ERROR})


class Message(NamedTuple):
    """One Phoenix message, in either direction.

    A ``NamedTuple`` rather than a dataclass: it is built for every frame, and
    tuple construction is the cheapest immutable record Python offers.

    Attributes:
        join_ref: ref of the join that created the channel incarnation, or ``None``.
        ref: the request ref echoed by replies, or ``None``.
        topic: the channel topic (``"phoenix"`` for heartbeats).
        event: the event name.
        payload: a JSON value, or ``bytes`` for binary frames. A decoded
            ``phx_reply`` always has a dict ``{"status": str, "response": ...}``.

    """

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any
