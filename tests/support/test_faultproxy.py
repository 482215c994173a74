"""FaultProxy: every fault observable with plain sockets and an echo server; clean shutdown, no leaks."""

from __future__ import annotations

import gc
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import maxsdk

from .faultproxy import FaultProxy

TIMEOUT = 5.0
Connect = Callable[[], socket.socket]


class EchoServer:
    """A blocking echo server on 127.0.0.1; reports how each connection ended (``eof`` or ``reset``)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endings: queue.Queue[str] = queue.Queue()
        self.received: queue.Queue[bytes] = queue.Queue()
        self.echo = True
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept, name="echo-accept")
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            if self._stopping:
                conn.close()
                return
            self._sockets.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="echo-conn")
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        ending = "eof"
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.shutdown(socket.SHUT_WR)  # answer the client's FIN with ours
                    break
                self.received.put(data)
                if self.echo:
                    conn.sendall(data)
        except ConnectionResetError:
            ending = "reset"
        except OSError:
            ending = "error"
        conn.close()
        self.endings.put(ending)

    def stop(self) -> None:
        self._stopping = True
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes accept()
        self._acceptor.join(TIMEOUT)
        self.listener.close()
        for conn in self._sockets:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(TIMEOUT)
        for conn in self._sockets:
            conn.close()


def open_fds() -> set[str]:
    """Open descriptors, without the one ``listdir`` itself used (closed again when it returns)."""
    return {fd for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every thread the test started is joined and every descriptor it opened is closed."""
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    yield
    # maxsdk's process-wide threads (the shared timer, the dispatch pool) included: the last
    # client's close() joins them too.
    leaked = [t for t in threading.enumerate() if t not in threads_before]
    for thread in leaked:
        thread.join(TIMEOUT)
    assert not [t.name for t in leaked if t.is_alive()]
    gc.collect()  # sockets dropped without close() by other code are closed by their finalizers
    assert open_fds() - fds_before == set()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", echo.port)) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def connect(proxy: FaultProxy) -> Iterator[Connect]:
    sockets: list[socket.socket] = []

    def factory() -> socket.socket:
        sock = socket.create_connection(proxy.address, timeout=TIMEOUT)
        sockets.append(sock)
        return sock

    yield factory
    for sock in sockets:
        sock.close()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return recv_exactly(sock, len(data))


# -- forwarding ----------------------------------------------------------------------


def test_forwards_both_ways_and_counts(proxy: FaultProxy, connect: Connect) -> None:
    sock = connect()
    assert roundtrip(sock, b"hello") == b"hello"
    assert proxy.wait_for(lambda s: s.bytes_downstream == 5)
    stats = proxy.stats()
    assert (stats.accepted, stats.active, stats.bytes_upstream, stats.bytes_downstream) == (1, 1, 5, 5)
    other = connect()
    assert roundtrip(other, b"x") == b"x"
    assert proxy.stats().accepted == 2
    assert "FaultProxy" in repr(proxy)


def test_large_transfer_is_intact(proxy: FaultProxy, connect: Connect) -> None:
    payload = os.urandom(4 * 1024 * 1024)
    sock = connect()
    sender = threading.Thread(target=sock.sendall, args=(payload,))
    sender.start()
    assert recv_exactly(sock, len(payload)) == payload
    sender.join(TIMEOUT)


def test_half_close_is_forwarded(proxy: FaultProxy, connect: Connect, echo: EchoServer) -> None:
    sock = connect()
    sock.sendall(b"bye")
    sock.shutdown(socket.SHUT_WR)
    assert recv_exactly(sock, 3) == b"bye"
    assert sock.recv(10) == b""  # the server closed after our FIN reached it
    assert echo.endings.get(timeout=TIMEOUT) == "eof"
    assert proxy.wait_for(lambda s: s.active == 0)


def test_rewrite_points_a_url_at_the_proxy(proxy: FaultProxy) -> None:
    url = proxy.rewrite("ws://127.0.0.1:4000/socket/websocket?vsn=2.0.0")
    assert url == f"ws://127.0.0.1:{proxy.port}/socket/websocket?vsn=2.0.0"


# -- cut ---------------------------------------------------------------------------------


def test_cut_rst_resets_both_sides(proxy: FaultProxy, connect: Connect, echo: EchoServer) -> None:
    sock = connect()
    assert roundtrip(sock, b"a") == b"a"
    assert proxy.cut("rst") == 1
    with pytest.raises(ConnectionResetError):
        sock.recv(10)
    assert echo.endings.get(timeout=TIMEOUT) == "reset"
    stats = proxy.stats()
    assert (stats.cut, stats.active) == (1, 0)
    assert roundtrip(connect(), b"again") == b"again"  # later connections are forwarded


def test_cut_fin_closes_both_sides_cleanly(proxy: FaultProxy, connect: Connect, echo: EchoServer) -> None:
    sock = connect()
    assert roundtrip(sock, b"a") == b"a"
    assert proxy.cut("fin") == 1
    assert sock.recv(10) == b""
    assert echo.endings.get(timeout=TIMEOUT) == "eof"


def test_cut_with_nothing_open(proxy: FaultProxy) -> None:
    assert proxy.cut() == 0
    with pytest.raises(ValueError):
        proxy.cut("boom")  # type: ignore[arg-type]


# -- blackhole ----------------------------------------------------------------------------


