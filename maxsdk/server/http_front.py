"""One port for both transports: WebSocket upgrades and long-poll HTTP requests.

The ``websockets`` server cannot read request bodies, so every accepted TCP
connection first passes through :meth:`Listener._route`, which peeks at
the request line and either

* hands the connection to the unchanged
  ``websockets`` handler (every path but the long-poll one, so the WebSocket
  behaviour and its 404/400 answers stay exactly as they are), or
* serves it as a keep-alive HTTP/1.1 connection of long-poll requests
  (``<path>/longpoll``), answered by :class:`~.longpoll.LongPollHub`.

Both kinds of connection run on the thread ``websockets`` started for them,
so stopping the server joins them alike. Responses to long-poll requests
carry ``Access-Control-Allow-Origin: *`` and ``Cache-Control: no-store``
(reference §1.8).
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import urlsplit

from websockets.sync.server import Server

from .endpoint import Endpoint
from .longpoll import MAX_BODY, HttpRequest, HttpResponse, LongPollHub
from .redact import redact
from .websocket import WebSocketListener

logger = logging.getLogger(__name__)

_HEAD_LIMIT = 65536
_KEEPALIVE_TIMEOUT = 60.0  # Cowboy's idle_timeout
_connection_ids = itertools.count(1)


class Listener(WebSocketListener):
    """The WebSocket listener plus the long-poll endpoint on the same port."""

    def __init__(self, endpoint: Endpoint, *, host: str, port: int, path: str) -> None:
        """Prepare a listener for ``<path>/websocket`` and ``<path>/longpoll``."""
        super().__init__(endpoint, host=host, port=port, path=path)
        self.hub = LongPollHub(endpoint)
        self.longpoll_path = path.rstrip("/") + "/longpoll"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def _prepare(self, server: Server) -> None:
        """Route every accepted connection through :meth:`_route` before it starts serving."""
        with self._lock:
            self._stopping = False
        self.hub.start()
        upgrade = server.handler

        def route(sock: socket.socket, address: Any) -> None:
            self._route(server, upgrade, sock, address)

        server.handler = route

    def stop(self, *, abrupt: bool, code: int, reason: str = "") -> None:
        """End the long-poll sessions and connections, then stop the WebSocket side (joins all)."""
        with self._lock:
            self._stopping = True
            sockets = list(self._sockets)
        self.hub.stop(1006 if abrupt else code)
        for sock in sockets:
            _shutdown(sock)
        super().stop(abrupt=abrupt, code=code, reason=reason)

    # -- routing -------------------------------------------------------------------------

    def _route(self, server: Server, upgrade: Any, sock: socket.socket, address: Any) -> None:
        head = _read_request_line(sock, self._endpoint.settings.handshake_timeout)
        if head is not None and _request_path(head) == self.longpoll_path:
            try:
                self._serve_http(sock, address)
            finally:
                with server.lock:
                    server.handler_threads.discard(threading.current_thread())
            return
        if head is None:
            # Nothing (or no request line) within the handshake timeout: give up, as websockets would.
            _close(sock)
            with server.lock:
                server.handler_threads.discard(threading.current_thread())
            return
        upgrade(sock, address)

    def _serve_http(self, sock: socket.socket, address: Any) -> None:
        threading.current_thread().name = f"maxsdk-server-http-{next(_connection_ids)}"
        with self._lock:
            if self._stopping:
                _close(sock)
                return
            self._sockets.add(sock)
        try:
            _LongPollHandler(sock, address, cast(Any, self))
        except OSError:
            pass  # the peer went away, or stop() shut the socket down
        except Exception:
            logger.exception("long-poll connection failed")
        finally:
            with self._lock:
                self._sockets.discard(sock)
            _close(sock)


class _LongPollHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 on one connection; each request is answered by the hub."""

    protocol_version = "HTTP/1.1"
    server_version = "maxsdk"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = _KEEPALIVE_TIMEOUT
    server: Listener  # type: ignore[assignment]

    def do_GET(self) -> None:
        """Answer a poll (or open a session)."""
        self._answer()

    def do_POST(self) -> None:
        """Take client messages."""
        self._answer()

    def do_OPTIONS(self) -> None:
        """Answer a CORS preflight."""
        self._answer()

    def do_PUT(self) -> None:
        """Not part of the protocol: HTTP 400."""
        self._answer()

    do_DELETE = do_PATCH = do_HEAD = do_PUT  # noqa: N815

    def _answer(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError as exc:
            logger.info("long-poll: unreadable request body (%s)", exc)
            self.close_connection = True
            self._write(HttpResponse(400, json=False))
            return
        if url.path != self.server.longpoll_path:
            self._write(HttpResponse(404, json=False))
            return
        request = HttpRequest(
            method=self.command,
            query=url.query,
            headers=_flatten(self),
            body=body,
            path=url.path,
            remote_address=self.client_address,
        )
        response = self.server.hub.handle(request)
        if response is None:
            self.close_connection = True  # stopping: no answer
            return
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("content-length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise ValueError("bad content-length") from None
        if length < 0 or length > MAX_BODY:
            raise ValueError(f"content-length {length} out of range")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ValueError("body shorter than its content-length")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError("bad chunk size") from None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            size += chunk
            if size > MAX_BODY:
                raise ValueError("chunked body too large")
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(1024)

    def _write(self, response: HttpResponse) -> None:
        body = response.body.encode("utf-8")
        self.send_response(response.status)
        if response.json:
            self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("access-control-allow-origin", "*")
        self.send_header("cache-control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def version_string(self) -> str:
        """The ``Server`` header."""
        return "maxsdk"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the request line at DEBUG, tokens redacted."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("long-poll %s -> %s", redact(self.requestline), code)

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's messages to our logger, redacted."""
        logger.debug("long-poll: %s", redact(format % args))


def _read_request_line(sock: socket.socket, timeout: float) -> bytes | None:
    """Peek (without consuming) until the request line is complete; ``None`` on EOF or timeout.

    Peeking leaves every byte in the socket for whichever handler takes the
    connection (``websockets`` waits for the socket to be readable).
    """
    deadline = time.monotonic() + timeout
    seen = -1
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            data = sock.recv(_HEAD_LIMIT, socket.MSG_PEEK)
            if not data:
                return None
            if b"\n" in data or len(data) >= _HEAD_LIMIT:
                sock.settimeout(None)
                return data
            if len(data) == seen:
                # A request line split across segments (rare): peeking again returns
                # at once, so wait a little for the rest.
                time.sleep(0.005)
            seen = len(data)
    except OSError:
        return None


def _request_path(head: bytes) -> str | None:
    line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    parts = line.split(" ")
    if len(parts) != 3:
        return None
    return urlsplit(parts[1]).path


def _flatten(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
