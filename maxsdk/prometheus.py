"""Prometheus export of a client's metrics (install the ``prometheus`` extra).

The collector is registered on a registry **you** pass — never the global
default unless you pass it yourself — so two clients (or two apps in one
process) never collide::

    from prometheus_client import CollectorRegistry, generate_latest
    from maxsdk.prometheus import ClientCollector

    registry = CollectorRegistry()
    registry.register(ClientCollector(client))
    text = generate_latest(registry)

A Grafana dashboard and Prometheus alert rules for these metrics ship in
``contrib/`` (see the observability page of the documentation).

Metric names (every metric has the label ``client``, the client's name):

=========================================  =========  =========================================
``maxsdk_connected``                       gauge      1 while the connection is open
``maxsdk_frames_received_total``           counter    WebSocket messages received
``maxsdk_frames_sent_total``               counter    WebSocket messages sent
``maxsdk_bytes_received_total``            counter    payload bytes received
``maxsdk_bytes_sent_total``                counter    payload bytes sent
``maxsdk_messages_total``                  counter    channel messages delivered, label ``event``
``maxsdk_replies_total``                   counter    push outcomes, label ``status``
``maxsdk_channel_messages_total``          counter    channel messages delivered, label ``topic``
``maxsdk_channel_replies_total``           counter    push outcomes, labels ``topic`` and ``status``
``maxsdk_push_latency_seconds``            histogram  push → reply latency
``maxsdk_reconnects_total``                counter    connections opened after the first
``maxsdk_connect_failures_total``          counter    failed connection attempts
``maxsdk_connected_seconds_total``         counter    time spent connected
``maxsdk_disconnected_seconds_total``      counter    time spent connecting or reconnecting
``maxsdk_heartbeat_rtt_seconds``           gauge      smoothed heartbeat round trip
``maxsdk_heartbeat_timeouts_total``        counter    connections closed for an unanswered heartbeat
``maxsdk_pending_pushes``                  gauge      pushes awaiting a reply
``maxsdk_dispatch_queue_depth``            gauge      events waiting for handlers
``maxsdk_messages_dropped_total``          counter    messages dropped by the overflow policy
``maxsdk_errors_total``                    counter    error replies, timeouts, lost pushes, protocol errors
``maxsdk_outbox_depth``                    gauge      durable messages waiting (when an outbox is used)
``maxsdk_outbox_oldest_age_seconds``       gauge      age of the oldest waiting durable message
``maxsdk_outbox_dead_letters``             gauge      dead letters stored in the outbox now
``maxsdk_outbox_dead_lettered_total``      counter    messages dead-lettered since the outbox opened
=========================================  =========  =========================================

Byte and message rates are the counters' ``rate()``; the outbox metrics have
samples only for a client with an outbox. The per-channel families carry one
series per topic: with very many topics (one per user, say) pass
``per_channel=False`` to keep the number of series bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from maxsdk.client import Client
    from maxsdk.stats import Stats

__all__ = ["ClientCollector"]


def _get(stats: Stats | None, name: str) -> float | None:
    value = None if stats is None else getattr(stats, name)
    return None if value is None else float(value)


class ClientCollector:
    """A ``prometheus_client`` collector for one :class:`~maxsdk.Client`.

    Args:
        client: the client to export.
        prefix: metric name prefix (default ``"maxsdk"``).
        per_channel: export the per-topic families (``*_channel_*``).

    """

    def __init__(self, client: Client, *, prefix: str = "maxsdk", per_channel: bool = True) -> None:
        self._client = client
        self._prefix = prefix
        self._per_channel = per_channel

    def describe(self) -> list[Any]:
        """Metric families without samples (lets registries detect name clashes)."""
        return list(self._families(empty=True))

    def collect(self) -> Iterator[Any]:
        """The current values."""
        yield from self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[Any]:
        p = self._prefix
        name = self._client._engine.name
        engine = self._client._engine
        stats = None if empty else engine.stats(self._client._outbox_depth(), advance_window=False)
        label = ["client"]

        def gauge(metric: str, doc: str, value: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"{p}_{metric}", doc, labels=label)
            if stats is not None and value is not None:
                family.add_metric([name], value)
            return family

        def counter(metric: str, doc: str, value: float | None) -> CounterMetricFamily:
            family = CounterMetricFamily(f"{p}_{metric}", doc, labels=label)
            if stats is not None and value is not None:
                family.add_metric([name], value)
            return family

        s = stats
        yield gauge(
            "connected", "1 while the connection is open.", None if s is None else float(s.state == "connected")
        )
        yield counter("frames_received", "WebSocket messages received.", _get(s, "frames_in"))
        yield counter("frames_sent", "WebSocket messages sent.", _get(s, "frames_out"))
        yield counter("bytes_received", "Payload bytes received.", _get(s, "bytes_in"))
        yield counter("bytes_sent", "Payload bytes sent.", _get(s, "bytes_out"))
        yield from self._message_families(s, name)
        latency = HistogramMetricFamily(f"{p}_push_latency_seconds", "Push to reply latency.", labels=label)
        if s is not None:
            histogram = engine.metrics.push_latency
            buckets = [
                ("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in histogram.buckets()
            ]
            latency.add_metric([name], buckets, histogram.sum)
        yield latency
        yield counter("reconnects", "Connections opened after the first one.", _get(s, "reconnects"))
        yield counter("connect_failures", "Failed connection attempts.", _get(s, "connect_failures"))
        yield counter("connected_seconds", "Time spent connected.", _get(s, "connected_seconds"))
        yield counter("disconnected_seconds", "Time spent connecting or reconnecting.", _get(s, "disconnected_seconds"))
        yield gauge("heartbeat_rtt_seconds", "Smoothed heartbeat round trip.", _get(s, "heartbeat_rtt_smoothed"))
        yield counter(
            "heartbeat_timeouts",
            "Connections closed because a heartbeat went unanswered.",
            _get(s, "heartbeat_timeouts"),
        )
        yield gauge("pending_pushes", "Pushes awaiting a reply.", _get(s, "pending_pushes"))
        yield gauge("dispatch_queue_depth", "Events waiting for handlers.", _get(s, "dispatch_queue_depth"))
        yield counter("messages_dropped", "Messages dropped by the overflow policy.", _get(s, "messages_dropped"))
        yield counter("errors", "Error replies, timeouts, lost pushes and protocol errors.", _get(s, "errors"))
        yield gauge("outbox_depth", "Durable messages waiting to be delivered.", _get(s, "outbox_depth"))
        yield from self._outbox_families(empty, name)

    def _message_families(self, s: Stats | None, name: str) -> Iterator[Any]:
        """Messages and push outcomes by event and status, then per channel topic."""
        p = self._prefix
        messages = CounterMetricFamily(
            f"{p}_messages", "Channel messages delivered, by event.", labels=["client", "event"]
        )
        replies = CounterMetricFamily(f"{p}_replies", "Push outcomes, by status.", labels=["client", "status"])
        if s is not None:
            for event, count in sorted(s.messages_by_event.items()):
                messages.add_metric([name, event], count)
            for status, count in sorted(s.replies_by_status.items()):
                replies.add_metric([name, status], count)
        yield messages
        yield replies
        if not self._per_channel:
            return
        by_topic = CounterMetricFamily(
            f"{p}_channel_messages", "Channel messages delivered, by channel topic.", labels=["client", "topic"]
        )
        replies_by_topic = CounterMetricFamily(
            f"{p}_channel_replies", "Push outcomes, by channel topic and status.", labels=["client", "topic", "status"]
        )
        if s is not None:
            for topic, count in sorted(s.messages_by_topic.items()):
                by_topic.add_metric([name, topic], count)
            for topic, by_status in sorted(s.replies_by_topic.items()):
                for status, count in sorted(by_status.items()):
                    replies_by_topic.add_metric([name, topic, status], count)
        yield by_topic
        yield replies_by_topic

    def _outbox_families(self, empty: bool, name: str) -> Iterator[Any]:
        """The durable outbox's age and dead letters (samples only when the client has an outbox)."""
        p = self._prefix
        age = GaugeMetricFamily(
            f"{p}_outbox_oldest_age_seconds", "Age of the oldest waiting durable message.", labels=["client"]
        )
        dead = GaugeMetricFamily(f"{p}_outbox_dead_letters", "Dead letters stored in the outbox.", labels=["client"])
        dead_total = CounterMetricFamily(
            f"{p}_outbox_dead_lettered", "Messages dead-lettered since the outbox opened.", labels=["client"]
        )
        outbox = None if empty else getattr(self._client, "outbox", None)
        if outbox is not None:
            oldest = outbox.oldest_age()
            age.add_metric([name], 0.0 if oldest is None else oldest)
            counts = outbox.stats()
            dead.add_metric([name], counts.dead)
            dead_total.add_metric([name], counts.dead_lettered)
        yield age
        yield dead
        yield dead_total
