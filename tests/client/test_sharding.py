"""Sharding: channels past the server's per-socket cap go to further sockets behind one Client."""

from __future__ import annotations

import os
import threading

import pytest

from maxsdk.server import ServerSettings
from tests.client.helpers import SignalLog, fast_client
from tests.support.faultproxy import FaultProxy


@pytest.mark.timeout(180)
def test_a_thousand_channels_on_one_client_against_a_server_capped_at_100(phoenix_server_factory):
    server = phoenix_server_factory(settings=ServerSettings(max_channels_per_transport=100))
    with FaultProxy(("127.0.0.1", server.port)) as proxy:
        client = fast_client(proxy.rewrite(server.url), heartbeat_interval=1.0)
        log = SignalLog(client)
        with client:
            rooms = [client.channel(f"room:{n}").join_nowait() for n in range(1000)]
            for room in rooms:
                room.wait_joined(30)
            assert client.sockets == 10
            per_socket = client.socket_diagnostics()
            assert [len(d.channels) for d in per_socket] == [100] * 10
            assert all(d.state == "connected" and d.frames_out >= 100 for d in per_socket)
            overall = client.diagnostics()
            after = client.socket_diagnostics()
            assert overall.sockets == 10 and len(overall.channels) == 1000
            # Heartbeats go on meanwhile: the sum lies between the snapshots taken around it.
            assert sum(d.frames_out for d in per_socket) <= overall.frames_out <= sum(d.frames_out for d in after)
            server.wait_for_connections(10)
            log.wait_for("connected", count=10)  # each socket reports its own connection
            for n in range(0, 1000, 37):
                assert rooms[n].push("echo", {"n": n}).response == {"n": n}

            # Every socket drops at once: each reconnects and rejoins its channels on its own.
            proxy.cut("rst")
            log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=1000, timeout=60)
            assert client.sockets == 10 and client.diagnostics().reconnects == 10
            assert all(room.joined for room in rooms)
            for n in range(5, 1000, 41):
                assert rooms[n].push("echo", {"n": n}).response == {"n": n}
            stats = client.stats()
            assert stats.sockets == 10 and stats.reconnects == 10

            # A socket whose last channel is left is closed on demand.
            for room in rooms[900:]:
                room.leave()
            assert client.sockets == 9
            server.wait_for_connections(9)
            # ...and a socket is opened again when the others are full.
            again = [client.join(f"room:again:{n}") for n in range(100)]
            assert client.sockets == 10
            assert [len(d.channels) for d in client.socket_diagnostics()] == [100] * 10
            assert again[-1].push("echo", {"last": True}).response == {"last": True}
        assert not any(t.is_alive() for t in client.threads)


@pytest.mark.timeout(60)
def test_concurrent_joins_past_the_cap_all_succeed(phoenix_server_factory):
    # The server caps at 10 but the client believes 100: refusals ("too many channels
    # joined") move each refused join to another socket, whatever the interleaving.
    server = phoenix_server_factory(settings=ServerSettings(max_channels_per_transport=10))
    with fast_client(server.url) as client:
        errors: list[BaseException] = []
        joined = []

        def worker(w: int) -> None:
            try:
                for n in range(10):
                    joined.append(client.join(f"room:{w}:{n}"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(joined) == 60 and all(room.joined for room in joined)
        assert client.sockets >= 6
        assert all(len(d.channels) <= 10 for d in client.socket_diagnostics())


def test_max_channels_per_socket_places_joins_without_waiting_for_a_refusal(phoenix_server):
    with fast_client(phoenix_server.url, max_channels_per_socket=3) as client:
        rooms = [client.join(f"room:{n}") for n in range(7)]
        assert client.sockets == 3
        assert [len(d.channels) for d in client.socket_diagnostics()] == [3, 3, 1]
        phoenix_server.wait_for_connections(3)
        assert {room._engine.name for room in rooms[6:]} != {rooms[0]._engine.name}
        threads = client.threads
        assert len(threads) == 3  # a reader per socket (the timer is shared by the process)
    assert not any(t.is_alive() for t in threads)


@pytest.mark.timeout(120)
def test_many_shard_open_close_cycles_leak_no_thread_and_no_socket(phoenix_server):
    # One channel per socket: every join opens a socket, every leave closes it.
    with fast_client(phoenix_server.url, max_channels_per_socket=1) as client:
        home = client.join("room:home")
        own_threads = client.threads
        threads_before = _alive_threads()
        fds_before = _open_fds()
        for n in range(150):
            room = client.join(f"room:cycle:{n}")
            assert client.sockets == 2
            assert room.push("echo", {"n": n}).response == {"n": n}
            room.leave()
            assert client.sockets == 1
        phoenix_server.wait_for_connections(1)
        # The process-wide pool and timer are shared (the timer may have started after
        # threads_before was taken: the reader starts it once the join reply is in).
        assert _alive_threads() <= threads_before | _shared_threads(), sorted(
            t.name for t in _alive_threads() - threads_before
        )
        assert sum(t.name == "maxsdk-timer" for t in _alive_threads()) == 1
        assert _open_fds() <= fds_before + 2  # a reused descriptor number may lag behind
        assert home.push("echo", {"home": True}).response == {"home": True}
        assert client.threads == own_threads


def _alive_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith("maxsdk-server")}


def _shared_threads() -> set[threading.Thread]:
    """The process-wide dispatch pool's threads and the shared timer thread."""
    return {t for t in threading.enumerate() if t.name.startswith("maxsdk-dispatch-") or t.name == "maxsdk-timer"}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
