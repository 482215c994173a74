"""ProcessClient: lazy, once under concurrency, replaced after a fork or a close, closed at exit; listen()."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import threading

import pytest

import maxsdk
from maxsdk import ChannelState, Client
from maxsdk.integrations import ProcessClient, listen, topic_matches
from tests.client.helpers import fast_client


@pytest.fixture
def holder(phoenix_server):
    holder = ProcessClient(lambda: fast_client(phoenix_server.url, params={"user_id": f"p{os.getpid()}"}))
    yield holder
    holder.close()


def opened(server):
    return [e for e in server.events() if e.kind == "opened"]


def test_nothing_connects_before_first_use(holder, phoenix_server):
    assert holder.current is None and holder.pid is None
    assert opened(phoenix_server) == []
    client = holder.get()
    assert client.connected and holder.current is client and holder.pid == os.getpid()
    assert holder.get() is client
    phoenix_server.wait_for_connections(1)  # the server records the connection just after the client sees it
    assert len(opened(phoenix_server)) == 1


def test_concurrent_first_use_creates_one_client_and_one_join(holder, phoenix_server):
    barrier = threading.Barrier(8)
    clients, channels, errors = [], [], []

    def use():
        try:
            barrier.wait(5)
            clients.append(holder.get())
            channels.append(holder.join("room:lobby"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len({id(c) for c in clients}) == 1
    assert len({id(c) for c in channels}) == 1 and channels[0].joined
    assert len(opened(phoenix_server)) == 1
    joins = [m for m in phoenix_server.messages() if m.event == "phx_join"]
    assert len(joins) == 1


def test_push_joins_once_and_reuses_the_channel(holder, phoenix_server):
    assert holder.push("room:lobby", "echo", {"n": 1}).response == {"n": 1}
    assert holder.push("room:lobby", "echo", {"n": 2}).response == {"n": 2}
    assert len([m for m in phoenix_server.messages() if m.event == "phx_join"]) == 1


def test_a_channel_closed_by_the_server_is_replaced(holder):
    room = holder.join("room:lobby")
    closed = threading.Event()
    holder.get().on_signal(maxsdk.signals.channel_closed, lambda _client, **kw: closed.set())
    room.push("close_channel_reply")  # the server stops the channel: phx_close follows the reply
    assert closed.wait(5) and room.state is ChannelState.CLOSED
    again = holder.join("room:lobby")
    assert again is not room and again.joined


def test_a_fresh_channel_keeps_its_handlers_until_joined(holder, phoenix_server):
    room = holder.channel("room:lobby")
    got = []
    room.on("shout", got.append)
    assert holder.join("room:lobby") is room
    with room.expect("shout") as shout:
        phoenix_server.broadcast("room:lobby", "shout", {"hi": 1})
        shout.wait(5)
    assert got == [{"hi": 1}]


def test_a_closed_client_is_replaced_on_next_use(holder):
    first = holder.get()
    first.close()
    second = holder.get()
    assert second is not first and second.connected


def test_a_failed_connect_keeps_nothing_and_the_next_use_retries(phoenix_server):
    phoenix_server.refuse_connections(403)
    holder = ProcessClient(lambda: fast_client(phoenix_server.url))
    try:
        with pytest.raises(maxsdk.AuthenticationError):
            holder.get()
        assert holder.current is None
        phoenix_server.accept_connections()
        assert holder.get().connected
    finally:
        holder.close()


def test_setup_runs_once_per_new_client_and_may_join(phoenix_server):
    calls = []

    def setup(client: Client) -> None:
        calls.append(client)
        holder.join("room:lobby")

    holder = ProcessClient(lambda: fast_client(phoenix_server.url), setup=setup)
    try:
        client = holder.get()
        holder.get()
        assert calls == [client]
        assert holder.channel("room:lobby").joined
    finally:
        holder.close()


def test_the_factory_must_return_a_client():
    holder = ProcessClient(lambda: "not a client")  # type: ignore[arg-type,return-value]
    with pytest.raises(maxsdk.ConfigurationError):
        holder.get()


def _run_in_child(fn) -> bytes:
    """Fork; run ``fn()`` in the child and return what it wrote (bytes), failing after 20 s."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        outcome = b""
        try:
            outcome = fn()
        except BaseException as exc:
            outcome = f"error: {exc!r}".encode()
        finally:
            os.write(write, outcome)
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 20)
        if not ready:
            os.kill(pid, 9)
            pytest.fail("the child process hung")
        return os.read(read, 1000)
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_the_child_of_a_fork_gets_its_own_client(holder, phoenix_server):
    parent_client = holder.get()
    holder.join("room:lobby")

    def child() -> bytes:
        assert holder.current is None  # the inherited client is not usable here
        client = holder.get()
        reply = holder.push("room:lobby", "echo", {"pid": os.getpid()})
        same = client is parent_client
        holder.close()
        return f"{same} {holder.pid} {reply.response['pid']}".encode()

    same, pid, echoed = _run_in_child(child).decode().split()
    assert same == "False" and pid == echoed and int(pid) != os.getpid()
    # The child connected with its own pid in the params, and the parent's connection still works.
    child_conn = phoenix_server.wait_for_event(lambda e: e.kind == "opened" and e.params.get("user_id") == f"p{pid}")
    assert child_conn.connection_id is not None
    assert holder.get() is parent_client
    assert holder.push("room:lobby", "echo", {"parent": True}).response == {"parent": True}