def test_blackhole_keeps_tcp_open_but_forwards_nothing(proxy: FaultProxy, connect: Connect, echo: EchoServer) -> None:
    sock = connect()
    assert roundtrip(sock, b"a") == b"a"
    assert echo.received.get(timeout=TIMEOUT) == b"a"
    proxy.blackhole()
    sock.sendall(b"lost?")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # silent, but not closed
        sock.recv(10)
    assert echo.received.empty()
    assert proxy.stats().active == 1
    proxy.reset()  # the link heals: held bytes are delivered, as TCP would retransmit them
    sock.settimeout(TIMEOUT)
    assert recv_exactly(sock, 5) == b"lost?"


def test_blackhole_one_direction(proxy: FaultProxy, connect: Connect, echo: EchoServer) -> None:
    sock = connect()
    proxy.blackhole("downstream")
    sock.sendall(b"up")
    assert echo.received.get(timeout=TIMEOUT) == b"up"  # the server got it...
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # ...but its answer is held
        sock.recv(10)
    proxy.reset()
    sock.settimeout(TIMEOUT)
    assert recv_exactly(sock, 2) == b"up"


# -- delay and throttle --------------------------------------------------------------------


def test_delay_holds_every_chunk(proxy: FaultProxy, connect: Connect) -> None:
    sock = connect()
    roundtrip(sock, b"warm")
    proxy.delay(0.3)
    started = time.monotonic()
    assert roundtrip(sock, b"slow") == b"slow"
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3.0  # 0.3 s each way
    proxy.delay(0)
    started = time.monotonic()
    roundtrip(sock, b"fast")
    assert time.monotonic() - started < 0.3


def test_throttle_limits_the_rate(proxy: FaultProxy, connect: Connect) -> None:
    sock = connect()
    proxy.throttle(4000, direction="upstream")
    payload = os.urandom(2000)
    started = time.monotonic()
    assert roundtrip(sock, payload) == payload
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0  # 2000 bytes at 4000 B/s, about 0.5 s
    with pytest.raises(ValueError):
        proxy.throttle(0)


# -- refuse -----------------------------------------------------------------------------------


def test_refuse_then_reset(proxy: FaultProxy, connect: Connect) -> None:
    port = proxy.port
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=TIMEOUT).close()
    proxy.reset()
    assert proxy.port == port
    assert roundtrip(connect(), b"back") == b"back"


def test_refuse_keeps_open_connections(proxy: FaultProxy, connect: Connect) -> None:
    sock = connect()
    proxy.refuse()
    assert roundtrip(sock, b"still") == b"still"


def test_server_down_resets_the_client() -> None:
    # Bound but not listening: connections to the port are refused, and nobody else can take it meanwhile.
    spare = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    with spare, FaultProxy(("127.0.0.1", port)) as proxy:

        def connect_and_read() -> None:
            # The reset may even beat connect()'s own completion check.
            with socket.create_connection(proxy.address, timeout=TIMEOUT) as sock:
                if not sock.recv(10):
                    raise EOFError

        with pytest.raises((ConnectionResetError, EOFError)):
            connect_and_read()
        assert proxy.wait_for(lambda s: s.active == 0 and s.accepted == 1)


# -- lifecycle -----------------------------------------------------------------------------------


def test_stop_closes_everything_and_joins(echo: EchoServer) -> None:
    fds_before = open_fds()
    proxy = FaultProxy(("127.0.0.1", echo.port)).start()
    clients = [socket.create_connection(proxy.address, timeout=TIMEOUT) for _ in range(5)]
    for sock in clients:
        assert roundtrip(sock, b"x") == b"x"
    proxy.blackhole()
    proxy.delay(10)
    [thread] = proxy.threads
    proxy.stop()
    assert not thread.is_alive()
    assert proxy.threads == []
    for sock in clients:
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        sock.close()
    assert sorted(echo.endings.get(timeout=TIMEOUT) for _ in clients) == ["reset"] * 5
    assert open_fds() - fds_before == set()
    proxy.stop()  # twice is fine
    with pytest.raises(RuntimeError):
        proxy.cut()


def test_many_start_stop_cycles_leak_nothing(echo: EchoServer) -> None:
    fds_before = open_fds()
    for _ in range(20):
        with FaultProxy(("127.0.0.1", echo.port)) as proxy:
            sock = socket.create_connection(proxy.address, timeout=TIMEOUT)
            assert roundtrip(sock, b"y") == b"y"
            sock.close()
            assert echo.endings.get(timeout=TIMEOUT) == "eof"
    assert open_fds() - fds_before == set()


# -- in front of a real client ---------------------------------------------------------------------


def test_a_client_reconnects_through_the_proxy_after_a_cut(phoenix_server: Any) -> None:
    port = urlsplit(phoenix_server.url).port
    assert port is not None
    with FaultProxy(("127.0.0.1", port)) as proxy, maxsdk.Client(proxy.rewrite(phoenix_server.url)) as client:
        room = client.join("room:lobby")
        assert room.push("echo", {"a": 1}).response == {"a": 1}
        proxy.cut("rst")
        assert proxy.wait_for(lambda s: s.accepted >= 2 and s.active == 1, timeout=10)
        # Pushes made while the channel rejoins wait for the rejoin (reference §5.2).
        assert room.push("echo", {"a": 2}, timeout=10).response == {"a": 2}
