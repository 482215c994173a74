"""``transport="auto"``: WebSocket first, long-poll when something blocks WebSockets.

A small proxy stands for the network in between: it forwards plain HTTP
(long-poll) to the embedded server and answers WebSocket upgrades the way
blocking proxies do (an error status, an HTML page, a reset, an EOF, or
nothing at all).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, signals
from maxsdk._runtime.connector import forget_transport_choices, remembered_transport
from maxsdk.server import PhoenixServer, ServerSettings
from tests.client.helpers import SignalLog, fast_client
from tests.support.relay import TcpRelay


@pytest.fixture(autouse=True)
def fresh_choices() -> Iterator[None]:
    forget_transport_choices()
    yield
    forget_transport_choices()


@pytest.fixture
def server(phoenix_server_factory: Any) -> PhoenixServer:
    server: PhoenixServer = phoenix_server_factory(settings=ServerSettings(longpoll_window=1.0))
    return server


class BlockingProxy(TcpRelay):
    """Forwards HTTP to ``upstream``; answers WebSocket upgrades according to ``mode``.

    Modes: ``"pass"`` (forward them too), ``"status:N"`` (HTTP N), ``"reset"``
    (RST), ``"eof"`` (FIN), ``"hang"`` (read the request, never answer).
    """

    def __init__(self, upstream: int, mode: str) -> None:
        self.upstream = upstream
        self.mode = mode
        self.upgrades = 0
        super().__init__(upstream)

    def url(self, path: str = "/socket") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def serve(self, conn: socket.socket) -> None:
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                head += chunk
        except OSError:
            return
        if b"upgrade: websocket" in head.lower() and self.mode != "pass":
            self.upgrades += 1
            self._block(conn)
            return
        upstream = self.connect_upstream()
        upstream.sendall(head)
        self.pipe_both_ways(conn, upstream)

    def _block(self, conn: socket.socket) -> None:
        mode = self.mode
        if mode == "hang":
            self._stopping.wait()
        elif mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "eof":
            conn.shutdown(socket.SHUT_RDWR)
        else:
            status = int(mode.split(":")[1])
            body = b"<html>blocked by policy</html>" if status == 200 else b""
            head = f"HTTP/1.1 {status} Blocked\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + body)
        conn.close()


@pytest.fixture
def proxy(server: PhoenixServer) -> Iterator[BlockingProxy]:
    proxy = BlockingProxy(server.port, "pass")
    yield proxy
    proxy.stop()


def fallback_log(client: maxsdk.Client) -> SignalLog:
    return SignalLog(client, extra=[signals.transport_fallback])


def test_a_refused_upgrade_falls_back_to_long_poll_which_works(server: PhoenixServer) -> None:
    server.refuse_connections(400, transport="websocket")
    client = fast_client(server.url, transport="auto")
    log = fallback_log(client)
    with client:
        assert client.diagnostics().transport == "longpoll"
        room = client.join("room:lobby")
        assert room.push("echo", {"via": "longpoll"}).response == {"via": "longpoll"}
        fallback = log.wait_for("transport_fallback")
        assert (fallback["from_"], fallback["to"]) == ("websocket", "longpoll")
        assert "HTTP 400" in fallback["reason"]
    kinds = [(e.kind, e.transport) for e in server.events()][:2]
    assert kinds == [("refused", "websocket"), ("opened", "longpoll")]
    assert remembered_transport(server.url) == "longpoll"


def test_the_choice_is_remembered_for_the_endpoint(server: PhoenixServer) -> None:
    server.refuse_connections(502, transport="websocket")
    with fast_client(server.url, transport="auto") as first:
        first.join("room:lobby")
    refusals = len([e for e in server.events() if e.kind == "refused"])
    server.accept_connections()
    second = fast_client(server.url, transport="auto")
    log = fallback_log(second)
    with second:
        assert second.diagnostics().transport == "longpoll"
        assert "before" in log.wait_for("transport_fallback")["reason"]
        assert second.join("room:lobby").joined
    assert len([e for e in server.events() if e.kind == "refused"]) == refusals, "no WebSocket attempt"
    with fast_client(server.url, transport="websocket") as explicit:
        assert explicit.diagnostics().transport == "websocket"  # "auto" only


@pytest.mark.parametrize("mode", ["status:502", "status:200", "status:426", "reset", "eof"])
def test_blocking_proxies_make_auto_fall_back(proxy: BlockingProxy, mode: str) -> None:
    proxy.mode = mode
    client = fast_client(proxy.url(), transport="auto")
    log = fallback_log(client)
    with client:
        assert client.diagnostics().transport == "longpoll"
        assert client.join("room:lobby").push("echo", {"m": mode}).response == {"m": mode}
        assert log.wait_for("transport_fallback")["to"] == "longpoll"
    assert proxy.upgrades == 1


def test_a_silent_proxy_falls_back_after_longpoll_fallback_after(proxy: BlockingProxy) -> None:
    proxy.mode = "hang"
    client = fast_client(proxy.url(), transport="auto", longpoll_fallback_after=0.5, connect_timeout=5.0)
    log = fallback_log(client)
    started = time.monotonic()
    with client:
        elapsed = time.monotonic() - started
        assert client.diagnostics().transport == "longpoll"
        assert "within 0.5 s" in log.wait_for("transport_fallback")["reason"]
        assert client.join("room:lobby").joined
    assert 0.4 <= elapsed < 3.0, elapsed


def test_without_longpoll_fallback_after_a_silent_proxy_only_times_out(proxy: BlockingProxy) -> None:
    proxy.mode = "hang"
    client = fast_client(proxy.url(), transport="auto", connect_timeout=0.3)
    log = fallback_log(client)
    with pytest.raises(maxsdk.ConnectTimeoutError):
        client.connect(timeout=0.8)
    client.close()
    assert log.of("transport_fallback") == []


@pytest.mark.parametrize("status", [401, 403])
def test_credential_refusals_do_not_fall_back(server: PhoenixServer, status: int) -> None:
    server.refuse_connections(status, transport="websocket")
    client = fast_client(server.url, transport="auto")
    log = fallback_log(client)
    with pytest.raises(maxsdk.AuthenticationError):
        client.connect()
    client.close()
    assert log.of("transport_fallback") == []
    assert {e.transport for e in server.events()} == {"websocket"}


def test_connection_refused_does_not_fall_back() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = fast_client(f"ws://127.0.0.1:{port}/socket", transport="auto")
    log = fallback_log(client)
    with pytest.raises(maxsdk.ConnectTimeoutError):
        client.connect(timeout=0.5)
    client.close()
    assert log.of("transport_fallback") == []


def test_once_a_websocket_opened_auto_stays_on_websocket(server: PhoenixServer) -> None:
    client = fast_client(server.url, transport="auto", reconnect=Backoff(steps=(0.02,), jitter="none"))
    log = fallback_log(client)
    with client:
        room = client.join("room:lobby")
        assert client.diagnostics().transport == "websocket"
        server.refuse_connections(502, transport="websocket")
        server.drop_connections()
        log.wait_for("reconnecting", count=3)
        server.accept_connections()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert room.push("echo", {}).response == {}
        assert client.diagnostics().transport == "websocket"
    assert log.of("transport_fallback") == []
    assert remembered_transport(server.url) is None