def test_a_lock_held_during_the_fork_does_not_deadlock_the_child(holder):
    holder.get()
    locked, release = threading.Event(), threading.Event()

    def hold():
        with holder._lock:
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(5)
        outcome = _run_in_child(lambda: str(holder.get().connected).encode())
    finally:
        release.set()
        thread.join(5)
    assert outcome == b"True"


def test_the_client_is_closed_cleanly_at_interpreter_exit(phoenix_server, tmp_path):
    script = textwrap.dedent(
        f"""
        from maxsdk import Client
        from maxsdk.integrations import ProcessClient

        holder = ProcessClient(lambda: Client({phoenix_server.url!r}, params={{"user_id": "exiting"}}))
        holder.push("room:lobby", "echo", {{}})
        print("pushed", flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pushed"
    opened_event = phoenix_server.wait_for_event(lambda e: e.kind == "opened" and e.params.get("user_id") == "exiting")
    closed = phoenix_server.wait_for_event(
        lambda e: e.kind == "closed" and e.connection_id == opened_event.connection_id
    )
    assert closed.code == 1000  # a close handshake, not a dropped socket
    leave = phoenix_server.wait_for_message(event="phx_leave", topic="room:lobby")
    assert leave.connection_id == opened_event.connection_id


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [("room:lobby", "room:lobby", True), ("room:*", "room:42", True), ("room:*", "rooms:1", False), ("a", "ab", False)],
)
def test_topic_matches(pattern, topic, expected):
    assert topic_matches(pattern, topic) is expected


def test_listen_hands_events_to_the_callback_until_count(holder, phoenix_server):
    seen = []
    joined = threading.Event()

    def run():
        seen.append(
            listen(
                holder,
                ["room:lobby", "echo:x"],
                lambda channel, event, payload: seen.append((channel.topic, event, payload)),
                events=["shout"],
                count=2,
                joined=lambda channel: joined.set() if channel.topic == "echo:x" else None,
            )
        )

    thread = threading.Thread(target=run)
    thread.start()
    assert joined.wait(5)
    phoenix_server.broadcast("room:lobby", "shout", {"n": 1})
    phoenix_server.broadcast("room:lobby", "other", {"n": 2})
    phoenix_server.broadcast("room:lobby", "shout", {"n": 3})
    thread.join(10)
    result = seen.pop()
    assert seen == [("room:lobby", "shout", {"n": 1}), ("room:lobby", "shout", {"n": 3})]
    assert result.ok and result.reason == "count" and result.handled == 2


def test_listen_ends_when_the_server_closes_a_channel(holder):
    def close_it(channel):
        holder.get()  # same client
        channel.push_nowait("close_channel")

    result = listen(holder, ["room:lobby"], lambda *args: None, joined=close_it, duration=10)
    assert not result.ok and result.reason == "channel_closed"
    assert "room:lobby" in result.detail


def test_listen_returns_after_duration(holder):
    result = listen(holder, {"room:lobby": {}}, lambda *args: None, duration=0.2)
    assert result.ok and result.reason == "duration"
