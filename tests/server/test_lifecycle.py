"""Start/stop/restart, idle timeout, and no thread or fd leaks."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import pytest
import websocket

from maxsdk.server import PhoenixServer, ServerSettings

from .conftest import ClientFactory, ServerFactory
from .test_channels import join_room
from .wire import WireClient


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_url_needs_a_port() -> None:
    server = PhoenixServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    assert PhoenixServer(port=4567).url == "ws://127.0.0.1:4567/socket/websocket"


def test_context_manager_starts_and_stops() -> None:
    with PhoenixServer() as server:
        assert server.running and server.port > 0
        client = WireClient.open(server.url + "?vsn=2.0.0")
        client.heartbeat()
        client.close()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(server.url, timeout=2)


def test_idle_timeout_closes_with_the_configured_code(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(idle_timeout=0.3))
    client = connect(server)
    started = time.monotonic()
    assert client.expect_close() == (1000, "")
    assert 0.25 <= time.monotonic() - started < 3
    bandit = make_server(settings=ServerSettings(idle_timeout=0.3, idle_close_code=1002))
    assert connect(bandit).expect_close() == (1002, "")


def test_any_frame_resets_the_idle_timer(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(idle_timeout=0.5))
    client = connect(server)
    deadline = time.monotonic() + 1.2
    pause = threading.Event()
    while time.monotonic() < deadline:
        client.ws.ping(b"keepalive")  # a WebSocket ping counts as activity (§1.6)
        pause.wait(0.15)  # pacing the client, not waiting for a condition
    client.heartbeat()
    assert server.connections


def test_stop_closes_with_1012_and_restarts_on_the_same_port(make_server: ServerFactory) -> None:
    server = make_server()
    port = server.port
    client = WireClient.open(server.url + "?vsn=2.0.0")
    join_room(client)
    reading: list[tuple[int | None, str]] = []
    reader = threading.Thread(target=lambda: reading.append(client.expect_close()))
    reader.start()
    server.stop()
    reader.join(5)
    assert reading == [(1012, "")]
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(server.url, timeout=2)
    server.start()
    assert server.port == port
    again = WireClient.open(server.url + "?vsn=2.0.0")
    try:
        join_room(again)
        assert list(server.presence("room:lobby")) == ["anon"]
    finally:
        again.close()
        client.close()


def test_abrupt_stop_drops_connections(make_server: ServerFactory) -> None:
    server = make_server()
    client = WireClient.open(server.url + "?vsn=2.0.0")
    try:
        join_room(client)
        started = time.monotonic()
        server.stop(abrupt=True)
        assert time.monotonic() - started < 2
        client.expect_drop()
    finally:
        client.close()
    assert [e.code for e in server.events() if e.kind == "closed"] == [1006]


def test_stop_does_not_wait_for_slow_handlers(make_server: ServerFactory) -> None:
    server = make_server()
    client = WireClient.open(server.url + "?vsn=2.0.0")
    try:
        join_room(client)
        client.send(["1", "2", "room:lobby", "slow", {"ms": 30_000}])
        server.wait_for_message(lambda m: m.event == "slow")
        started = time.monotonic()
        server.stop(abrupt=True)
        assert time.monotonic() - started < 3
    finally:
        client.close()


@pytest.mark.timeout(90)
def test_no_thread_or_fd_leaks_after_thousands_of_connections() -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    server = PhoenixServer(settings=ServerSettings(close_timeout=1.0)).start()
    try:
        for batch in range(20):
            clients = [WireClient.open(server.url + f"?vsn=2.0.0&user_id=u{batch}-{n}") for n in range(100)]
            for n, client in enumerate(clients):
                client.send([str(n), str(n), "room:lobby", "phx_join", {}])
            for client in clients:
                assert client.recv_json()[4]["status"] == "ok"
            for client in clients:
                client.close()
        server.wait_for_connections(0, timeout=30)
        assert server.presence("room:lobby") == {}
        # Finished connections leave nothing behind but idle workers (bounded).
        assert threading.active_count() - threads_before <= server.settings.max_workers + 2
    finally:
        server.stop()
    assert threading.active_count() == threads_before
    assert open_fds() <= fds_before + 2
    assert len([e for e in server.events() if e.kind == "closed"]) == 2000


def test_silent_tcp_connections_time_out_at_the_handshake(make_server: ServerFactory) -> None:
    server = make_server(settings=ServerSettings(handshake_timeout=0.3))
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server gave up on the missing upgrade request
        assert time.monotonic() - started < 3


def test_frames_are_logged_at_debug_without_secrets(
    make_server: ServerFactory, connect: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    with caplog.at_level(logging.DEBUG, logger="maxsdk.server"):
        client = connect(server, token="hunter2")
        client.join("room:private", {"password": "pw"})
        client.recv_many(2)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "room:private" in text
    assert "hunter2" not in text and '"pw"' not in text
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "room:private" in r.getMessage())
