"""The socket-level ``connect`` decision (Phoenix's ``connect/3`` and ``id/1``, §1.5).

A connect handler receives a :class:`ConnectRequest` and returns
:class:`Accept` (optionally with assigns and a socket id), :class:`Refuse`
(HTTP 403 by default, or any status), or simply ``True``/``False``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from .serializer import Serializer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectRequest:
    """What the server knows about a connection attempt.

    Attributes:
        params: Query-string params, decoded like Plug (values are strings).
        vsn: The negotiated serializer version (``"1.0.0"`` or ``"2.0.0"``).
        auth_token: The Phoenix 1.8 ``authToken`` (only when enabled in settings).
        headers: Request headers (names lower-cased; repeated headers joined by ``", "``).
        path: The request path without the query string.
        remote_address: The peer's ``(host, port)``.
        transport: ``"websocket"`` or ``"longpoll"``.

    """

    params: Mapping[str, Any]
    vsn: str
    auth_token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = ""
    remote_address: Any = None
    transport: str = "websocket"


@dataclass(frozen=True)
class Accept:
    """Accept the connection.

    Attributes:
        assigns: Initial assigns, copied into every channel's socket.
        socket_id: Socket id (e.g. ``"user_socket:42"``); a ``disconnect``
            broadcast to it closes every connection with that id.

    """

    assigns: Mapping[str, Any] = field(default_factory=dict)
    socket_id: str | None = None


@dataclass(frozen=True)
class Refuse:
    """Refuse the connection with an HTTP status (Phoenix answers 403 to ``:error``)."""

    status: int = 403


ConnectDecision = Union[Accept, Refuse, bool, None]
"""``True``/``None`` accept, ``False`` refuses with 403."""

ConnectHandler = Callable[[ConnectRequest], ConnectDecision]
"""Decides whether a connection may open."""


@dataclass(frozen=True)
class Accepted:
    """A connection the handshake let through: everything a session starts from."""

    request: ConnectRequest
    serializer: Serializer
    assigns: Mapping[str, Any]
    socket_id: str | None


def accept_all(request: ConnectRequest) -> ConnectDecision:
    """A connect handler that accepts every connection."""
    return Accept()


def normalize(decision: ConnectDecision) -> Accept | Refuse:
    """Turn a handler's return value into :class:`Accept` or :class:`Refuse`.

    Like Phoenix, an invalid return value or a socket id that is not a string
    refuses the connection with 403 (and logs an error).
    """
    if decision is None or decision is True:
        return Accept()
    if decision is False:
        return Refuse()
    if isinstance(decision, Refuse):
        return decision
    if isinstance(decision, Accept):
        if decision.socket_id is None or isinstance(decision.socket_id, str):
            return decision
        logger.error("connect handler returned an invalid socket id %r; expected a string or None", decision.socket_id)
        return Refuse()
    logger.error("connect handler returned %r; expected Accept, Refuse or a bool", decision)
    return Refuse()
