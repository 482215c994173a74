"""The WebSocket listener, on the ``websockets`` library's threaded server.

Per connection, ``websockets`` runs a handler thread (our reader: it decodes
frames and feeds the session) and a thread that reads the socket. Writes from
any thread go through the connection's protocol lock, one batch at a time
(see ``ws_connection.py``).

Handshake rules (reference §1.1, §1.2, §1.4, §1.5): the socket answers at
``<path>/websocket`` (else 404); non-GET gets 400, a failed upgrade 400; the
endpoint refuses with 403 (bad ``vsn``, connect handler) or any status the
connect handler or a fault picks. With ``auth_token`` enabled the
``base64url.bearer.phx.<token>`` subprotocol is read and ``phoenix`` is echoed.
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from maxsdk._runtime.threads import start_thread

from .connect import ConnectRequest, Refuse
from .endpoint import Endpoint
from .query import decode_query
from .redact import RedactingFilter
from .serializer import MalformedFrameError
from .session import Session
from .ws_connection import PhoenixConnection, WebSocketTransport, close_code

logger = logging.getLogger(__name__)

# The websockets library logs request lines and headers at DEBUG: redact them.
_library_logger = logging.getLogger("maxsdk.server.websockets")
_library_logger.addFilter(RedactingFilter())

_BEARER = "base64url.bearer.phx."
_INTERNAL_ERROR = 1011


class WebSocketListener:
    """Accepts WebSocket connections for an :class:`~.endpoint.Endpoint`."""

    def __init__(self, endpoint: Endpoint, *, host: str, port: int, path: str) -> None:
        """Prepare a listener; nothing is bound until :meth:`start`."""
        self._endpoint = endpoint
        self._host = host
        self._port = port
        self._path = path.rstrip("/") + "/websocket"
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._abrupt = False

    @property
    def port(self) -> int:
        """The bound port (the requested one before the first start)."""
        return self._port

    def start(self) -> int:
        """Bind (with ``SO_REUSEADDR``) and serve in a thread; returns the port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        settings = self._endpoint.settings
        self._abrupt = False
        self._server = serve(
            self._handle,
            sock=sock,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            compression=None,
            server_header=None,
            ping_interval=None,
            ping_timeout=None,
            close_timeout=settings.close_timeout,
            max_size=settings.max_frame_size,
            create_connection=PhoenixConnection,
            logger=_library_logger,
            open_timeout=settings.handshake_timeout,
        )
        self._prepare(self._server)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"maxsdk-server-accept-{self._port}")
        start_thread(self._thread)
        return self._port

    def _prepare(self, server: Server) -> None:
        """Hook run before the first connection is accepted (the HTTP front routes here)."""

    def stop(self, *, abrupt: bool, code: int, reason: str = "") -> None:
        """Stop accepting, end every connection (abruptly or with ``code``) and join threads."""
        server, self._server = self._server, None
        if server is None:
            return
        if abrupt:
            self._abrupt = True
            for connection in server.connections:
                assert isinstance(connection, PhoenixConnection)
                connection.abort_on_close = True
        # Closes the listening socket first, then the connections, then joins handlers.
        server.shutdown(close_connections=True, code=code, reason=reason)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- handshake ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        assert isinstance(connection, PhoenixConnection)
        url = urlsplit(request.path)
        headers = _flatten(request.headers)
        params = decode_query(url.query)
        base = ConnectRequest(
            params=params,
            vsn="",
            headers=headers,
            path=url.path,
            remote_address=connection.remote_address,
        )
        if url.path != self._path:
            return self._refuse(connection, base, 404, f"no socket at {url.path!r}")
        if request.method != "GET":
            return self._refuse(connection, base, 400, f"method {request.method} not allowed")
        if self._abrupt:
            connection.abort_on_close = True
        origin = headers.get("origin")
        allowed = self._endpoint.settings.allowed_origins
        if origin is not None and allowed is not None and origin not in allowed:
            # Requests without an Origin header are not checked, as in Phoenix (§1.5).
            return self._refuse(connection, base, 403, f"origin {origin!r} not allowed")
        try:
            auth_token = self._auth_token(request.headers)
        except ValueError:
            return self._refuse(connection, base, 403, "undecodable auth token")
        request_info = ConnectRequest(
            params=params,
            vsn="",
            auth_token=auth_token,
            headers=headers,
            path=url.path,
            remote_address=connection.remote_address,
        )
        decision = self._endpoint.authorize(request_info)
        if isinstance(decision, Refuse):
            return connection.respond(decision.status, "")
        connection.accepted = decision
        return None

    def _refuse(self, connection: PhoenixConnection, request: ConnectRequest, status: int, why: str) -> Response:
        self._endpoint.refused(request, status, why)
        return connection.respond(status, "")

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> Response | None:
        # A failed upgrade (not a WebSocket request) is a 400 in Phoenix (§1.1).
        if response.status_code == 426:
            return connection.respond(400, "")
        return None

    def _auth_token(self, headers: Headers) -> str | None:
        """The decoded ``authToken`` (§1.4), if enabled and sent.

        Raises:
            ValueError: if the token is present but not base64 of UTF-8 text.

        """
        if not self._endpoint.settings.auth_token:
            return None
        for value in headers.get_all("Sec-WebSocket-Protocol"):
            for item in value.split(","):
                item = item.strip()
                if item.startswith(_BEARER):
                    encoded = item[len(_BEARER) :]
                    try:
                        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
                        return raw.decode("utf-8")
                    except (binascii.Error, UnicodeDecodeError) as exc:
                        raise ValueError("undecodable auth token") from exc
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        if self._endpoint.settings.auth_token and "phoenix" in subprotocols:
            return Subprotocol("phoenix")
        return None

    # -- connection ---------------------------------------------------------------------

    def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, PhoenixConnection)
        accepted = connection.accepted
        assert accepted is not None
        transport = WebSocketTransport(connection)
        session = self._endpoint.open_session(accepted, transport)
        threading.current_thread().name = f"maxsdk-server-conn-{session.id}"
        connection.recv_events_thread.name = f"maxsdk-server-conn-{session.id}-recv"
        try:
            self._read(connection, session)
        finally:
            try:
                self._endpoint.close_session(session, close_code(connection))
            finally:
                connection.recv_events_thread.join(self._endpoint.settings.close_timeout + 1.0)

    def _read(self, connection: PhoenixConnection, session: Session) -> None:
        idle = self._endpoint.settings.idle_timeout
        while True:
            try:
                if idle is None:
                    frame = connection.recv()
                else:
                    remaining = connection.last_activity + idle - time.monotonic()
                    if remaining <= 0:
                        logger.info("conn %d idle for %.3g s; closing", session.id, idle)
                        connection.close(self._endpoint.settings.idle_close_code)
                        return
                    frame = connection.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            try:
                session.handle_frame(frame)
            except MalformedFrameError as exc:
                # A malformed frame crashes a Phoenix socket: close 1011 (§1.7).
                logger.warning("conn %d: malformed frame (%s); closing with 1011", session.id, exc)
                connection.close(_INTERNAL_ERROR)
                return
            except Exception:
                logger.error("conn %d: socket crashed; closing with 1011", session.id, exc_info=True)
                connection.close(_INTERNAL_ERROR)
                return


def _flatten(headers: Headers) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat
