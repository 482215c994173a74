"""A raw WebSocket test client (websocket-client) that speaks frames, nothing more."""

from __future__ import annotations

import json
from typing import Any

import websocket

DEFAULT_TIMEOUT = 5.0


class ServerClosedError(Exception):
    """The server sent a close frame."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"server closed the connection: {code} {reason!r}")
        self.code = code
        self.reason = reason


def close_code(data: bytes) -> tuple[int | None, str]:
    """Parse a close frame payload."""
    if len(data) < 2:
        return None, ""
    return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def encode(frame: Any) -> str:
    """Encode a client frame the way phoenix.js does (compact JSON)."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class WireClient:
    """One raw connection; ``recv`` returns text frames as ``str`` and binary frames as ``bytes``."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws

    @classmethod
    def open(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> WireClient:
        ws = websocket.create_connection(
            url, timeout=timeout, enable_multithread=True, skip_utf8_validation=True, **options
        )
        return cls(ws)

    def send(self, frame: Any) -> None:
        """Send a str as text, bytes as binary, anything else as compact JSON text."""
        if isinstance(frame, bytes):
            self.ws.send_binary(frame)
        elif isinstance(frame, str):
            self.ws.send(frame)
        else:
            self.ws.send(encode(frame))

    def recv(self) -> str | bytes:
        """The next data frame; raises :class:`ServerClosedError` on a close frame."""
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return bytes(data).decode("utf-8")
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return bytes(data)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ServerClosedError(*close_code(data))

    def recv_json(self) -> Any:
        frame = self.recv()
        assert isinstance(frame, str), f"expected a text frame, got binary {frame!r}"
        return json.loads(frame)

    def recv_many(self, count: int) -> list[Any]:
        """The next ``count`` text frames, decoded."""
        return [self.recv_json() for _ in range(count)]

    def expect_close(self) -> tuple[int | None, str]:
        """Read until the server's close frame; returns ``(code, reason)``.

        websocket-client answers the close frame; like a well-behaved client we
        then close our side of the TCP connection, which ends the handshake.
        """
        while True:
            try:
                self.recv()
            except ServerClosedError as closed:
                self.shutdown()
                return closed.code, closed.reason

    def expect_drop(self) -> None:
        """Read until the connection ends without a close frame."""
        while True:
            try:
                self.recv()
            except ServerClosedError as closed:
                raise AssertionError(f"expected a drop without close frame, got close {closed.code}") from None
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return

    def join(self, topic: str, payload: Any = None, *, ref: str = "1") -> Any:
        """Join with join_ref = ref; returns the reply frame (decoded)."""
        self.send([ref, ref, topic, "phx_join", {} if payload is None else payload])
        return self.recv_json()

    def heartbeat(self, ref: str = "hb") -> None:
        """Send a heartbeat and read its reply (must be the next frame)."""
        self.send([None, ref, "phoenix", "heartbeat", {}])
        assert self.recv_json() == [None, ref, "phoenix", "phx_reply", {"response": {}, "status": "ok"}]

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.ws.abort()  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        """Close the socket (no close frame)."""
        self.ws.shutdown()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            self.abort()
        finally:
            self.shutdown()
