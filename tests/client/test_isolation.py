"""Per-channel isolation: one slow handler stalls neither other channels, nor replies, nor heartbeats."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc

import pytest

from maxsdk._runtime.dispatcher import shared_pool
from tests.client.helpers import Inbox, SignalLog, fast_client


class Hold:
    """A handler that blocks (up to ``hold`` seconds) on its first call, then records."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.inbox = Inbox()

    def __call__(self, payload: dict) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(self.hold)
        self.inbox(payload)


@pytest.mark.timeout(120)
def test_a_handler_sleeping_10s_on_one_channel_does_not_stall_another(phoenix_server):
    # Channel A's handler holds for 10 s (released early once B is done, to keep the test
    # short); meanwhile channel B pushes 1,000 times and receives 10,000 events.
    client = fast_client(phoenix_server.url, heartbeat_interval=0.2, dispatch_queue_size=1000, timeout=5)
    log = SignalLog(client)
    with client:
        a = client.join("room:a")
        b = client.join("room:b")
        baseline = [_timed_echo(b, n) for n in range(200)]
        slow = Hold(10.0)
        a.on("flood_msg", slow)
        received = Inbox()
        b.on("flood_msg", lambda payload: received(payload["i"]))
        a.push("flood", {"n": 2000, "size": 10})  # A's queue: 1 held + 1,999 waiting (past its bound)
        assert slow.entered.wait(15)
        started = time.monotonic()
        latencies = []
        for n in range(1000):
            if n % 100 == 0:
                b.push("flood", {"n": 1000, "size": 10})
            latencies.append(_timed_echo(b, n))
        events = received.wait_count(10_000, timeout=30)
        elapsed = time.monotonic() - started
        assert not slow.release.is_set() and elapsed < slow.hold, "B finished while A's handler was still held"
        # B lost nothing and kept its order (ten floods of 1..1000).
        assert events == [i for _ in range(10) for i in range(1, 1001)]
        # B's pushes were answered at their usual latency, not after A's handler: the worst
        # of 1,000 stays far below the 10 s hold (before per-channel queues they timed out).
        assert max(latencies) < 2.0, (max(latencies), max(baseline))
        # Memory stayed bounded: A's backlog is held, counted, within the client's total.
        stats = a.stats()
        assert stats.queued == 1999 and stats.dropped == 0 and stats.max_queued <= client.config.dispatch_total_size
        assert client.diagnostics().dispatch_queue_depth <= client.config.dispatch_total_size
        assert client.diagnostics().reconnects == 0 and log.of("disconnected") == []
        slow.release.set()
        assert [p["i"] for p in slow.inbox.wait_count(2000, timeout=30)] == list(range(1, 2001))
        assert b.stats().handled >= 10_000 and b.stats().dropped == 0


def _timed_echo(channel, n: int) -> float:
    started = time.monotonic()
    assert channel.push("echo", {"n": n}).response == {"n": n}
    return time.monotonic() - started


@pytest.mark.timeout(60)
def test_block_policy_throttles_the_socket_once_the_clients_total_is_reached(phoenix_server):
    # The documented trade-off: a blocked channel's queue grows past its bound until the
    # client's total; then the reader stops reading (TCP backpressure), nothing is lost,
    # and no heartbeat timeout is declared meanwhile.
    client = fast_client(phoenix_server.url, heartbeat_interval=0.1, dispatch_queue_size=100, dispatch_total_size=500)
    log = SignalLog(client)
    with client:
        a = client.join("room:a")
        slow = Hold(20.0)
        a.on("flood_msg", slow)
        a.push_nowait("flood", {"n": 3000, "size": 10}, timeout=30)
        assert slow.entered.wait(15)
        diagnostics = _wait_for(client.diagnostics, lambda d: d.reader_throttled)
        assert diagnostics.dispatch_queue_depth <= 500 + 5  # the total, plus a few control events
        assert a.stats().max_queued <= 505
        slow.release.set()
        assert [p["i"] for p in slow.inbox.wait_count(3000, timeout=30)] == list(range(1, 3001))
        assert a.stats().dropped == 0 and client.diagnostics().messages_dropped == 0
        assert log.of("disconnected") == [], "backpressure must not look like a dead connection"


