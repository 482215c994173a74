"""Lifecycle: close joins every thread; no thread or file descriptor leaks across many cycles."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

import maxsdk
from maxsdk import Backoff, ChannelState, Client, ConnectionState
from tests.client.helpers import SignalLog, fast_client


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settles(condition, timeout: float = 10.0) -> bool:
    """Wait for a process-level condition that has no event to wait on (sockets the server
    is still closing on its own threads); checked every 50 ms, bounded by ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        gc.collect()
        pause.wait(0.05)
    return True


def _wait_for(get, timeout: float = 5.0):
    """Wait (bounded) until ``get()`` returns something; fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while (value := get()) is None:
        assert time.monotonic() < deadline, "condition not met within the timeout"
        pause.wait(0.001)
    return value


def test_connect_and_join_start_no_helper_thread_on_the_callers_thread(phoenix_server, monkeypatch):
    """Starting a thread waits for it to run: the reader starts the timer and the pool's worker."""
    started: list[tuple[str, str]] = []
    original = threading.Thread.start

    def recording_start(thread: threading.Thread) -> None:
        started.append((thread.name, threading.current_thread().name))
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    seen = threading.Event()
    with Client(phoenix_server.url) as client:
        maxsdk.signals.channel_joined.connect(lambda sender, **kw: seen.set(), sender=client, weak=False)
        room = client.join("room:lobby")
        by_caller = [name for name, by in started if by == threading.current_thread().name]
        assert [name.rsplit("-", 1)[1] for name in by_caller] == ["reader"]
        assert seen.wait(5), "the joined event still reaches its handler (on the pool's worker)"
        _wait_for(lambda: client._engine._timer.service.thread)
        reader = client.threads[0].name
        assert {name for name, by in started if by == reader} >= {"maxsdk-timer"}
        assert room.push("echo", {"n": 1}).response == {"n": 1}


def test_close_joins_every_thread_it_started(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    client.join("room:lobby")
    threads = client.threads
    # Handlers run on the process-wide dispatch pool and deadlines on the process-wide timer:
    # a client starts only its reader.
    assert [t.name.rsplit("-", 1)[1] for t in threads] == ["reader"]
    service = client._engine._timer.service
    # The reader joins the shared timer right after the join reply reached the caller.
    timer = _wait_for(lambda: service.thread)
    assert timer.is_alive()
    client.close()
    assert not any(t.is_alive() for t in threads)
    assert client.state is ConnectionState.CLOSED
    client.close()  # idempotent
    # The last client's close() also joined the shared timer thread: nothing is left behind.
    assert service.entries == 0
    assert not timer.is_alive(), "the last close() joins the shared timer thread"


def test_close_joins_the_dedicated_thread_of_a_channel_and_runs_what_was_queued(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    room = client.channel("room:lobby", dedicated_thread=True)
    seen = []
    room.on("flood_msg", lambda payload: seen.append((payload["i"], threading.current_thread().name)))
    room.join()
    threads = client.threads
    assert sorted(t.name.split("-", 2)[2] for t in threads) == ["dispatch-1", "reader"]
    room.push("flood", {"n": 200, "size": 10})  # the server pushes the 200 messages before its reply
    client.close()
    assert not any(t.is_alive() for t in threads)
    # Every message the reader queued before close was handled, in order, on the channel's thread.
    assert [i for i, _ in seen] == list(range(1, 201))
    assert {name for _, name in seen} <= {f"{client._engine.name}-dispatch-1"}


def test_close_leaves_channels_and_fails_pending_pushes(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    room = client.join("room:lobby")
    pending = room.push_nowait("noreply", {}, timeout=30)
    client.close()
    phoenix_server.wait_for_message(event="phx_leave", topic="room:lobby")
    with pytest.raises((maxsdk.ClientClosedError, maxsdk.ReplyLostError)):
        pending.wait()
    with pytest.raises(maxsdk.ClientClosedError):
        room.push("echo", {})


def test_client_can_connect_again_after_close(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    client.close()
    client.connect()
    assert client.join("room:lobby").push("echo", {"again": 1}).response == {"again": 1}
    client.close()


def test_joining_connects_a_client_that_was_never_started(phoenix_server):
    client = Client(phoenix_server.url)
    try:
        assert client.join("room:lobby").joined
    finally:
        client.close()


@pytest.mark.timeout(240)
def test_a_thousand_connect_close_cycles_leave_no_thread_or_fd_behind(phoenix_server):
    def cycle():
        with Client(phoenix_server.url) as client:
            client.join("room:lobby")

    for _ in range(20):  # warm up lazily created resources
        cycle()
    gc.collect()
    threads_before = threading.active_count()
    fds_before = open_fds()
    for _ in range(1000):
        cycle()
    gc.collect()
    phoenix_server.wait_for_connections(0, timeout=10)
    assert settles(lambda: threading.active_count() <= threads_before), threading.active_count()
    assert settles(lambda: open_fds() <= fds_before + 2), (open_fds(), fds_before)


@pytest.mark.timeout(240)
def test_a_thousand_reconnects_leave_no_thread_or_fd_behind(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect=Backoff.constant(0.001))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        reader = client.threads[0]
        gc.collect()
        threads_before = threading.active_count()
        fds_before = open_fds()
        for n in range(1, 1001):
            phoenix_server.drop_connections()
            log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=n, timeout=10)
        assert room.push("echo", {"n": 1000}).response == {"n": 1000}
        assert client.threads[0] is reader, "the reader thread survives reconnects"
        gc.collect()
        mine = [t for t in threading.enumerate() if t.name.startswith(client._engine.name + "-")]
        # The reader alone (a pool worker running this client's handler carries its name too).
        assert len([t for t in mine if not t.name.endswith("-dispatch")]) == 1
        # The server's per-connection threads and sockets come and go; allow for the one in flight.
        assert settles(lambda: threading.active_count() <= threads_before + 2), threading.active_count()
        assert settles(lambda: open_fds() <= fds_before + 4), (open_fds(), fds_before)
        assert client.diagnostics().reconnects == 1000


def test_a_client_used_after_fork_raises_a_clear_error_in_the_child(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    room = client.join("room:lobby")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happens, never return into pytest
        outcome = b"no error"
        try:
            room.push("echo", {})
        except maxsdk.ForkedClientError:
            outcome = b"ForkedClientError"
        except BaseException as exc:
            outcome = repr(exc).encode()
        client.close()  # must not hang or touch the parent's socket
        os.write(write, outcome)
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 200) == b"ForkedClientError"
    os.close(read)
    assert status == 0
    assert room.push("echo", {"parent": "ok"}).response == {"parent": "ok"}
    client.close()


def test_connect_and_join_queue_nothing_for_signals_nobody_listens_to(phoenix_server):
    with Client(phoenix_server.url, heartbeat_interval=None) as client:
        room = client.join("room:lobby")
        # No state_changed/connected notices went to the client's control lane, and the
        # channel's "joining" move (which nothing acts on) is not queued on its lane.
        control = client._engine._dispatcher.control
        assert control.handled == 0 and control.depth == 0
        assert ChannelState.JOINING in client._engine._session.unreported_states
        assert room.state is ChannelState.JOINED
    seen = []
    client = Client(phoenix_server.url, heartbeat_interval=None)
    client.on_signal(maxsdk.signals.state_changed, lambda _c, new, **_: seen.append(str(new)))
    try:
        client.connect()
        client.join("room:lobby")
    finally:
        client.close()
    assert seen[:2] == ["connecting", "connected"] and seen[-1] == "closed"
