"""The process-wide threads (dispatch pool, timer): the last client's close() ends and joins them."""

from __future__ import annotations

import threading

import pytest

import maxsdk
from maxsdk import Backoff
from maxsdk._runtime.dispatcher import shared_pool
from maxsdk._runtime.timer import THREAD_NAME, Timer, shared_service
from tests.client import test_isolation as isolation
from tests.client.helpers import Inbox, fast_client


def maxsdk_threads() -> list[str]:
    """Names of the client side's maxsdk threads alive now (the embedded servers' left out)."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith("maxsdk") and "server" not in t.name and t.is_alive()
    )


def assert_used_and_running(client: maxsdk.Client) -> None:
    """The client delivers an event and a reply, so the pool and the timer thread are up."""
    room = client.join(f"room:check:{id(client)}")
    inbox = Inbox()
    room.on("shout", inbox)
    assert room.push("echo", {"n": 1}).response == {"n": 1}
    room.push("shout", {"n": 2})
    assert inbox.wait_count(1) == [{"n": 2}]
    assert shared_pool().threads and shared_service().thread is not None


@pytest.mark.timeout(30)
def test_closing_the_last_client_leaves_no_maxsdk_thread_and_the_next_starts_them_again(phoenix_server):
    for _ in range(3):
        client = fast_client(phoenix_server.url)
        client.connect()
        assert_used_and_running(client)
        timer = shared_service().thread
        pool_threads = shared_pool().threads
        assert timer is not None and timer.name == THREAD_NAME and pool_threads
        client.close()
        # No wait here: close() itself joined them.
        assert maxsdk_threads() == []
        assert not timer.is_alive() and not any(t.is_alive() for t in pool_threads)
        assert shared_pool().users == 0 and shared_pool().workers == 0 and shared_service().entries == 0


@pytest.mark.timeout(30)
def test_closing_one_of_two_clients_leaves_the_other_fully_working(phoenix_server):
    first = fast_client(phoenix_server.url)
    second = fast_client(phoenix_server.url)
    try:
        first.connect()
        second.connect()
        assert_used_and_running(first)
        assert_used_and_running(second)
        first.close()
        assert shared_service().thread is not None and shared_pool().users == 1
        # Events, pushes and replies still flow for the second client, several times over.
        room = second.join("room:after")
        got = Inbox()
        room.on("shout", got)
        for n in range(50):
            assert room.push("echo", {"n": n}).response == {"n": n}
            room.push("shout", {"n": n})
        assert got.wait_count(50) == [{"n": n} for n in range(50)]
    finally:
        first.close()
        second.close()
    assert maxsdk_threads() == []


@pytest.mark.timeout(120)
def test_many_rapid_client_cycles_leave_no_thread_and_the_last_still_delivers(phoenix_server):
    delivered = []
    for n in range(200):
        client = fast_client(phoenix_server.url)
        try:
            client.connect()
            room = client.join("room:cycle")
            inbox = Inbox()
            room.on("shout", inbox)
            room.push("shout", {"n": n})
            delivered = inbox.wait_count(1)
        finally:
            client.close()
        assert maxsdk_threads() == [], f"cycle {n}"
    assert delivered == [{"n": 199}]


@pytest.mark.timeout(30)
def test_close_from_a_handler_on_a_pool_worker_does_not_deadlock_and_the_worker_ends(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    room = client.join("room:lobby")
    closed = threading.Event()
    ran_on: list[threading.Thread] = []

    def close_here(_payload: dict) -> None:
        ran_on.append(threading.current_thread())
        client.close()  # the last client, on one of the pool's own threads
        closed.set()

    room.on("shout", close_here)
    room.push_nowait("shout", {})
    assert closed.wait(10), "close() in a handler deadlocked"
    assert client.closed
    worker = ran_on[0]
    worker.join(5)  # it cannot join itself: it ends right after the handler returned
    assert not worker.is_alive()
    assert maxsdk_threads() == []
    # The next client gets new threads and works.
    with fast_client(phoenix_server.url) as again:
        assert_used_and_running(again)
    assert maxsdk_threads() == []


@pytest.mark.timeout(30)
def test_close_from_the_timer_thread_does_not_deadlock_and_the_thread_ends(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    assert_used_and_running(client)
    closed = threading.Event()
    ran_on: list[threading.Thread] = []
    entry: Timer

    def tick(now: float) -> float | None:
        ran_on.append(threading.current_thread())
        entry.stop()  # so that the client's entry is the schedule's last one
        client.close()
        closed.set()
        return None

    entry = Timer(tick, name="closer")
    entry.start()
    assert closed.wait(10), "close() in a timer tick deadlocked"
    assert client.closed and ran_on[0].name == THREAD_NAME
    ran_on[0].join(5)  # it cannot join itself: it ends right after the tick returned
    assert not ran_on[0].is_alive()
    assert maxsdk_threads() == []
    with fast_client(phoenix_server.url) as again:
        assert_used_and_running(again)
    assert maxsdk_threads() == []


@pytest.mark.timeout(60)
def test_the_last_of_a_sharded_client_and_protocol_clients_joins_everything(phoenix_server, jsonrpc_server):
    client = fast_client(phoenix_server.url, max_channels_per_socket=2)
    rpc = maxsdk.JsonRpcClient(jsonrpc_server.url, reconnect=Backoff(steps=(0.01, 0.05), jitter="none"))
    try:
        client.connect()
        got = Inbox()
        for n in range(5):  # three sockets
            room = client.join(f"room:shard:{n}")
            room.on("shout", got)
            room.push("shout", {"n": n})
        assert sorted(p["n"] for p in got.wait_count(5)) == list(range(5))
        assert client.sockets == 3
        rpc.connect()
        assert rpc.call("echo", ["x"]) == ["x"]
        client.close()
        assert shared_pool().users == 1  # the JSON-RPC client holds the pool
        assert rpc.call("echo", ["y"]) == ["y"]
    finally:
        client.close()
        rpc.close()
    assert maxsdk_threads() == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_isolation_memory_and_overflow_sequence_repeated(phoenix_server):
    # Ending the pool on the last close once starved a lane here (a count kept a worker
    # that had ended): each round closes the last client and starts the pool anew.
    for round_ in range(10):
        isolation.test_memory_stays_bounded_while_a_blocked_channel_is_flooded(phoenix_server)
        assert maxsdk_threads() == [], round_
        isolation.test_overflow_policy_is_per_channel(phoenix_server)
        assert maxsdk_threads() == [], round_
