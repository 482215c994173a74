"""Server behaviour knobs in one frozen value, with presets per Phoenix version.

Defaults follow Phoenix 1.8.12 on Cowboy. ``ServerSettings.phoenix_1_7()``
reproduces the Phoenix 1.7.23 + Bandit 1.11.1 server of the recordings in
``tests/golden`` (no join_ref check, ``{}`` crash payload, 1000 on socket-id
disconnect, 1002 on idle timeout, no channel limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

JoinRefCheck = Literal["1.8.12", "1.8.3", "none"]
"""How a message whose join_ref differs from the joined channel's is treated (§3.4).

* ``"1.8.12"``: forwarded iff its join_ref is null or equals the stored one.
* ``"1.8.3"``: forwarded iff its join_ref equals the stored one, or the stored one is null.
* ``"none"``: Phoenix <= 1.8.2, everything is forwarded except a mismatched
  ``phx_leave``, which is ignored unless the stored join_ref is null.
"""

CHANNEL_CRASH: Mapping[str, Any] = MappingProxyType({"reason": "channel_crash"})
"""The ``phx_error`` payload of Phoenix >= 1.8.10."""

LEGACY_CRASH: Mapping[str, Any] = MappingProxyType({})
"""The ``phx_error`` payload of older Phoenix."""

_CHECKS = ("1.8.12", "1.8.3", "none")


@dataclass(frozen=True)
class ServerSettings:
    """Protocol behaviour of a :class:`~maxsdk.server.PhoenixServer`.

    Durations are float seconds; ``None`` disables a limit or timer.

    Attributes:
        join_ref_check: Stale join_ref rule, see :data:`JoinRefCheck`.
        crash_payload: ``phx_error`` payload after a channel crash.
        max_channels_per_transport: Joined channels per connection before
            ``{"reason": "too many channels joined"}``; ``None`` = unlimited.
        idle_timeout: Close a connection that received nothing for this long (§1.6).
        idle_close_code: Close code of the idle timeout (Cowboy 1000, Bandit 1002).
        disconnect_close_code: Close code of a socket-id ``disconnect`` (1001 since 1.8.8).
        auth_token: Accept the Phoenix 1.8 ``authToken`` subprotocol (§1.4).
        allowed_origins: When set, a request whose ``Origin`` header is not in
            it gets 403 (``check_origin``); requests without ``Origin`` pass.
        channel_shutdown_timeout: How long a channel may take to shut down
            (duplicate join, connection end) before it is killed; Phoenix waits 5 s.
        close_timeout: How long a server-initiated close waits for the client's close frame.
        handshake_timeout: How long a new TCP connection may take to send its upgrade request.
        max_frame_size: Largest client frame in bytes; ``None`` = unlimited (Phoenix default).
        longpoll_window: How long a long-poll GET is held when nothing is buffered
            (Phoenix's ``window_ms``, 10 s); a session nobody polls for 1.5 x this expires (§1.8).
        max_workers: Upper bound of the worker threads that run channel callbacks.
        record_limit: How many received messages and connection events are kept for tests.

    """

    join_ref_check: JoinRefCheck = "1.8.12"
    crash_payload: Mapping[str, Any] = field(default_factory=lambda: CHANNEL_CRASH)
    max_channels_per_transport: int | None = 100
    idle_timeout: float | None = 60.0
    idle_close_code: int = 1000
    disconnect_close_code: int = 1001
    auth_token: bool = False
    allowed_origins: tuple[str, ...] | None = None
    channel_shutdown_timeout: float = 5.0
    close_timeout: float = 2.0
    handshake_timeout: float = 5.0
    max_frame_size: int | None = None
    longpoll_window: float = 10.0
    max_workers: int = 256
    record_limit: int = 100_000

    def __post_init__(self) -> None:
        if self.join_ref_check not in _CHECKS:
            raise ValueError(f"join_ref_check must be one of {_CHECKS}, not {self.join_ref_check!r}")
        limit = self.max_channels_per_transport
        if limit is not None and limit < 1:
            raise ValueError("max_channels_per_transport must be >= 1 or None")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 or None")
        if self.longpoll_window <= 0:
            raise ValueError("longpoll_window must be > 0")
        for name in ("idle_close_code", "disconnect_close_code"):
            code = getattr(self, name)
            if not 1000 <= code <= 4999:
                raise ValueError(f"{name} must be a WebSocket close code, not {code!r}")
        if self.max_workers < 1 or self.record_limit < 1:
            raise ValueError("max_workers and record_limit must be >= 1")
        object.__setattr__(self, "crash_payload", MappingProxyType(dict(self.crash_payload)))

    @classmethod
    def phoenix_1_7(cls, **overrides: Any) -> ServerSettings:
        """Settings matching the Phoenix 1.7.23 / Bandit server of the golden recordings."""
        base = cls(
            join_ref_check="none",
            crash_payload=LEGACY_CRASH,
            max_channels_per_transport=None,
            idle_close_code=1002,
            disconnect_close_code=1000,
        )
        return replace(base, **overrides)

    def with_changes(self, **changes: Any) -> ServerSettings:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)
