"""The WebSocket transport: websocket-client for the handshake, TLS and sending;
a buffered frame reader of our own for receiving.

Why our own reader: websocket-client parses each frame with several small
Python calls and only checks a frame's size after buffering all of it. Reading
64 KiB at a time and slicing frames out of one buffer is several times
cheaper per frame, and it lets us refuse (and skip, without buffering) a frame
larger than ``max_message_size`` as soon as its header arrives. The handshake
reads the HTTP response one byte at a time, so no frame bytes are left inside
websocket-client when we take over the socket.

Every exception of websocket-client, ``ssl`` and ``socket`` is mapped to ours
here and nowhere else.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import websocket

from maxsdk._runtime.deflate import Deflate, DeflateSession, negotiate
from maxsdk.errors import (
    AuthenticationError,
    ConnectFailedError,
    ConnectionLostError,
    HandshakeError,
    MessageTooLargeError,
    RemoteProtocolError,
    TLSVerificationError,
)
from maxsdk.protocol.handler import WebSocketPing

__all__ = [
    "BINARY",
    "CLOSE",
    "TEXT",
    "BatchingTransport",
    "Transport",
    "TransportOptions",
    "WebSocketTransport",
    "open_websocket",
]

log = logging.getLogger("maxsdk.transport")

TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
try:  # python-socks (the socks extra): a refusal by the SOCKS proxy (its other errors are OSErrors)
    from python_socks import ProxyError as _SocksProxyError

    _SOCKS_ERRORS: tuple[type[Exception], ...] = (_SocksProxyError,)
except ImportError:  # pragma: no cover - without the extra no SOCKS proxy is accepted
    _SOCKS_ERRORS = ()
#: What a failed connection attempt may raise, mapped to ConnectFailedError.
_CONNECT_ERRORS: tuple[type[Exception], ...] = (OSError, websocket.WebSocketException, ValueError, *_SOCKS_ERRORS)

_CONT, _PING, _PONG = 0x0, 0x9, 0xA
_READ_SIZE = 65536
_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


class Transport(Protocol):
    """What the engine needs from a connection (WebSocket, long-poll).

    Optional attributes the engine reads with ``getattr``: ``kind``
    (``"websocket"`` by default), ``heartbeats`` (``True`` by default) and
    ``send_many`` (see :class:`BatchingTransport`).
    """

    def recv(self) -> tuple[int, Any]:
        """Block for the next message: ``(TEXT, str)``, ``(BINARY, bytes)`` or
        ``(CLOSE, (code, reason))``. Raises :class:`ConnectionLostError` or
        :class:`RemoteProtocolError` (the latter leaves the transport usable).
        """

    def send(self, frame: str | bytes) -> int:
        """Send one text (``str``) or binary (``bytes``) message; return bytes written."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start a clean close (sends a close frame); never raises."""

    def abort(self) -> None:
        """Drop the connection at once, waking a blocked :meth:`recv`; never raises."""


class BatchingTransport(Transport, Protocol):
    """A transport that sends several messages at once (long-poll: one NDJSON POST).

    When a transport has ``send_many``, the engine hands it every queued frame
    in one call instead of calling :meth:`~Transport.send` per frame.
    """

    def send_many(self, frames: list[str | bytes]) -> int:
        """Send ``frames`` in order; return bytes written. Raises :class:`ConnectionLostError`."""


@dataclass(frozen=True)
class TransportOptions:
    """How to open a WebSocket.

    Attributes:
        headers: extra HTTP headers for the upgrade request.
        subprotocols: values for ``Sec-WebSocket-Protocol``.
        origin: an ``Origin`` header; ``None`` sends none (reference checklist 5).
        connect_timeout: seconds for TCP connect + TLS + upgrade.
        ssl_context: the TLS context for ``wss://`` URLs.
        max_message_size: larger incoming messages are refused; ``None`` = no limit.
        proxy: ``(host, port, auth)`` of a proxy, or ``None``.
        proxy_type: ``"http"`` (CONNECT) or ``"socks5"``, ``"socks5h"``, ``"socks4"``, ``"socks4a"``.

    """

    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    connect_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    max_message_size: int | None = 16 * 1024 * 1024
    proxy: tuple[str, int, tuple[str, str] | None] | None = None
    proxy_type: str = "http"
    #: permessage-deflate settings to offer (``None``: no compression).
    compression: Deflate | None = None


