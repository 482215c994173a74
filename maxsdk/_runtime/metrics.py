"""Cheap always-on metrics: counters, a log-bucketed latency histogram, EWMA round trips.

Everything here is updated from at most one thread per field (the reader,
the dispatcher, or callers under the engine lock), so plain ints suffice in
CPython; snapshots are taken without stopping anyone and are approximately
consistent, which is what monitoring needs.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter

__all__ = ["LatencyHistogram", "Metrics"]

# Bucket upper bounds in seconds: 20 µs to ~100 s, 10 buckets per decade.
_BOUNDS = tuple(20e-6 * 10 ** (i / 10) for i in range(68))


class LatencyHistogram:
    """A fixed log-bucketed histogram (≈ ±12 % resolution) with percentiles."""

    __slots__ = ("count", "counts", "max", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        """Record one duration."""
        self.counts[bisect.bisect_left(_BOUNDS, seconds)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def percentile(self, fraction: float) -> float | None:
        """The upper bound of the bucket holding the ``fraction`` quantile, or ``None`` if empty."""
        if not self.count:
            return None
        rank = math.ceil(fraction * self.count)
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(_BOUNDS[index] if index < len(_BOUNDS) else self.max, self.max)
        return self.max

    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper bound, count)`` pairs (Prometheus style, ``inf`` last)."""
        result, total = [], 0
        for index, count in enumerate(self.counts):
            total += count
            result.append((_BOUNDS[index] if index < len(_BOUNDS) else math.inf, total))
        return result


class Metrics:
    """The counters behind :meth:`Client.stats` and the Prometheus collector."""

    def __init__(self) -> None:
        self.push_latency = LatencyHistogram()
        self.replies_by_status: Counter[str] = Counter()
        self.messages_by_event: Counter[str] = Counter()
        #: Per channel (topic): messages delivered, and push outcomes by status.
        self.messages_by_topic: Counter[str] = Counter()
        self.replies_by_topic: dict[str, Counter[str]] = {}
        self.heartbeat_rtt_last: float | None = None
        self.heartbeat_rtt_smoothed: float | None = None
        self.connected_seconds = 0.0
        self.disconnected_seconds = 0.0
        self.errors = 0

    def observe_heartbeat(self, rtt: float) -> None:
        """Record a heartbeat round trip (EWMA with alpha 0.2)."""
        self.heartbeat_rtt_last = rtt
        previous = self.heartbeat_rtt_smoothed
        self.heartbeat_rtt_smoothed = rtt if previous is None else previous + 0.2 * (rtt - previous)

    def observe_message(self, topic: str, event: str) -> None:
        """Record a channel message delivered to the handlers."""
        self.messages_by_event[event] += 1
        self.messages_by_topic[topic] += 1

    def observe_reply(self, status: str, latency: float, topic: str | None = None) -> None:
        """Record a push outcome and its latency (replies only), per channel when ``topic`` is given."""
        self.replies_by_status[status] += 1
        if topic is not None:
            by_status = self.replies_by_topic.get(topic)
            if by_status is None:
                by_status = self.replies_by_topic[topic] = Counter()
            by_status[status] += 1
        if status not in ("timeout", "lost", "closed", "client_closed"):
            self.push_latency.observe(latency)
        if status in ("error", "timeout", "lost"):
            self.errors += 1
