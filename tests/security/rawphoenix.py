"""A small Phoenix server written on raw sockets, scripted by the test, for hostile-server tests.

It speaks just enough of the protocol (reference §1-§3, JSON v2): the upgrade,
unmasking client frames, ``phx_join`` and ``heartbeat`` replies. Every joined
channel is handed to ``on_join(conn, topic, join_ref)``, which may send any
frame, well-formed or not. Nothing of maxsdk's own server is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from typing import Any, Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """An unmasked server frame."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", n) + payload
    return head + bytes([127]) + struct.pack("!Q", n) + payload


class RawConnection:
    """One accepted client connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.request = b""
        self._buffer = b""
        self._send_lock = threading.Lock()

    def handshake(self) -> bytes:
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            self._buffer += chunk
        self.request, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in self.request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        return self.request

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        mask = self._read(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
        return b0 & 0x0F, data

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def send_text(self, text: str | bytes) -> None:
        self.send_raw(frame(text.encode() if isinstance(text, str) else text))

    def send(self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> None:
        self.send_text(json.dumps([join_ref, ref, topic, event, payload]))


class RawPhoenixServer:
    """Accepts connections on 127.0.0.1:0 until closed; see the module docstring."""

    def __init__(self, on_join: Callable[[RawConnection, str, str], None] | None = None) -> None:
        self.on_join = on_join
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/socket"
        self.connections: list[RawConnection] = []
        self.requests: list[bytes] = []
        self.received: list[Any] = []
        self._received_cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="raw-phoenix-accept", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = RawConnection(sock)
            self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="raw-phoenix-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: RawConnection) -> None:
        try:
            self.requests.append(conn.handshake())
            while True:
                opcode, data = conn.recv_frame()
                if opcode == 0x8:
                    conn.send_raw(frame(data[:2], 0x8))
                    return
                if opcode != 0x1:
                    continue
                join_ref, ref, topic, event, payload = json.loads(data)
                with self._received_cond:
                    self.received.append([join_ref, ref, topic, event, payload])
                    self._received_cond.notify_all()
                if event in ("phx_join", "heartbeat", "phx_leave"):
                    conn.send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
                if event == "phx_join" and self.on_join is not None:
                    self.on_join(conn, topic, join_ref)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            conn.sock.close()

    def wait_received(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        """Wait until ``predicate(received messages)`` holds; return the messages then."""
        with self._received_cond:
            if not self._received_cond.wait_for(lambda: predicate(self.received), timeout):
                raise AssertionError(f"the server did not receive what was expected within {timeout} s")
            return list(self.received)

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        except OSError:
            pass
        self.listener.close()
        for conn in self.connections:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.sock.close()
        for thread in self._threads:
            thread.join(5)
        self._accepter.join(5)

    def __enter__(self) -> RawPhoenixServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
