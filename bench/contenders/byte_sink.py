"""A discarding byte reader: the fastest a client could possibly take the bench server's flood.

It performs the WebSocket handshake by hand, joins, asks for a flood, then only
counts bytes with ``recv_into`` (C speed, no frame parsing) until the reply's
``phx_reply`` shows up. Its rate is the bench server's emit rate, the ceiling
that shows the server is not the bottleneck.

Usage: python byte_sink.py --workload receive --url ws://127.0.0.1:PORT/socket --params '{"n":N,"size":S}'
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from urllib.parse import urlsplit

from common import NotSupportedError, run

TOPIC = "room:bench"
MARKER = b"phx_reply"


def masked_text_frame(text: str) -> bytes:
    """A client-to-server text frame (clients must mask, RFC 6455 §5.3)."""
    data = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    length = len(data)
    short = length < 126
    header = bytes([0x81, 0x80 | (length if short else 126)]) + (b"" if short else length.to_bytes(2, "big"))
    return header + mask + masked


def handshake(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path}/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("handshake failed")
        response += chunk
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        raise ConnectionError(response.decode(errors="replace"))
    return sock


def read_until_marker(sock: socket.socket, buffer: bytearray) -> int:
    """Count bytes until ``phx_reply`` arrives; return the byte count."""
    view = memoryview(buffer)
    total = 0
    tail = b""
    while True:
        got = sock.recv_into(view)
        if not got:
            raise ConnectionError("server closed the connection")
        total += got
        if buffer.find(MARKER, 0, got) >= 0 or (tail + bytes(view[: len(MARKER) - 1])).find(MARKER) >= 0:
            return total
        tail = bytes(view[max(0, got - len(MARKER) + 1) : got])  # a marker split across two reads


def receive(url: str, n: int, size: int) -> dict[str, float]:
    sock = handshake(url)
    buffer = bytearray(1 << 20)
    sock.sendall(masked_text_frame(json.dumps(["1", "1", TOPIC, "phx_join", {}])))
    read_until_marker(sock, buffer)
    cpu0 = time.process_time()
    started = time.perf_counter()
    sock.sendall(masked_text_frame(json.dumps(["1", "2", TOPIC, "flood", {"n": n, "size": size}])))
    total = read_until_marker(sock, buffer)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    sock.close()
    return {
        "rate": n / elapsed,
        "elapsed_s": elapsed,
        "received": n,
        "bytes": total,
        "mb_s": total / elapsed / 1e6,
        "cpu_s_per_100k": cpu * 100_000 / n,
    }


def unsupported(**_: object) -> dict[str, float]:
    raise NotSupportedError("a byte counter only measures the server's emit rate")


if __name__ == "__main__":
    run({"receive": receive}, default=unsupported)
