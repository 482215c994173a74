"""stats(), diagnostics and the Prometheus collector."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from maxsdk.prometheus import ClientCollector
from tests.client.helpers import Inbox, SignalLog, fast_client


def test_stats_count_replies_latency_messages_and_rates(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=0.05)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        client.stats()  # start a window
        inbox = Inbox()
        room.on("flood_msg", inbox)
        for n in range(50):
            room.push("echo", {"n": n})
        for _ in range(3):
            try:
                room.push("echo_error", {})
            except Exception:
                pass
        room.push("flood", {"n": 20, "size": 1})
        inbox.wait_count(20)
        log.wait_for("heartbeat", count=2)
        stats = client.stats()
        assert stats.replies_by_status["ok"] >= 51 and stats.replies_by_status["error"] == 3
        assert stats.messages_by_event["flood_msg"] == 20
        assert 0 < stats.push_latency_p50 <= stats.push_latency_p99 <= stats.push_latency_max * 1.3
        assert stats.messages_in_per_s > 0 and stats.messages_out_per_s > 0
        assert stats.errors >= 3 and stats.error_rate > 0
        assert stats.heartbeat_rtt is not None and stats.heartbeat_rtt_smoothed is not None
        assert stats.state == "connected" and "connected to" in stats.status
        assert stats.connected_seconds > 0


def test_status_explains_reconnects(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        phoenix_server.drop_connections()
        reason = log.wait_for("reconnecting")["reason"]
        assert reason.startswith("reconnecting in ") and "after close 1006" in reason and "(attempt 1)" in reason
        log.wait_for("connected", lambda kw: kw["reconnect"])
        assert client.stats().reconnects == 1


def test_prometheus_collector_on_a_private_registry(phoenix_server):
    with (
        fast_client(phoenix_server.url, name="orders") as client,
        fast_client(phoenix_server.url, name="feed") as other,
    ):
        client.join("room:lobby").push("echo", {})
        other.join("room:lobby")
        registry = CollectorRegistry()
        registry.register(ClientCollector(client))
        registry.register(ClientCollector(other, prefix="feed"))  # two clients, no name clash
        text = generate_latest(registry).decode()
        assert 'maxsdk_connected{client="orders"} 1.0' in text
        assert 'maxsdk_replies_total{client="orders",status="ok"} 1.0' in text
        assert 'maxsdk_push_latency_seconds_count{client="orders"} 1.0' in text
        assert 'feed_connected{client="feed"} 1.0' in text
        assert "maxsdk_frames_received_total" in text
