"""Handlers and signals: which thread, what order, failures, backpressure, concurrency."""

from __future__ import annotations

import threading
import time

import pytest

import maxsdk
from maxsdk import Client, signals
from tests.client.helpers import Inbox, SignalLog, fast_client


def test_handlers_run_on_the_dispatcher_thread_in_arrival_order(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        inbox = Inbox()
        room.on("flood_msg", inbox)
        room.push("flood", {"n": 500, "size": 10})
        items = inbox.wait_count(500)
        assert [item["i"] for item in items] == list(range(1, 501))
        assert inbox.threads == {f"{client._engine.name}-dispatch"}


def test_signals_run_on_the_dispatcher_thread(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        log.wait_for("channel_joined")
    threads = {thread for _, _, _, thread in log.records}
    assert threads == {f"{client._engine.name}-dispatch"}


def test_a_failing_handler_does_not_stop_the_others(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        after = Inbox()

        def broken(payload):
            raise RuntimeError("handler bug")

        room.on("shout", broken)
        room.on("shout", after)
        room.push("shout", {"n": 1})
        room.push("shout", {"n": 2})
        assert after.wait_count(2) == [{"n": 1}, {"n": 2}]
        failure = log.wait_for("handler_failed", count=2)
        assert isinstance(failure["error"], RuntimeError)
        assert failure["handler"] is broken


def test_a_failing_signal_receiver_does_not_stop_the_others(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    client.on_signal(signals.channel_joined, lambda _c, **kw: 1 / 0)
    later = Inbox()
    client.on_signal(signals.channel_joined, lambda _c, **kw: later(kw["channel"]))
    with client:
        room = client.join("room:lobby")
        assert later.wait_count(1) == [room]
        assert isinstance(log.wait_for("handler_failed")["error"], ZeroDivisionError)


def test_a_handler_may_make_blocking_pushes(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        replies = Inbox()
        room.on("shout", lambda payload: replies(room.push("echo", {"inner": payload["n"]}).response))
        for n in range(3):
            room.push("shout", {"n": n})
        assert replies.wait_count(3) == [{"inner": 0}, {"inner": 1}, {"inner": 2}]


def test_close_from_a_handler_does_not_deadlock(phoenix_server):
    client = fast_client(phoenix_server.url)
    done = threading.Event()
    client.connect()
    room = client.join("room:lobby")
    room.on("shout", lambda payload: (client.close(), done.set()))
    room.push_nowait("shout", {})
    assert done.wait(5)
    client._engine._join_threads(time.monotonic() + 5)
    assert client.state is maxsdk.ConnectionState.CLOSED


@pytest.mark.timeout(60)
def test_slow_handler_with_block_policy_loses_nothing_and_no_false_heartbeat_timeout(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=0.1, dispatch_queue_size=50, overflow="block")
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        inbox = Inbox()

        def slow(payload):
            time.sleep(0.002)  # a handler doing real work
            inbox(payload)

        room.on("flood_msg", slow)
        room.push("flood", {"n": 600, "size": 10})
        assert [m["i"] for m in inbox.wait_count(600, timeout=30)] == list(range(1, 601))
        assert log.of("disconnected") == [], "backpressure must not look like a dead connection"
        assert client.diagnostics().messages_dropped == 0


@pytest.mark.timeout(60)
def test_slow_handler_with_drop_policy_bounds_the_queue_and_counts_drops(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=0.1, dispatch_queue_size=100, overflow="drop_oldest")
    log = SignalLog(client)
    gate = threading.Event()
    with client:
        room = client.join("room:lobby")
        inbox = Inbox()

        def blocked(payload):
            gate.wait(10)
            inbox(payload)

        room.on("flood_msg", blocked)
        room.push("flood", {"n": 5000, "size": 10})
        depth = client.diagnostics().dispatch_queue_depth
        assert depth <= 100 + 5  # the bound, plus a few control events (never dropped)
        # Heartbeats go on while the handler is stuck: each one is sent only after the
        # previous reply was read, so three of them prove the reader is alive.
        since = phoenix_server.message_count
        for _ in range(3):
            beat = phoenix_server.wait_for_message(event="heartbeat", since=since, timeout=5)
            since = beat.index + 1
        assert client.diagnostics().reconnects == 0
        gate.set()
        dropped = log.wait_for("messages_dropped")
        total = client.diagnostics().messages_dropped
        assert dropped["total"] <= total
        room.push("echo", {})
        delivered = len(inbox.items)
        assert delivered + total == 5000 or inbox.wait_count(5000 - total, timeout=10)
        assert 5000 - total <= 101 + 1
        # the newest messages survived (drop_oldest)
        assert inbox.wait_count(5000 - total)[-1]["i"] == 5000


def test_concurrent_pushes_from_many_threads_each_get_their_own_reply(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        errors = []

        def worker(worker_id):
            try:
                for n in range(100):
                    assert room.push("echo", {"w": worker_id, "n": n}).response == {"w": worker_id, "n": n}
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert client.diagnostics().pending_pushes == 0


def test_blocking_calls_from_internal_threads_raise_wrong_thread_error(phoenix_server):
    client = fast_client(phoenix_server.url, rejoin=maxsdk.Backoff.constant(0.05))
    log = SignalLog(client)
    seen = []

    def params():
        if seen:
            try:
                other.push("echo", {})  # runs on the reader thread during the rejoin
            except maxsdk.WrongThreadError as exc:
                seen.append(exc)
        seen.append("called")
        return {}

    with client:
        other = client.join("echo:other")
        room = client.channel("room:lobby", params)
        room.join()
        room.push_nowait("crash", {})
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    assert any(isinstance(item, maxsdk.WrongThreadError) for item in seen)


def test_diagnostics_snapshot(phoenix_server):
    with fast_client(phoenix_server.url, heartbeat_interval=0.05) as client:
        room = client.join("room:lobby")
        room.push("echo", {})
        SignalLog(client).wait_for("heartbeat")
        snapshot = client.diagnostics()
        assert snapshot.state is maxsdk.ConnectionState.CONNECTED
        assert [(c.topic, c.state) for c in snapshot.channels] == [("room:lobby", "joined")]
        assert snapshot.frames_in >= 3 and snapshot.frames_out >= 3  # join, echo, heartbeat each way
        assert snapshot.bytes_in > 0 and snapshot.bytes_out > 0
        assert snapshot.last_heartbeat_rtt is not None and snapshot.last_heartbeat_rtt < 1


def test_ping_measures_a_round_trip(phoenix_server):
    with Client(phoenix_server.url) as client:
        assert 0 < client.ping() < 1


@pytest.mark.timeout(60)
def test_block_policy_lets_a_handler_wait_for_its_own_reply_while_the_queue_is_full(phoenix_server):
    # The default policy: nothing is dropped. A handler that pushes and waits while the
    # small queue is full must not deadlock (its reply sits behind the flood).
    client = fast_client(phoenix_server.url, dispatch_queue_size=10, timeout=4)
    assert client.config.overflow == "block"
    with client:
        room = client.join("room:lobby")
        replies, every = Inbox(), Inbox()

        def handler(payload):
            every(payload["i"])
            if payload["i"] % 100 == 0:
                replies(room.push("echo", {"i": payload["i"]}).response["i"])

        room.on("flood_msg", handler)
        room.push("flood", {"n": 1000, "size": 10})
        assert replies.wait_count(10, timeout=20) == list(range(100, 1001, 100))
        assert every.wait_count(1000) == list(range(1, 1001))
        assert client.diagnostics().messages_dropped == 0
