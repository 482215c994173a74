"""Choosing and opening a transport: ``"websocket"`` (default), ``"longpoll"`` or ``"auto"``.

The engine calls its :class:`TransportSelector` on every connection attempt.
Every transport satisfies :class:`maxsdk._runtime.transport.Transport`; one
that cannot carry heartbeats says so with ``heartbeats = False`` (long-poll:
the reference says no heartbeats there).

``"auto"`` tries WebSocket first and falls back to long-poll (phoenix.js's
``longPollFallbackMs``, reference §5.1) when

* the upgrade fails the way a proxy that blocks WebSockets makes it fail:
  any HTTP status but 101 that is not 401/403 (those are about credentials),
  or a reset/EOF/garbage during the handshake — at once;
* or, with ``longpoll_fallback_after`` set, no WebSocket opened within that
  many seconds of the first failing attempt (attempts are cut short to fit).

Connection refused, DNS failures and TLS verification failures never fall
back on their own (long-poll would fail the same way). Once a WebSocket has
opened, the client sticks to WebSocket (phoenix.js: only a primary that never
passed its health check is abandoned). A fallback is remembered for the
process, per endpoint, once the long-poll session opened: later connections
(and new clients) to that endpoint go straight to long-poll. Each switch is
reported through ``on_fallback(from_=..., to=..., reason=...)`` (the engine
sends :data:`maxsdk.signals.transport_fallback`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable
from urllib.parse import urlsplit

from maxsdk._runtime.transport import Transport, TransportOptions, open_websocket
from maxsdk.errors import ConfigurationError, ConnectFailedError, HandshakeError, TLSVerificationError

__all__ = [
    "TRANSPORTS",
    "TransportSelector",
    "forget_transport_choices",
    "open_transport",
    "remembered_transport",
]

log = logging.getLogger("maxsdk.transport")

TRANSPORTS = ("websocket", "longpoll", "auto")

FallbackListener = Callable[..., None]
"""Called as ``listener(from_="websocket", to="longpoll", reason=str)``."""

_MIN_ATTEMPT = 0.05  # seconds: the shortest WebSocket attempt worth making within the fallback budget
_NOT_A_PROXY = ("connection refused", "name resolution failed", "timed out")

_choices: dict[str, str] = {}
_choices_lock = threading.Lock()


def open_transport(kind: str, url: str, options: TransportOptions, *, redacted_url: str) -> Transport:
    """Open a transport of ``kind`` to the WebSocket-style ``url`` (one attempt, no timing state).

    Raises:
        ConfigurationError: unknown transport kind.
        ConnectFailedError: (and subclasses) when the connection cannot be opened.

    """
    return TransportSelector(kind)(url, options, redacted_url)


def remembered_transport(url: str) -> str | None:
    """The transport ``"auto"`` settled on for ``url``'s endpoint in this process, if it fell back."""
    with _choices_lock:
        return _choices.get(_endpoint_key(url))


def forget_transport_choices() -> None:
    """Forget every remembered fallback (tests; or after the network changed)."""
    with _choices_lock:
        _choices.clear()


