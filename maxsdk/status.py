"""Connection state and the diagnostic snapshot of a client."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["ChannelSnapshot", "ConnectionState", "Diagnostics"]


class ConnectionState(str, enum.Enum):
    """Where a client's connection is.

    ``closed`` (not started, or closed for good) → ``connecting`` →
    ``connected``; after a drop, ``reconnecting`` (waiting for the next
    attempt) → ``connecting`` → ``connected``. ``disconnected``: not
    connected and not retrying, but channels are kept and rejoin on the next
    :meth:`Client.connect` (after :meth:`Client.disconnect`, or when the
    server closed normally with code 1000). ``closing`` while
    :meth:`Client.close` runs.
    """

    CLOSED = "closed"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    CLOSING = "closing"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ChannelSnapshot:
    """One channel in a :class:`Diagnostics` snapshot."""

    topic: str
    state: str
    join_ref: str | None


@dataclass(frozen=True)
class Diagnostics:
    """A point-in-time view of a client, safe to log (no secrets).

    Attributes:
        url: the endpoint with credentials redacted.
        state: the connection state.
        channels: every channel that is joining, joined, errored or leaving.
        last_heartbeat_rtt: the last heartbeat round trip in seconds, or ``None``.
        frames_in / frames_out: WebSocket messages received / sent.
        bytes_in / bytes_out: their payload bytes.
        protocol_errors: malformed or oversize frames dropped.
        reconnects: connections opened after the first one.
        connect_failures: failed connection attempts.
        pending_pushes: pushes awaiting a reply or buffered.
        dispatch_queue_depth: events waiting for the dispatcher.
        messages_dropped: messages dropped by the overflow policy.
        reader_throttled: the reader stopped reading because the handlers'
            queues hold ``dispatch_total_size`` events (TCP backpressure).
        stale_dropped: messages dropped because of a stale join_ref.
        last_error: a description of the last connection failure, if any.
        transport: ``"websocket"`` or ``"longpoll"`` once connected.
        connected_url: where the last connection went, redacted: ``url``, or
            the final URL after redirects followed (``follow_redirects``), or
            the long-poll URL; ``None`` before the first connection.
        counters: every counter of the protocol session by name, plus
            ``connection_lent`` and ``read_by_caller`` (how often the reader
            lent the connection to a caller blocked in ``push()``, and how
            often such a caller read the socket itself); for the protocol
            clients also ``unroutable`` updates, ``request_timeouts``,
            ``late_subscriptions_undone``, ``unknown_replies``...
        sockets: the sockets this snapshot covers (more than one when the
            client shards its channels, see ``max_channels_per_socket``).

    """

    url: str
    state: ConnectionState
    channels: tuple[ChannelSnapshot, ...] = field(default_factory=tuple)
    last_heartbeat_rtt: float | None = None
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    protocol_errors: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    pending_pushes: int = 0
    dispatch_queue_depth: int = 0
    messages_dropped: int = 0
    stale_dropped: int = 0
    reader_throttled: bool = False
    last_error: str | None = None
    transport: str | None = None
    connected_url: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    sockets: int = 1
