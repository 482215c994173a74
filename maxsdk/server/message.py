"""Envelope types of the server side of the protocol (reference §2.1).

A decoded client message is a :class:`Message`. What the server writes is a
:data:`Frame`: ``str`` for a WebSocket text frame, ``bytes`` for a binary one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

Ref = Union[str, int, None]
"""A ``join_ref`` or ``ref``: phoenix.js sends decimal strings; other clients may send numbers."""

Frame = Union[str, bytes]
"""One outgoing frame: text (``str``) or binary (``bytes``)."""

OutPayload = Union[Mapping[str, Any], bytes]
"""What the server may push, broadcast or reply: a JSON object or raw bytes (§2.3, §2.4)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded client message.

    Attributes:
        join_ref: The join this message belongs to (may be ``None``).
        ref: The client's request id, echoed in the reply (may be ``None``).
        topic: The topic, e.g. ``"room:lobby"``; ``"phoenix"`` for heartbeats.
        event: The event name, e.g. ``"phx_join"``.
        payload: The decoded JSON value, or ``bytes`` for a binary push.

    """

    join_ref: Ref
    ref: Ref
    topic: str
    event: str
    payload: Any