class TransportSelector:
    """Opens the transports of one client, applying the ``"auto"`` fallback rules.

    Args:
        kind: ``"websocket"``, ``"longpoll"`` or ``"auto"``.
        fallback_after: with ``"auto"``, fall back when no WebSocket opened
            within this many seconds (``None``: only on proxy-like failures).
        on_fallback: told about each switch (see :data:`FallbackListener`).
        clock: a monotonic clock (tests).

    Raises:
        ConfigurationError: unknown ``kind``.

    """

    def __init__(
        self,
        kind: str,
        *,
        fallback_after: float | None = None,
        on_fallback: FallbackListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if kind not in TRANSPORTS:
            raise ConfigurationError(f"transport {kind!r} is not available; use one of {', '.join(TRANSPORTS)}")
        self.kind = kind
        self._fallback_after = fallback_after
        self._on_fallback = on_fallback
        self._clock = clock
        self._failing_since: float | None = None
        self._websocket_opened = False
        self._switched = False

    def __call__(self, url: str, options: TransportOptions, redacted_url: str) -> Transport:
        """Open the next connection (the engine's ``transport_factory`` signature)."""
        if self.kind == "websocket":
            return open_websocket(url, options, redacted_url=redacted_url)
        if self.kind == "longpoll":
            from maxsdk._runtime.longpoll import open_longpoll  # requests only when used

            return open_longpoll(url, options, redacted_url=redacted_url)
        return self._auto(url, options, redacted_url)

    def _auto(self, url: str, options: TransportOptions, redacted_url: str) -> Transport:
        if not self._websocket_opened and remembered_transport(url) == "longpoll":
            return self._fall_back(url, options, redacted_url, "long-poll was chosen for this endpoint before")
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        attempt = options
        budget = self._budget(now)
        if budget is not None:
            if budget < _MIN_ATTEMPT:
                return self._fall_back(url, options, redacted_url, self._timeout_reason())
            attempt = replace(options, connect_timeout=min(options.connect_timeout, budget))
        try:
            transport = open_websocket(url, attempt, redacted_url=redacted_url)
        except ConnectFailedError as exc:
            if self._websocket_opened or (options.attempt is not None and options.attempt.aborted):
                raise  # WebSocket worked here before, or close() stopped the attempt: not a blocking proxy
            reason = _proxy_reason(exc)
            if reason is None:
                budget = self._budget(self._clock())
                if budget is None or budget >= _MIN_ATTEMPT:
                    raise
                reason = f"{self._timeout_reason()} (last error: {exc})"
            return self._fall_back(url, options, redacted_url, reason)
        self._failing_since = None
        self._websocket_opened = True
        return transport

    def _budget(self, now: float) -> float | None:
        """Seconds left before the time-based fallback, or ``None`` when it does not apply."""
        if self._fallback_after is None or self._websocket_opened or self._failing_since is None:
            return None
        return self._failing_since + self._fallback_after - now

    def _timeout_reason(self) -> str:
        return f"no WebSocket connection within {self._fallback_after:g} s"

    def _fall_back(self, url: str, options: TransportOptions, redacted_url: str, reason: str) -> Transport:
        try:
            from maxsdk._runtime.longpoll import open_longpoll

            transport = open_longpoll(url, options, redacted_url=redacted_url)
        except ConnectFailedError as exc:
            if not isinstance(exc, (HandshakeError, TLSVerificationError)):
                # Nothing answers at all (server down?): give WebSocket a whole new window.
                self._failing_since = None
            raise
        with _choices_lock:
            _choices[_endpoint_key(url)] = "longpoll"
        if not self._switched:
            self._switched = True
            log.warning("falling back from WebSocket to long-poll for %s: %s", redacted_url, reason)
            if self._on_fallback is not None:
                self._on_fallback(from_="websocket", to="longpoll", reason=reason)
        return transport


def _proxy_reason(error: ConnectFailedError) -> str | None:
    """Why ``error`` suggests a proxy that blocks WebSockets, or ``None`` if it does not."""
    if isinstance(error, TLSVerificationError):
        return None
    if isinstance(error, HandshakeError):
        if error.status in (401, 403):
            return None
        return f"the WebSocket upgrade was answered with HTTP {error.status}"
    detail = str(error).rsplit(": ", 1)[-1]
    if any(marker in detail for marker in _NOT_A_PROXY):
        return None
    return f"the WebSocket handshake failed ({detail})"


def _endpoint_key(url: str) -> str:
    """``scheme://host:port/path`` of a connection URL (no credentials, no query)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    path = parts.path.rstrip("/")
    for suffix in ("/websocket", "/longpoll"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return f"{scheme}://{(parts.hostname or '').lower()}:{port or ''}{path}"