def open_websocket(url: str, options: TransportOptions, *, redacted_url: str) -> WebSocketTransport:
    """Open a WebSocket to ``url`` and return the transport.

    Raises:
        AuthenticationError: the upgrade was refused with 401 or 403.
        HandshakeError: the upgrade was refused with another status.
        TLSVerificationError: the certificate did not verify.
        ConnectFailedError: any other failure (refused, DNS, timeout, reset).

    """
    sslopt = {"context": options.ssl_context} if options.ssl_context is not None else None
    ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True, sslopt=sslopt)
    kwargs: dict[str, Any] = {
        "timeout": options.connect_timeout,
        "header": [f"{name}: {value}" for name, value in options.headers]
        + ([f"Sec-WebSocket-Extensions: {options.compression.offer()}"] if options.compression else []),
        "suppress_origin": options.origin is None,
    }
    if options.origin is not None:
        kwargs["origin"] = options.origin
    if options.subprotocols:
        kwargs["subprotocols"] = list(options.subprotocols)
    if options.proxy is not None:
        host, port, auth = options.proxy
        kwargs.update(http_proxy_host=host, http_proxy_port=port, proxy_type=options.proxy_type)
        if auth is not None:
            kwargs["http_proxy_auth"] = auth
    try:
        ws.connect(url, **kwargs)  # type: ignore[no-untyped-call]
    except websocket.WebSocketBadStatusException as exc:
        _close_quietly(ws)
        status = int(getattr(exc, "status_code", 0) or 0)
        body = _body_text(getattr(exc, "resp_body", b""))
        error_class = AuthenticationError if status in (401, 403) else HandshakeError
        raise error_class(status, url=redacted_url, body=body) from None
    except ssl.SSLCertVerificationError as exc:
        _close_quietly(ws)
        raise TLSVerificationError(
            f"TLS certificate verification failed for {redacted_url}: {exc.verify_message}", url=redacted_url
        ) from None
    except _CONNECT_ERRORS as exc:
        _close_quietly(ws)
        raise ConnectFailedError(f"cannot connect to {redacted_url}: {_describe(exc)}", url=redacted_url) from None
    sock = ws.sock
    assert sock is not None
    deflate = None
    if options.compression is not None:
        try:
            deflate = negotiate(options.compression, (ws.getheaders() or {}).get("sec-websocket-extensions"))
        except RemoteProtocolError as exc:
            _close_quietly(ws)
            raise ConnectFailedError(f"cannot connect to {redacted_url}: {exc}", url=redacted_url) from None
    sock.settimeout(None)
    return WebSocketTransport(ws, sock, options.max_message_size, redacted_url, deflate=deflate)


