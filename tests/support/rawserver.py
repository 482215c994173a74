"""A raw-socket server for hostile-server tests: it does on the wire exactly what the test scripts.

Nothing of maxsdk's embedded server is used: each accepted connection runs the
test's ``script(conn)`` on its own thread, where ``conn`` is a
:class:`RawConnection` that can read the upgrade request, answer it (or not,
or wrongly), send any frame bytes, stop reading, or drop the connection.

::

    def script(conn):
        conn.accept_upgrade()
        conn.send_frame(0x1, b'{"broken":')
        conn.hold()                          # keep the socket open, read nothing

    with RawServer(script) as server:
        client = maxsdk.Client(server.url + "/socket")
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["RawConnection", "RawServer", "frame_bytes"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame_bytes(opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None, rsv: int = 0) -> bytes:
    """An unmasked (server) frame; ``length`` overrides the declared payload length."""
    declared = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    if declared < 126:
        head += bytes([declared])
    elif declared < 1 << 16:
        head += bytes([126]) + struct.pack("!H", declared)
    else:
        head += bytes([127]) + struct.pack("!Q", declared)
    return head + payload


class RawConnection:
    """One accepted connection, driven by the test script."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.request_head = b""
        self._buffer = b""

    # -- the upgrade ------------------------------------------------------------------------

    def read_request(self, limit: int = 65536) -> bytes:
        """Read the client's HTTP request head (up to the blank line)."""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("client closed before sending its request")
            self._buffer += chunk
            if len(self._buffer) > limit:
                raise ConnectionError("request head too large")
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        self.request_head = head
        return head

    def header(self, name: str) -> str | None:
        """A header of the request read by :meth:`read_request`."""
        for line in self.request_head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def accept_upgrade(self, extra_headers: list[str] | None = None) -> None:
        """Read the request and answer 101 with a correct ``Sec-WebSocket-Accept``."""
        if not self.request_head:
            self.read_request()
        key = (self.header("Sec-WebSocket-Key") or "").encode()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept}",
            *(extra_headers or []),
        ]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())

    # -- bytes and frames ------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are."""
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes, **options: Any) -> None:
        """Send one unmasked frame (see :func:`frame_bytes`)."""
        self.sock.sendall(frame_bytes(opcode, payload, **options))

    def read_frame(self) -> tuple[int, bytes]:
        """Read one (masked) client frame: ``(opcode, payload)``."""
        b0, b1 = self._read(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else b"\0\0\0\0"
        data = self._read(length)
        return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("client closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def hold(self, timeout: float = 30.0) -> None:
        """Keep the connection open and read nothing until the server stops (or ``timeout``)."""
        self.server.stopping.wait(timeout)

    def drain(self, timeout: float = 30.0) -> None:
        """Read and discard everything until the client closes or the server stops."""
        self.sock.settimeout(0.1)
        while not self.server.stopping.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


class RawServer:
    """A threaded TCP server on 127.0.0.1 that runs ``script(conn)`` for every connection.

    Args:
        script: what to do with each :class:`RawConnection`; exceptions
            end that connection quietly (the test asserts on the client side).
        receive_buffer: ``SO_RCVBUF`` for accepted sockets (small values make
            a peer that stops reading fill up quickly).

    """

    def __init__(self, script: Callable[[RawConnection], None], *, receive_buffer: int | None = None) -> None:
        self.script = script
        self.receive_buffer = receive_buffer
        self.stopping = threading.Event()
        self.connections: list[RawConnection] = []
        self.accepted = threading.Condition()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer is not None:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="rawserver-accept", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.port}"

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` connections were accepted."""
        with self.accepted:
            return self.accepted.wait_for(lambda: len(self.connections) >= count, timeout)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = RawConnection(sock, self)
            with self.accepted:
                self.connections.append(conn)
                self.accepted.notify_all()
            thread = threading.Thread(target=self._run, args=(conn,), name="rawserver-conn", daemon=True)
            thread.start()
            self._threads.append(thread)  # after start(): close() may join it at any moment

    def _run(self, conn: RawConnection) -> None:
        try:
            self.script(conn)
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting, end every script's wait and close every socket."""
        self.stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        for conn in list(self.connections):
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
