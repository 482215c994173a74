"""A peer that stops reading (issue: writes froze the timer, push timeouts and close())."""

from __future__ import annotations

import json
import threading
import time

import pytest

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer

pytestmark = pytest.mark.timeout(60)

MIB = "x" * (1024 * 1024)


def join_then_stop_reading(conn: RawConnection) -> None:
    """Answer the upgrade and the first join like Phoenix, then never read again."""
    conn.accept_upgrade()
    while True:
        opcode, payload = conn.read_frame()
        if opcode != 0x1:
            continue
        join_ref, ref, topic, event, _ = json.loads(payload)
        if event == "phx_join":
            reply = [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}]
            conn.send_frame(0x1, json.dumps(reply).encode())
            break
    conn.hold()


def stuck_client(server: RawServer, **options) -> maxsdk.Client:
    options.setdefault("heartbeat_interval", 30.0)
    options.setdefault("reconnect", Backoff(steps=(0.05,), jitter="none"))
    options.setdefault("close_timeout", 1.0)
    return maxsdk.Client(server.url + "/socket", **options)


def test_push_with_a_timeout_returns_in_time_while_the_peer_reads_nothing() -> None:
    with RawServer(join_then_stop_reading, receive_buffer=4096) as server:
        client = stuck_client(server)
        try:
            room = client.join("room:stuck", timeout=5)
            started = time.monotonic()
            pending = [room.push_nowait("big", {"blob": MIB}, timeout=1.0) for _ in range(8)]
            queued_in = time.monotonic() - started
            assert queued_in < 1.0, f"push_nowait blocked for {queued_in:.2f} s"
            started = time.monotonic()
            with pytest.raises(maxsdk.ReplyTimeoutError):
                room.push("small", {}, timeout=1.0)
            assert time.monotonic() - started < 1.8
            for waiter in pending:
                with pytest.raises(maxsdk.ReplyTimeoutError):
                    waiter.wait()
        finally:
            started = time.monotonic()
            client.close()
            closed_in = time.monotonic() - started
        # close_timeout is 1 s: leaving, the close frame and the joins all fit in it (the
        # margin is for thread scheduling only; it took 1.3 s when leaving used the whole budget).
        assert closed_in < 1.0 + 0.15, f"close() took {closed_in:.2f} s against a stuck peer"
        assert client.state is maxsdk.ConnectionState.CLOSED
        assert not [t for t in client.threads if t.is_alive()]


def test_a_write_stuck_for_the_heartbeat_timeout_drops_the_connection_and_reconnects() -> None:
    with RawServer(join_then_stop_reading, receive_buffer=4096) as server:
        client = stuck_client(server, heartbeat_interval=1.0, heartbeat_timeout=1.0)
        lost = threading.Event()
        client.on_signal(maxsdk.signals.disconnected, lambda sender, **kw: lost.set())
        try:
            room = client.join("room:stuck", timeout=5)
            for _ in range(8):
                room.push_nowait("big", {"blob": MIB}, timeout=10.0)
            assert lost.wait(10), "a stuck write never counted as a dead connection"
            assert server.wait_for_connections(2, timeout=10), "no reconnect after the stuck write"
        finally:
            client.close()


def test_heartbeats_and_timers_keep_running_while_a_write_is_stuck() -> None:
    with RawServer(join_then_stop_reading, receive_buffer=4096) as server:
        client = stuck_client(server)
        try:
            room = client.join("room:stuck", timeout=5)
            for _ in range(8):
                room.push_nowait("big", {"blob": MIB}, timeout=10.0)
            # The timer thread still acts on deadlines: short pushes time out on time, one after another.
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(maxsdk.ReplyTimeoutError):
                    room.push("ping", {}, timeout=0.3)
                assert time.monotonic() - started < 1.0
            assert client.diagnostics().state is maxsdk.ConnectionState.CONNECTED
        finally:
            client.close()
