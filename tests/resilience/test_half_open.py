"""Half-open links and network faults, through a fault-injection proxy."""

from __future__ import annotations

import time

import pytest

from maxsdk import Backoff
from tests.client.helpers import Inbox, SignalLog, fast_client
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def proxy(phoenix_server):
    with FaultProxy(("127.0.0.1", phoenix_server.port)) as proxy:
        yield proxy


@pytest.mark.timeout(60)
def test_blackholed_link_is_detected_within_interval_plus_timeout_and_recovers(phoenix_server, proxy):
    interval, timeout = 0.3, 0.3
    client = fast_client(proxy.rewrite(phoenix_server.url), heartbeat_interval=interval, heartbeat_timeout=timeout)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        log.wait_for("heartbeat")
        proxy.blackhole()
        started = time.monotonic()
        disconnected = log.wait_for("disconnected", timeout=10)
        detected = time.monotonic() - started
        assert disconnected["reason"] == "heartbeat_timeout"
        assert detected <= interval + timeout + 0.5, detected
        proxy.cut("rst")  # the stale half-open connection goes away
        proxy.reset()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=10)
        assert room.push("echo", {"after": "blackhole"}).response == {"after": "blackhole"}


@pytest.mark.timeout(60)
def test_connection_reset_mid_stream_reconnects(phoenix_server, proxy):
    client = fast_client(proxy.rewrite(phoenix_server.url))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        inbox = Inbox()
        room.on("flood_msg", inbox)
        room.push_nowait("flood", {"n": 5000, "size": 100}, timeout=10)
        inbox.wait_count(100)
        proxy.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=10)
        assert room.push("echo", {"ok": 1}).response == {"ok": 1}


@pytest.mark.timeout(60)
def test_slow_link_delays_but_does_not_break(phoenix_server, proxy):
    client = fast_client(proxy.rewrite(phoenix_server.url), heartbeat_interval=0.5)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        proxy.delay(0.1)
        started = time.monotonic()
        assert room.push("echo", {"slow": True}).response == {"slow": True}
        assert time.monotonic() - started >= 0.2  # one delay each way
        log.wait_for("heartbeat")
        assert log.of("disconnected") == []


@pytest.mark.timeout(60)
def test_refused_then_accepted_connections(phoenix_server, proxy):
    client = fast_client(proxy.rewrite(phoenix_server.url), reconnect=Backoff.constant(0.05))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        proxy.refuse()
        proxy.cut("fin")
        log.wait_for("reconnecting", count=3)
        errors = [kw["error"] for kw in log.of("reconnecting")[1:]]
        assert errors and all("refused" in str(e) for e in errors)
        proxy.reset()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=10)
        assert room.push("echo", {}).response == {}