class WebSocketTransport:
    """An open WebSocket connection.

    ``recv`` is called by one thread (the reader); ``send``, ``close`` and
    ``abort`` may be called from any thread.
    """

    def __init__(
        self,
        ws: websocket.WebSocket,
        sock: socket.socket,
        max_message_size: int | None,
        redacted_url: str,
        *,
        deflate: DeflateSession | None = None,
    ) -> None:
        self._ws = ws
        #: The negotiated permessage-deflate codec (``None``: uncompressed).
        self.deflate = deflate
        self._fragment_compressed = False
        self._deflate_lock = threading.Lock()
        self._sock = sock
        self._limit = max_message_size
        self._url = redacted_url
        self._buf = bytearray()
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._skipping_message = False
        self._close_sent = False
        self.subprotocol: str | None = ws.getsubprotocol()
        #: Called with each pong's payload on the reader thread (protocols that use WebSocket pings).
        self.on_pong: Callable[[bytes], None] | None = None

    # -- sending ------------------------------------------------------------------

    def send(self, frame: str | bytes) -> int:
        """Send a text (``str``) or binary (``bytes``) message, or a :class:`WebSocketPing` as a ping."""
        if self.deflate is not None and type(frame) is not WebSocketPing and len(frame) >= self.deflate.min_size:
            return self._send_compressed(frame)
        try:
            if isinstance(frame, str):
                return self._ws.send(frame, websocket.ABNF.OPCODE_TEXT)
            if type(frame) is WebSocketPing:
                return self._ws.send(frame, websocket.ABNF.OPCODE_PING)
            return self._ws.send(frame, websocket.ABNF.OPCODE_BINARY)
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLostError(f"send failed: {_describe(exc)}", code=1006, url=self._url) from None

    def _send_compressed(self, frame: str | bytes) -> int:
        deflate = self.deflate
        assert deflate is not None
        opcode = websocket.ABNF.OPCODE_TEXT if isinstance(frame, str) else websocket.ABNF.OPCODE_BINARY
        data = frame.encode() if isinstance(frame, str) else frame
        try:
            with self._deflate_lock:  # one compressor: compress and write in the same order
                payload = deflate.compress(data)
                return self._ws.send_frame(websocket.ABNF(1, 1, 0, 0, opcode, 1, payload))
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLostError(f"send failed: {_describe(exc)}", code=1006, url=self._url) from None

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once); the reader then sees the server's close."""
        if self._close_sent:
            return
        self._close_sent = True
        try:
            self._ws.send(struct.pack("!H", code) + reason.encode()[:120], websocket.ABNF.OPCODE_CLOSE)
        except (OSError, websocket.WebSocketException):
            pass

    def abort(self) -> None:
        """Shut the socket down (waking the reader) and release it."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        self._ws.connected = False

    # -- receiving ----------------------------------------------------------------

    def _fill(self, needed: int) -> None:
        """Read until at least ``needed`` unread bytes are buffered."""
        buf = self._buf
        if self._pos and self._pos >= len(buf) // 2:
            del buf[: self._pos]
            self._pos = 0
        while len(buf) - self._pos < needed:
            try:
                chunk = self._sock.recv(max(_READ_SIZE, needed))
            except OSError as exc:
                raise ConnectionLostError(
                    f"connection lost: {_describe(exc)}", code=1006, reason=_describe(exc), url=self._url
                ) from None
            if not chunk:
                raise ConnectionLostError(
                    "connection closed by the peer without a close frame",
                    code=1006,
                    reason="closed without a close frame",
                    url=self._url,
                )
            buf += chunk

    def recv(self) -> tuple[int, Any]:
        """Return the next complete message or close (see :class:`Transport`)."""
        while True:
            buf = self._buf
            if len(buf) - self._pos < 2:
                self._fill(2)
                buf = self._buf
            pos = self._pos
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            header = 2
            if length == 126:
                if len(buf) - pos < 4:
                    self._fill(4)
                    buf, pos = self._buf, self._pos
                length = _unpack_16(buf, pos + 2)[0]
                header = 4
            elif length == 127:
                if len(buf) - pos < 10:
                    self._fill(10)
                    buf, pos = self._buf, self._pos
                length = _unpack_64(buf, pos + 2)[0]
                header = 10
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if b1 & 0x80 or b0 & 0x70:
                # RSV1 marks a compressed message (RFC 7692 §6): on its first data frame only.
                if b1 & 0x80 or b0 & 0x30 or self.deflate is None or opcode == _CONT or opcode >= 0x8:
                    raise self._fatal("server frames must not be masked or use extension bits")
                return self._recv_compressed(opcode, fin, header, length)
            if opcode >= 0x8:
                if length > 125 or not fin:
                    raise self._fatal("invalid control frame")
            elif self._skipping_message:
                # The rest of an oversize fragmented message: discard (already reported).
                self._skip(header, length)
                self._skipping_message = not fin
                continue
            else:
                limit = self._limit
                total = length + (self._fragment_size if opcode == _CONT else 0)
                if limit is not None and total > limit:
                    self._skip(header, length)
                    if self._fragment_compressed and opcode == _CONT:
                        self._lose_window()
                    self._reset_fragments()
                    self._skipping_message = not fin
                    raise MessageTooLargeError(total, limit)
            end = pos + header + length
            if len(buf) < end:
                self._fill(header + length)
                buf, pos = self._buf, self._pos
                end = pos + header + length
            if opcode == TEXT and fin and not self._fragments:
                # The common case: decode straight from the buffer to str (no intermediate
                # bytes copy, and json.loads skips its encoding detection).
                self._pos = end
                try:
                    return TEXT, str(memoryview(buf)[pos + header : end], "utf-8")
                except UnicodeDecodeError:
                    raise RemoteProtocolError("text frame is not valid UTF-8", frame=bytes(buf[pos:end][:64])) from None
            data = bytes(buf[pos + header : end])
            self._pos = end
            if opcode in (TEXT, BINARY):
                if fin:
                    if self._fragments:
                        raise self._fatal("new message before the previous fragmented one ended")
                    return opcode, data
                self._fragments.append(data)
                self._fragment_opcode = opcode
                self._fragment_size = length
                continue
            if opcode == _CONT:
                if not self._fragments:
                    raise self._fatal("continuation frame without a message")
                self._fragments.append(data)
                self._fragment_size += length
                if fin:
                    message = b"".join(self._fragments)
                    opcode = self._fragment_opcode
                    compressed = self._fragment_compressed
                    self._reset_fragments()
                    if compressed:
                        return self._inflate(opcode, message)
                    if opcode == TEXT:
                        try:
                            return TEXT, message.decode()
                        except UnicodeDecodeError:
                            raise RemoteProtocolError("text message is not valid UTF-8", frame=message[:64]) from None
                    return opcode, message
                continue
            if opcode == CLOSE:
                code = _unpack_16(data)[0] if len(data) >= 2 else 1005
                reason = data[2:].decode("utf-8", "replace")
                self.close(code if code not in (1005, 1006, 1015) else 1000)
                return CLOSE, (code, reason)
            if opcode == _PING:
                try:
                    self._ws.send(data, websocket.ABNF.OPCODE_PONG)
                except (OSError, websocket.WebSocketException):
                    pass
                continue
            if opcode == _PONG:
                if self.on_pong is not None:
                    self.on_pong(data)
                continue
            raise self._fatal(f"unknown opcode {opcode:#x}")

    def _recv_compressed(self, opcode: int, fin: int, header: int, length: int) -> tuple[int, Any]:
        """The first frame of a compressed message: inflate it (bounded) once complete."""
        if self._fragments:
            raise self._fatal("new message before the previous fragmented one ended")
        limit = self._limit
        if limit is not None and length > limit:
            self._skip(header, length)
            self._skipping_message = not fin
            self._lose_window()
            raise MessageTooLargeError(length, limit)
        self._fill(header + length)
        pos = self._pos
        data = bytes(self._buf[pos + header : pos + header + length])
        self._pos = pos + header + length
        if fin:
            return self._inflate(opcode, data)
        self._fragments.append(data)
        self._fragment_opcode = opcode
        self._fragment_size = length
        self._fragment_compressed = True
        return self.recv()

    def _lose_window(self) -> None:
        """A compressed message was skipped unread: with context takeover, close with 1009."""
        deflate = self.deflate
        if deflate is not None and not deflate.server_no_context_takeover:
            deflate.usable = False
            self.close(1009, "message too big")
            self.abort()

    def _inflate(self, opcode: int, data: bytes) -> tuple[int, Any]:
        deflate = self.deflate
        assert deflate is not None
        try:
            message = deflate.decompress(data, self._limit)
        except MessageTooLargeError:
            if not deflate.usable:  # the shared window is lost: nothing after this can be inflated
                self._lose_window()
            raise
        except RemoteProtocolError as exc:
            raise self._fatal(str(exc)) from None
        if opcode == TEXT:
            try:
                return TEXT, message.decode()
            except UnicodeDecodeError:
                raise RemoteProtocolError("text message is not valid UTF-8", frame=message[:64]) from None
        return opcode, message

    def _skip(self, header: int, length: int) -> None:
        """Discard a frame without holding more than one read of it in memory."""
        remaining = header + length
        while True:
            available = len(self._buf) - self._pos
            if available >= remaining:
                self._pos += remaining
                return
            remaining -= available
            self._buf.clear()
            self._pos = 0
            self._fill(1)

    def _reset_fragments(self) -> None:
        self._fragment_compressed = False
        self._fragments = []
        self._fragment_size = 0
        self._fragment_opcode = 0

    def _fatal(self, message: str) -> ConnectionLostError:
        """A framing error we cannot resync from: close with 1002 and report."""
        log.warning("closing connection to %s: %s", self._url, message)
        self.close(1002, "protocol error")
        self.abort()
        return ConnectionLostError(f"WebSocket protocol error: {message}", code=1002, reason=message, url=self._url)


def _close_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - best effort cleanup of a failed handshake
        pass


def _body_text(body: Any) -> str:
    if isinstance(body, bytes):
        return body[:200].decode("utf-8", "replace")
    return str(body or "")[:200]


def _describe(exc: BaseException) -> str:
    """A short description of a network exception, without URLs (they may hold secrets)."""
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, websocket.WebSocketTimeoutException)):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, _SOCKS_ERRORS) or type(exc).__module__.startswith("python_socks"):
        return f"SOCKS proxy: {text}"
    if "?" in text or "://" in text:  # never echo a URL that might carry a token
        return type(exc).__name__
    return text
