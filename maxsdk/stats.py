"""The :class:`Stats` snapshot returned by :meth:`Client.stats`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ChannelStats", "Stats"]


@dataclass(frozen=True)
class Stats:
    """Counters and gauges of one client, cheap enough to collect continuously.

    Rates are computed over the window since the previous :meth:`Client.stats`
    call (``window`` seconds; the first call covers the client's lifetime).

    Attributes:
        state: the connection state (a string).
        status: a human-readable explanation of the state ("reconnecting in
            2.1 s after close 1006 (attempt 3)").
        window: seconds covered by the rates.
        frames_in / frames_out / bytes_in / bytes_out: totals since start.
        messages_in_per_s / messages_out_per_s: frames per second over the window.
        bytes_in_per_s / bytes_out_per_s: payload bytes per second over the window.
        messages_by_event: channel messages delivered to handlers, per event.
        replies_by_status: push outcomes per status (``ok``, ``error``,
            custom, ``timeout``, ``lost``).
        messages_by_topic: channel messages delivered to handlers, per channel topic.
        replies_by_topic: push outcomes per channel topic, then per status.
        push_latency_p50 / p95 / p99: push→reply latency percentiles (seconds, ±12 %).
        push_latency_max: the slowest reply seen.
        timeouts: pushes that timed out.
        errors: error replies, timeouts, lost pushes and protocol errors.
        error_rate: errors per second over the window.
        reconnects / connect_failures: connection history.
        connected_seconds / disconnected_seconds: time spent in each.
        heartbeat_rtt / heartbeat_rtt_smoothed: last and EWMA heartbeat round trip.
        heartbeat_timeouts: connections closed because a heartbeat went unanswered.
        dispatch_queue_depth / messages_dropped: the dispatcher's queue and overflow drops.
        pending_pushes: pushes awaiting replies.
        outbox_depth: messages waiting in the durable outbox (``None`` without one).
        sockets: the sockets these numbers cover (see ``max_channels_per_socket``).

    """

    state: str
    status: str
    window: float
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    messages_in_per_s: float
    messages_out_per_s: float
    bytes_in_per_s: float = 0.0
    bytes_out_per_s: float = 0.0
    messages_by_event: dict[str, int] = field(default_factory=dict)
    replies_by_status: dict[str, int] = field(default_factory=dict)
    messages_by_topic: dict[str, int] = field(default_factory=dict)
    replies_by_topic: dict[str, dict[str, int]] = field(default_factory=dict)
    push_latency_p50: float | None = None
    push_latency_p95: float | None = None
    push_latency_p99: float | None = None
    push_latency_max: float | None = None
    timeouts: int = 0
    errors: int = 0
    error_rate: float = 0.0
    reconnects: int = 0
    connect_failures: int = 0
    connected_seconds: float = 0.0
    disconnected_seconds: float = 0.0
    heartbeat_rtt: float | None = None
    heartbeat_rtt_smoothed: float | None = None
    heartbeat_timeouts: int = 0
    dispatch_queue_depth: int = 0
    messages_dropped: int = 0
    pending_pushes: int = 0
    outbox_depth: int | None = None
    sockets: int = 1


@dataclass(frozen=True)
class ChannelStats:
    """One channel's dispatch queue, from :meth:`Channel.stats`.

    Attributes:
        topic: the channel topic.
        queued: events waiting for the channel's handlers now.
        handled: events handed to its handlers since it was created.
        dropped: messages its overflow policy dropped.
        max_queued: the deepest its queue has been.
        queue_size: its bound (past it, ``overflow`` applies).
        overflow: its overflow policy.
        dedicated_thread: whether its handlers run on a thread of their own.

    """

    topic: str
    queued: int
    handled: int
    dropped: int
    max_queued: int
    queue_size: int
    overflow: str
    dedicated_thread: bool
