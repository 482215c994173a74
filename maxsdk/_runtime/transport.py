"""The WebSocket transport: our own bounded handshake (:mod:`maxsdk._runtime.handshake`),
our own frame encoding for sending (:func:`masked_frame`: one ``struct`` header and
one big-integer XOR for the mask, a few times cheaper per push than building a
websocket-client ``ABNF`` object), and a buffered frame reader of our own for receiving.

Why our own reader: websocket-client parses each frame with several small
Python calls and only checks a frame's size after buffering all of it. Reading
64 KiB at a time and slicing frames out of one buffer is several times
cheaper per frame, and it lets us refuse (and skip, without buffering) a frame
larger than ``max_message_size`` as soon as its header arrives. A frame header
never makes us allocate what it declares: only what arrived is buffered, and a
fragmented message is reassembled in one growing buffer (no object per fragment).

Writing never holds the other threads up for long. A frame that the socket
does not take within a short slice is left *partial* for a background writer
to finish (see the engine); the socket has a write timeout, so a peer that
stops reading for that long is a dead connection (the write fails with
:class:`ConnectionLostError` and the engine reconnects); control frames are
never put in the middle of a partial frame; the close frame is skipped when a
stuck write holds the lock; and :meth:`WebSocketTransport.abort` takes no lock
at all, so it always wakes a blocked reader and writer.

Every exception of websocket-client, ``ssl`` and ``socket`` is mapped to ours
here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Protocol

from maxsdk._runtime.deflate import Deflate, DeflateSession, negotiate
from maxsdk._runtime.handshake import ConnectAttempt, open_upgraded
from maxsdk._runtime.handshake import describe_network_error as _describe
from maxsdk.endpoint import redact_url
from maxsdk.errors import ConnectFailedError, ConnectionLostError, MessageTooLargeError, RemoteProtocolError
from maxsdk.protocol.handler import WebSocketPing

__all__ = [
    "BINARY",
    "CLOSE",
    "TEXT",
    "BatchingTransport",
    "ReadPausedError",
    "Transport",
    "TransportOptions",
    "WebSocketTransport",
    "masked_frame",
    "open_websocket",
]

log = logging.getLogger("maxsdk.transport")

TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
_CONT, _PING, _PONG = 0x0, 0x9, 0xA
_READ_SIZE = 65536
#: The most one recv() asks for: a frame's declared length is never allocated up front.
_MAX_READ = 1024 * 1024
#: RFC 6455 5.2: the most significant bit of a 64-bit payload length must be 0.
_MAX_LENGTH = (1 << 63) - 1
_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from
_pack_header_16 = struct.Struct("!BBH").pack
_pack_header_64 = struct.Struct("!BBQ").pack
_urandom = os.urandom


class ReadPausedError(Exception):
    """A read with a deadline (:attr:`WebSocketTransport.read_deadline`) stopped before a message was complete.

    Nothing is lost: what arrived stays buffered for the next read.
    """


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
        """Drop the connection at once, waking a blocked :meth:`recv`; never raises (any thread)."""

    def release(self) -> None:
        """Free the connection's resources; the reader calls it once it stopped reading."""


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
        write_timeout: seconds a write may make no progress before the
            connection counts as dead (``None``: wait forever).
        proxy_type: ``"http"`` (a CONNECT tunnel) or ``"socks5"``,
            ``"socks5h"``, ``"socks4"``, ``"socks4a"`` (needs python-socks).
        compression: permessage-deflate settings to offer (``None``: no compression).
        attempt: lets another thread abort the attempt in progress.
        follow_redirects: the most redirects to follow on the opening request
            (``0``: none; rules in :mod:`maxsdk._runtime.redirects`).
        pins: SHA-256 digests of accepted server SPKIs (:mod:`maxsdk.tls`; empty: no pinning).

    """

    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    connect_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    max_message_size: int | None = 16 * 1024 * 1024
    proxy: tuple[str, int, tuple[str, str] | None] | None = None
    write_timeout: float | None = 30.0
    proxy_type: str = "http"
    compression: Deflate | None = None
    attempt: ConnectAttempt | None = None
    follow_redirects: int = 0
    pins: frozenset[bytes] = frozenset()


#: How long closing waits for a write in progress before skipping the close frame.
_CLOSE_FRAME_WAIT = 0.25


def open_websocket(url: str, options: TransportOptions, *, redacted_url: str) -> WebSocketTransport:
    """Open a WebSocket to ``url`` (see :mod:`maxsdk._runtime.handshake`) and return the transport.

    Raises:
        AuthenticationError: the upgrade was refused with 401 or 403.
        HandshakeError: the upgrade was refused with another status (redirects included).
        TLSVerificationError: the certificate did not verify.
        ConnectFailedError: any other failure (refused, DNS, timeout, reset, limits).

    """
    offer = options.compression
    extensions = (("Sec-WebSocket-Extensions", offer.offer()),) if offer is not None else ()
    upgraded = open_upgraded(
        url,
        headers=options.headers + extensions,
        subprotocols=options.subprotocols,
        origin=options.origin,
        timeout=options.connect_timeout,
        ssl_context=options.ssl_context,
        proxy=options.proxy,
        proxy_scheme=options.proxy_type,
        attempt=options.attempt,
        redacted_url=redacted_url,
        follow_redirects=options.follow_redirects,
        pins=options.pins,
    )
    if upgraded.redirects:
        redacted_url = redact_url(upgraded.url)
    sock = upgraded.sock
    deflate = None
    answer = upgraded.headers.get("sec-websocket-extensions")
    try:
        if offer is not None:
            deflate = negotiate(offer, answer)
        elif answer:
            raise RemoteProtocolError(f"the server accepted an extension we did not offer: {answer[:100]!r}")
    except RemoteProtocolError as exc:
        _close_quietly(sock)
        raise ConnectFailedError(f"cannot connect to {redacted_url}: {exc}", url=redacted_url) from None
    # Reads wait as long as they must (a timeout just reads again); writes give up after write_timeout.
    sock.settimeout(options.write_timeout)
    return WebSocketTransport(
        sock,
        options.max_message_size,
        redacted_url,
        options.write_timeout,
        subprotocol=upgraded.subprotocol,
        initial=upgraded.leftover,
        deflate=deflate,
    )


def masked_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """One final client frame (RFC 6455 §5.2): header, a fresh 4-byte mask key, masked payload.

    ``rsv1`` marks a permessage-deflate compressed message (RFC 7692 §6).
    """
    n = len(payload)
    first = 0xC0 | opcode if rsv1 else 0x80 | opcode
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = _pack_header_16(first, 0xFE, n)
    else:
        header = _pack_header_64(first, 0xFF, n)
    key = _urandom(4)
    if not n:
        return header + key
    # XOR as one big integer: a single C-level pass whatever the size.
    keys = key * (n // 4 + 1)
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(keys[:n], "little")).to_bytes(n, "little")
    return header + key + masked


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class WebSocketTransport:
    """An open WebSocket connection.

    ``recv`` is called by one thread (the reader); ``send``, ``close`` and
    ``abort`` may be called from any thread.
    """

    def __init__(
        self,
        sock: socket.socket,
        max_message_size: int | None,
        redacted_url: str,
        write_timeout: float | None = None,
        *,
        subprotocol: str | None = None,
        initial: bytes = b"",
        deflate: DeflateSession | None = None,
    ) -> None:
        #: The negotiated permessage-deflate codec (``None``: uncompressed).
        self.deflate = deflate
        self._fragment_compressed = False
        self._deflate_lock = threading.Lock()
        self._sock = sock
        self._limit = max_message_size
        self._url = redacted_url
        #: The URL this connection went to (after any followed redirects), redacted.
        self.redacted_url = redacted_url
        self._buf = bytearray(initial)  # frames that arrived with the upgrade response
        self._pos = 0
        # One growing buffer for a fragmented message: no per-fragment objects, whatever their size.
        self._fragments = bytearray()
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._skipping_message = False
        self._close_sent = False
        self._write_lock = threading.Lock()
        self._write_timeout = write_timeout
        #: A non-blocking twin of the socket (a duplicate descriptor) for a first write
        #: attempt: a socket with a timeout polls before every send, and changing its
        #: timeout for a bounded write costs two more system calls. Plain TCP only (a
        #: TLS socket's state is in its SSL object), and only while the descriptor is
        #: non-blocking anyway, as a socket with a timeout is.
        self._nonblocking: socket.socket | None = None
        if write_timeout is not None and type(sock) is socket.socket:
            try:
                self._nonblocking = sock.dup()
                self._nonblocking.setblocking(False)
            except OSError:
                self._nonblocking = None
        #: A data frame is half written: its rest must go before anything else.
        self._partial = False
        self.subprotocol = subprotocol
        #: Called with each pong's payload on the reading thread (protocols that use WebSocket pings).
        self.on_pong: Callable[[bytes], None] | None = None
        self._poller: Any = None
        #: When set (monotonic), reads give up with :class:`ReadPausedError` once nothing arrives by
        #: then, at any point of a frame: for a caller reading for itself, whose own wait ends.
        self.read_deadline: float | None = None
        #: Bytes of a skipped frame still to discard, and what to do once they are (a skip
        #: paused by ``read_deadline`` resumes there).
        self._skip_left = 0
        self._after_skip: Callable[[], Exception | None] | None = None

    # -- reading from another thread (see maxsdk._runtime.read_baton) ---------------

    def buffered(self) -> bool:
        """Whether received bytes wait in our buffer (or in the TLS layer's) unread."""
        if len(self._buf) > self._pos:
            return True
        pending = getattr(self._sock, "pending", None)
        return bool(pending is not None and pending())

    def wait_readable(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a read can start; ``True`` if it can.

        A shut-down or failed socket counts as readable: the read reports it.
        """
        if self.buffered():
            return True
        return self._poll(timeout)

    def _poll(self, timeout: float) -> bool:
        """Whether the socket becomes readable within ``timeout`` seconds."""
        pending = getattr(self._sock, "pending", None)
        if pending is not None and pending():
            return True
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            try:
                poller.register(self._sock, select.POLLIN | select.POLLPRI)
            except (OSError, ValueError):
                return True  # closed meanwhile: the read says so
        try:
            return bool(poller.poll(max(0.0, timeout) * 1000.0))
        except (OSError, ValueError):
            return True

    # -- sending ------------------------------------------------------------------

    def send(self, frame: str | bytes) -> int:
        """Send a text (``str``) or binary (``bytes``) message, or a :class:`WebSocketPing` as a ping.

        Blocks until it is written; a write that makes no progress for the
        socket's write timeout raises :class:`ConnectionLostError`.
        """
        if self.deflate is None:
            data = self.encode(frame)
            self.write(data)
            return len(data)
        with self._deflate_lock:  # one compressor: compress and write in the same order
            data = self.encode(frame)
            self.write(data)
        return len(data)

    def encode(self, frame: str | bytes) -> bytes:
        """The masked frame bytes of a message (text for ``str``, binary for ``bytes``, or a ping).

        With permessage-deflate the message is compressed here: frames must be
        written in the order they were encoded.
        """
        if isinstance(frame, str):
            opcode, payload = TEXT, frame.encode()
        elif type(frame) is WebSocketPing:
            if len(frame) > 125:
                raise ValueError("a ping carries at most 125 bytes")
            opcode, payload = _PING, bytes(frame)
        else:
            opcode, payload = BINARY, frame
        deflate = self.deflate
        if deflate is not None and opcode != _PING and len(payload) >= deflate.min_size:
            return masked_frame(opcode, deflate.compress(bytes(payload)), rsv1=True)
        return masked_frame(opcode, payload)

    def write(self, data: bytes | memoryview, within: float | None = None) -> int:
        """Write frame bytes; return how many were written.

        With ``within``, give up after about that many seconds and return a
        short count: the frame is then *partial*, and its rest must be written
        (with :meth:`write`) before anything else. Without it, write it all.

        Raises:
            ConnectionLostError: the socket failed, or made no progress for its
                write timeout (a peer that stopped reading).

        """
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        sock = self._sock
        deadline = None
        with self._write_lock:
            try:
                if self._nonblocking is not None:
                    try:  # the common case: the socket buffer takes it all, at once
                        sent = self._nonblocking.send(view)
                    except BlockingIOError:
                        pass
                if sent < total and within is not None:
                    deadline = time.monotonic() + within
                while sent < total:
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        sock.settimeout(left if self._write_timeout is None else min(left, self._write_timeout))
                    try:
                        sent += sock.send(view[sent:])
                    except TimeoutError:
                        if deadline is None or time.monotonic() < deadline:
                            raise
                        break
            except OSError as exc:
                raise ConnectionLostError(f"send failed: {_describe(exc)}", code=1006, url=self._url) from None
            finally:
                self._partial = sent < total
                if deadline is not None:
                    try:
                        sock.settimeout(self._write_timeout)
                    except OSError:
                        pass  # aborted meanwhile (closed socket): the next use reports it
        return sent

    def _send_control(self, payload: bytes, opcode: int, *, wait: float | None = None) -> None:
        """Send a control frame between two data frames, or skip it.

        Skipped when a data frame is half written (a control frame in its
        middle would break the stream) or, with ``wait``, when a stuck write
        holds the lock that long.
        """
        if not self._write_lock.acquire(timeout=-1 if wait is None else wait):
            log.debug("%s: a write is stuck; control frame %#x skipped", self._url, opcode)
            return
        try:
            if not self._partial:
                self._sock.sendall(masked_frame(opcode, payload))
        except OSError:
            pass
        finally:
            self._write_lock.release()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once); the reader then sees the server's close."""
        if self._close_sent:
            return
        self._close_sent = True
        payload = struct.pack("!H", code) + reason.encode()[:120]
        self._send_control(payload, CLOSE, wait=_CLOSE_FRAME_WAIT)

    def abort(self) -> None:
        """Shut the socket down, waking the reader and any blocked write; never raises.

        The descriptor stays open until :meth:`release`: closing it here, from
        another thread, could let a new socket reuse its number while the
        reader is between reading the number and entering ``recv()``, and the
        reader would then wait on somebody else's connection for good.
        """
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        """Close the socket; called by the reader once its read loop ended (after :meth:`abort`)."""
        self.abort()
        # Writers (heartbeats, close frames, a stuck writer) hold the write lock; after the
        # shutdown they fail at once. If one still holds it, the socket is left to the GC.
        if self._write_lock.acquire(timeout=1.0):
            try:
                for sock in (self._sock, self._nonblocking):
                    if sock is not None:
                        try:
                            sock.close()
                        except OSError:
                            pass
            finally:
                self._write_lock.release()

    # -- receiving ----------------------------------------------------------------

    def _fill(self, needed: int) -> None:
        """Read until at least ``needed`` unread bytes are buffered."""
        buf = self._buf
        if self._pos and self._pos >= len(buf) // 2:
            del buf[: self._pos]
            self._pos = 0
        while len(buf) - self._pos < needed:
            sock = self._sock
            deadline = self.read_deadline
            if deadline is not None:
                if not self._poll(deadline - time.monotonic()):
                    raise ReadPausedError
                # Readable: the non-blocking twin reads without the poll a socket with a
                # timeout makes before every recv.
                sock = self._nonblocking or sock
            try:
                # What the peer *sent* is buffered, never what a frame header *says* it will send.
                chunk = sock.recv(min(max(_READ_SIZE, needed - (len(buf) - self._pos)), _MAX_READ))
            except (TimeoutError, BlockingIOError):
                continue  # the socket's timeout is meant for writes: reads wait on
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
            if self._skip_left:
                self._finish_skip()  # a skip that a read deadline paused
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
                if length > _MAX_LENGTH:
                    raise self._fatal("a frame length with the most significant bit set")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if b1 & 0x80 or b0 & 0x70:
                # RSV1 marks a compressed message (RFC 7692 §6): on its first data frame only.
                if b1 & 0x80 or b0 & 0x30 or self.deflate is None or opcode == _CONT or opcode >= 0x8:
                    raise self._fatal("server frames must not be masked or use extension bits")
                if self._fragment_opcode:
                    raise self._fatal("new message before the previous fragmented one ended")
                self._fragment_compressed = True
            if opcode >= 0x8:
                if length > 125 or not fin:
                    raise self._fatal("invalid control frame")
            elif self._skipping_message:
                # The rest of an oversize fragmented message: discard (already reported).
                if opcode != _CONT:
                    raise self._fatal("new message before the previous fragmented one ended")
                self._skip(header, length, partial(self._skipped_fragment, fin))
                continue
            else:
                limit = self._limit
                total = length + (self._fragment_size if opcode == _CONT else 0)
                if limit is not None and total > limit:
                    self._skip(header, length, partial(self._skipped_oversize, total, limit, fin))
            end = pos + header + length
            if len(buf) < end:
                self._fill(header + length)
                buf, pos = self._buf, self._pos
                end = pos + header + length
            if self._fragment_compressed and opcode < 0x8:
                if opcode != _CONT:
                    if self._fragment_opcode:
                        raise self._fatal("new message before the previous fragmented one ended")
                    self._fragment_opcode = opcode
                self._fragments += memoryview(buf)[pos + header : end]
                self._pos = end
                self._fragment_size += length
                if not fin:
                    continue
                message, opcode = bytes(self._fragments), self._fragment_opcode
                self._reset_fragments()
                return self._inflate(opcode, message)
            if opcode == TEXT and fin and not self._fragment_opcode:
                # The common case: decode straight from the buffer to str (no intermediate
                # bytes copy, and json.loads skips its encoding detection).
                self._pos = end
                try:
                    return TEXT, str(memoryview(buf)[pos + header : end], "utf-8")
                except UnicodeDecodeError:
                    raise RemoteProtocolError("text frame is not valid UTF-8", frame=bytes(buf[pos:end][:64])) from None
            if opcode in (TEXT, BINARY):
                if self._fragment_opcode:
                    raise self._fatal("new message before the previous fragmented one ended")
                if fin:
                    self._pos = end
                    return opcode, bytes(buf[pos + header : end])
                self._fragments += memoryview(buf)[pos + header : end]
                self._pos = end
                self._fragment_opcode = opcode
                self._fragment_size = length
                continue
            if opcode == _CONT:
                if not self._fragment_opcode:
                    raise self._fatal("continuation frame without a message")
                self._fragments += memoryview(buf)[pos + header : end]
                self._pos = end
                self._fragment_size += length
                if fin:
                    whole = self._fragments
                    opcode = self._fragment_opcode
                    self._reset_fragments()
                    if opcode == TEXT:
                        try:
                            return TEXT, str(whole, "utf-8")
                        except UnicodeDecodeError:
                            raise RemoteProtocolError(
                                "text message is not valid UTF-8", frame=bytes(whole[:64])
                            ) from None
                    return opcode, bytes(whole)
                continue
            data = bytes(buf[pos + header : end])
            self._pos = end
            if opcode == CLOSE:
                code = _unpack_16(data)[0] if len(data) >= 2 else 1005
                reason = data[2:].decode("utf-8", "replace")
                self.close(code if code not in (1005, 1006, 1015) else 1000)
                return CLOSE, (code, reason)
            if opcode == _PING:
                self._send_control(data, _PONG)
                continue
            if opcode == _PONG:
                if self.on_pong is not None:
                    self.on_pong(data)
                continue
            raise self._fatal(f"unknown opcode {opcode:#x}")

    def recv_many(self, limit: int = 128) -> list[tuple[int, Any]]:
        """Block for the next message (as :meth:`recv`), then add the complete text
        messages already buffered behind it, up to ``limit`` in all, in order.

        The batch stops before any frame that is not a final, unmasked,
        uncompressed text frame of at most 65,535 bytes within
        ``max_message_size`` and valid UTF-8: the next call's :meth:`recv`
        handles it (and raises for it) as always. A close ends a batch.
        """
        first = self.recv()
        if first[0] == CLOSE or self._fragment_opcode or self._skipping_message:
            return [first]
        batch = [first]
        buf = self._buf
        pos = self._pos
        size = len(buf)
        limit_size = self._limit
        view = memoryview(buf)
        try:
            while len(batch) < limit and size - pos >= 2 and buf[pos] == 0x81:  # FIN, text, no RSV bits
                length = buf[pos + 1]  # the mask bit is 0: the length itself
                if length < 126:
                    start = pos + 2
                elif length == 126 and size - pos >= 4:
                    length = _unpack_16(buf, pos + 2)[0]
                    start = pos + 4
                else:
                    break  # masked, 64-bit length, or a header cut short
                end = start + length
                if end > size or (limit_size is not None and length > limit_size):
                    break
                try:
                    batch.append((TEXT, str(view[start:end], "utf-8")))
                except UnicodeDecodeError:
                    break
                pos = end
        finally:
            view.release()  # the buffer must stay resizable for the next read
        self._pos = pos
        return batch

    def _skip(self, header: int, length: int, after: Callable[[], Exception | None]) -> None:
        """Discard a frame without holding more than one read of it in memory, then run ``after``.

        The error ``after`` returns is raised. Resumable: see :meth:`_finish_skip`.
        """
        self._skip_left = header + length
        self._after_skip = after
        self._finish_skip()

    def _finish_skip(self) -> None:
        """Discard what is left of the frame being skipped; a paused read resumes here."""
        while True:
            available = len(self._buf) - self._pos
            if available >= self._skip_left:
                self._pos += self._skip_left
                self._skip_left = 0
                after, self._after_skip = self._after_skip, None
                error = after() if after is not None else None
                if error is not None:
                    raise error
                return
            self._skip_left -= available
            self._buf.clear()
            self._pos = 0
            self._fill(1)

    def _skipped_fragment(self, fin: int) -> None:
        """The rest of an oversize fragmented message was discarded (already reported)."""
        self._skipping_message = not fin

    def _skipped_oversize(self, total: int, limit: int, fin: int) -> MessageTooLargeError:
        """An oversize frame was discarded: the error to report (and the compressor's fate)."""
        if self._fragment_compressed:
            self._lose_window()
        self._reset_fragments()
        self._skipping_message = not fin
        return MessageTooLargeError(total, limit)

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

    def _reset_fragments(self) -> None:
        self._fragment_compressed = False
        self._fragments = bytearray()
        self._fragment_size = 0
        self._fragment_opcode = 0

    def _fatal(self, message: str) -> ConnectionLostError:
        """A framing error we cannot resync from: close with 1002 and report."""
        log.warning("closing connection to %s: %s", self._url, message)
        self.close(1002, "protocol error")
        self.abort()
        return ConnectionLostError(f"WebSocket protocol error: {message}", code=1002, reason=message, url=self._url)