@pytest.mark.timeout(120)
def test_memory_stays_bounded_while_a_blocked_channel_is_flooded(phoenix_server):
    # 20,000 events of 1 KB (about 20 MB once decoded) flood a channel whose handler is
    # held: the client keeps at most dispatch_total_size of them (measured with
    # tracemalloc, the in-process server's allocations left out), the rest wait in the
    # server and in TCP buffers, and nothing is lost once the handler goes on.
    flood, size, total = 20_000, 1000, 1000
    client = fast_client(phoenix_server.url, dispatch_queue_size=100, dispatch_total_size=total)
    with client:
        a = client.join("room:a")
        slow = Hold(60.0)
        a.on("flood_msg", slow)
        tracemalloc.start(25)
        try:
            before = _client_memory(tracemalloc.take_snapshot())
            a.push_nowait("flood", {"n": flood, "size": size}, timeout=60)
            assert slow.entered.wait(10)
            _wait_for(client.diagnostics, lambda d: d.reader_throttled, timeout=30)
            grown = _client_memory(tracemalloc.take_snapshot()) - before
        finally:
            tracemalloc.stop()
        queued = a.stats().queued
        assert queued <= total + 5
        # Bounded by what is queued (about 1.3 KB per decoded event), not by the flood.
        assert grown < 4 * total * size, f"client memory grew by {grown / 1e6:.1f} MB for {queued} queued events"
        slow.release.set()
        assert [p["i"] for p in slow.inbox.wait_count(flood, timeout=60)] == list(range(1, flood + 1))
        assert a.stats().dropped == 0


def _client_memory(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes allocated by everything but the embedded server's threads."""
    server = tracemalloc.Filter(False, "*/maxsdk/server/*", all_frames=True)
    return sum(stat.size for stat in snapshot.filter_traces([server]).statistics("filename"))


@pytest.mark.timeout(60)
def test_overflow_policy_is_per_channel(phoenix_server):
    client = fast_client(phoenix_server.url, dispatch_queue_size=1000)
    log = SignalLog(client)
    with client:
        a = client.channel("room:a", queue_size=50, overflow="drop_oldest").join()
        b = client.join("room:b")
        slow = Hold(20.0)
        a.on("flood_msg", slow)
        got_b = Inbox()
        b.on("flood_msg", lambda payload: got_b(payload["i"]))
        a.push("flood", {"n": 1000, "size": 10})
        assert slow.entered.wait(15)
        b.push("flood", {"n": 1000, "size": 10})
        assert got_b.wait_count(1000, timeout=15) == list(range(1, 1001))  # B: lossless, unaffected
        assert b.stats().dropped == 0
        slow.release.set()
        dropped = log.wait_for("messages_dropped")
        assert dropped["topic"] == "room:a"
        stats = a.stats()
        assert stats.overflow == "drop_oldest" and stats.queue_size == 50
        assert stats.dropped >= 1000 - 51 - 1
        a.push("echo", {})
        kept = slow.inbox.wait_count(1000 - stats.dropped)
        assert kept[-1]["i"] == 1000  # the newest survived
        assert client.diagnostics().messages_dropped == stats.dropped


@pytest.mark.timeout(60)
def test_the_pool_grows_while_handlers_block_so_a_third_channel_is_still_served(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        holds = []
        for topic in ("room:a", "room:b", "room:c"):
            channel = client.join(topic)
            hold = Hold(20.0)
            channel.on("shout", hold)
            holds.append((channel, hold))
        for channel, hold in holds:  # three handlers stuck at once: more than the pool's minimum
            channel.push("shout", {"n": 1})
            assert hold.entered.wait(15)
        free = client.join("room:free")
        got = Inbox()
        free.on("shout", got)
        free.push("shout", {"n": 2})
        assert got.wait_count(1) == [{"n": 2}]
        assert shared_pool().workers >= 4
        for _, hold in holds:
            hold.release.set()
            hold.inbox.wait_count(1)


@pytest.mark.timeout(60)
def test_many_clients_share_the_dispatch_pool(phoenix_server):
    clients = [fast_client(phoenix_server.url) for _ in range(30)]
    before = len(_client_side_threads())
    try:
        inboxes = []
        for client in clients:
            client.connect()
            room = client.join("room:lobby")
            inbox = Inbox()
            room.on("flood_msg", inbox)
            inboxes.append((room, inbox))
        for room, _ in inboxes:
            room.push_nowait("flood", {"n": 200, "size": 10})
        for _, inbox in inboxes:
            assert [m["i"] for m in inbox.wait_count(200)] == list(range(1, 201))
        # One thread per client (its reader) plus the shared pool and timer: no dispatcher or timer each.
        assert len(_client_side_threads()) - before <= len(clients) + 8
        assert len({client._engine._timer.service.thread for client in clients}) == 1
        names = set().union(*(inbox.threads for _, inbox in inboxes))
        assert names <= {f"{client._engine.name}-dispatch" for client in clients}
    finally:
        for client in clients:
            client.close()


@pytest.mark.timeout(60)
def test_handlers_on_many_channels_may_block_in_push(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        replies = Inbox()
        for n in range(8):  # more blocked handlers than the pool's minimum
            channel = client.join(f"room:{n}")
            channel.on("shout", lambda payload, ch=channel: replies(ch.push("echo", payload).response["n"]))
            channel.push_nowait("shout", {"n": n})
        assert sorted(replies.wait_count(8)) == list(range(8))


def test_connection_signals_are_ordered_and_channel_signals_follow_their_channel(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        log.wait_for("channel_joined")
        phoenix_server.drop_connections()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    names = [name for name, kw, _, _ in log.records if name in ("connected", "disconnected")]
    assert names[:3] == ["connected", "disconnected", "connected"]
    joined = [kw for name, kw, _, _ in log.records if name == "channel_joined"]
    assert [kw["rejoined"] for kw in joined][:2] == [False, True] and joined[0]["channel"] is room


def _client_side_threads() -> list[threading.Thread]:
    """Every thread but the embedded server's."""
    return [t for t in threading.enumerate() if not t.name.startswith("maxsdk-server")]


def _pool_threads() -> list[threading.Thread]:
    """The shared dispatch pool's threads alive now (idle workers carry the pool's names)."""
    pool = (t for t in threading.enumerate() if t.name.startswith(("maxsdk-dispatch-worker-", "maxsdk-dispatch-sup")))
    return [t for t in pool if t.is_alive()]


def _wait_for(read, predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    wake = threading.Event()
    while True:
        value = read()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {value}")
        wake.wait(0.01)


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_its_own_dispatch_pool(phoenix_server):
    with fast_client(phoenix_server.url) as parent:
        room = parent.join("room:lobby")
        got = Inbox()
        room.on("shout", got)
        room.push("shout", {"who": "parent"})
        assert got.wait_count(1) == [{"who": "parent"}]
        assert _pool_threads()  # the parent's workers exist at the fork
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a new client, served by a new pool
            outcome = b"?"
            try:
                with fast_client(phoenix_server.url) as child:
                    inbox = Inbox()
                    child_room = child.join("room:child")
                    child_room.on("shout", inbox)
                    child_room.push("shout", {"who": "child"})
                    ok = inbox.wait_count(1, timeout=10) == [{"who": "child"}]
                    outcome = b"ok" if ok else b"not delivered"
            except BaseException as exc:
                outcome = repr(exc).encode()
            os.write(write, outcome)
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert os.read(read, 500) == b"ok" and status == 0
        os.close(read)
        room.push("shout", {"who": "parent again"})  # the parent's pool is untouched
        assert got.wait_count(2)[-1] == {"who": "parent again"}
