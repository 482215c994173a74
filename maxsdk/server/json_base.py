"""The shared base of the embedded JSON test servers (JSON-RPC 2.0 and JSON topic feeds).

Each server runs the ``websockets`` threaded server on 127.0.0.1 (a free port
by default, kept across restarts) with one handler thread per connection and
one scheduler thread for delayed replies. Subclasses implement
:meth:`JsonServerBase.handle_text`; everything else — lifecycle, scripted
faults, the record of what clients sent — lives here.

Faults (thread-safe; they stay on until turned off, across restarts):

* connections: ``drop_connections()`` (no close frame: clients see 1006),
  ``close_connections(code=1000, reason="")``, ``refuse_connections(status=503)``
  / ``accept_connections()``, ``send_raw(frame, connection_id=None)`` (any
  text or bytes: malformed frames included);
* replies: ``delay_replies(seconds)``, ``withhold_replies()`` /
  ``release_replies(send=True)``;
* liveness: ``stop_answering_pings()`` / ``answer_pings()`` (protocol pings
  and WebSocket pings alike);
* subscriptions: ``refuse_subscriptions(pattern="*")`` / ``allow_subscriptions(pattern=None)``;
* ``reset_faults()``.

Observability: ``messages(since=0)`` (:class:`JsonRecord`: ``index``,
``connection_id``, ``message`` (decoded, or ``None``), ``text``, ``at``),
``message_count``, ``wait_for_message(predicate=None, timeout=5.0, *, since=0)``,
``connection_ids``, ``wait_for_connections(count, timeout=5.0)``,
``connections_opened`` (a count that keeps growing across reconnects).
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.sync.server import Server, ServerConnection, serve

from maxsdk._runtime.threads import start_thread

__all__ = ["JsonConnection", "JsonRecord", "JsonServerBase"]

logger = logging.getLogger("maxsdk.server.json")
_library_logger = logging.getLogger("maxsdk.server.json.websockets")

_LOOPBACK = "127.0.0.1"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JsonRecord:
    """One message a client sent.

    Attributes:
        index: position in the record (absolute, 0-based).
        connection_id: the connection it came on.
        message: the decoded JSON value, or ``None`` if it did not decode.
        text: the frame as received (``bytes`` for binary frames).
        at: ``time.monotonic()`` when it arrived.

    """

    index: int
    connection_id: int
    message: Any
    text: str | bytes
    at: float


class _Protocol(ServerProtocol):
    """Withholds WebSocket pongs while the server's pings fault is on."""

    server: JsonServerBase | None = None

    def send_frame(self, frame: WsFrame) -> None:
        server = self.server
        if frame.opcode is Opcode.PONG and server is not None and server.pings_paused:
            return
        super().send_frame(frame)


class JsonConnection(ServerConnection):
    """One client connection (a ``websockets`` connection with an id and per-connection state)."""

    json_server: JsonServerBase

    def __init__(self, sock: socket.socket, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        """Same arguments as :class:`websockets.sync.server.ServerConnection`."""
        protocol.__class__ = _Protocol
        protocol.server = self.json_server  # type: ignore[attr-defined]
        self.connection_id = 0
        #: Subclasses keep per-connection state here (subscriptions, auth...).
        self.data: dict[str, Any] = {}
        super().__init__(sock, protocol, *args, **kwargs)

    def send_json(self, value: Any) -> bool:
        """Send ``value`` as a JSON text frame now; ``False`` if the connection is gone."""
        return self.send_text(_dumps(value))

    def send_text(self, frame: str | bytes) -> bool:
        """Send a raw text (``str``) or binary (``bytes``) frame now; ``False`` if the connection is gone."""
        try:
            self.send(frame)
        except (ConnectionClosed, OSError, RuntimeError):
            return False
        return True


class JsonServerBase:
    """Lifecycle, faults and records shared by the JSON test servers.

    Args:
        host: interface to bind (loopback by default).
        port: port to bind; 0 picks a free one, kept across restarts.
        path: the WebSocket path (other paths get 404).

    """

    kind = "json"

    def __init__(self, *, host: str = _LOOPBACK, port: int = 0, path: str = "/") -> None:
        self._host = host
        self._port = port
        self._path = "/" + path.strip("/")
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._connections: dict[int, JsonConnection] = {}
        self._ids = itertools.count(1)
        self._records: deque[JsonRecord] = deque(maxlen=100_000)
        self._record_total = 0
        self.connections_opened = 0
        # faults
        self._refuse_status: int | None = None
        self._reply_delay = 0.0
        self._withholding = False
        self._withheld: list[tuple[JsonConnection, str]] = []
        self._pings_paused = False
        self._refused_subscriptions: list[str] = []
        # scheduler (delayed replies)
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._timer_seq = itertools.count()
        self._timer_cond = threading.Condition()
        self._timer_thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self: T) -> T:
        """Bind and serve; returns ``self``. A stopped server can be started again (same port)."""
        server: JsonServerBase = self  # type: ignore[assignment]
        server._start()
        return self

    def _start(self) -> None:
        with self._lifecycle:
            if self._server is not None:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._port))
                sock.listen(1024)
            except OSError:
                sock.close()
                raise
            self._port = sock.getsockname()[1]
            connection_class = type("Connection", (JsonConnection,), {"json_server": self})
            self._stopping = False
            self._server = serve(
                self._handle,
                sock=sock,
                process_request=self._process_request,
                process_response=self._process_response,
                compression=None,
                server_header=None,
                ping_interval=None,
                ping_timeout=None,
                close_timeout=2.0,
                max_size=16 * 1024 * 1024,
                create_connection=connection_class,
                logger=_library_logger,
                open_timeout=5.0,
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"maxsdk-{self.kind}-server-{self._port}"
            )
            start_thread(self._thread)
            self._timer_thread = threading.Thread(
                target=self._run_timers, name=f"maxsdk-{self.kind}-server-{self._port}-timer"
            )
            start_thread(self._timer_thread)
        logger.info("%s server listening at %s", self.kind, self.url)

    def stop(self, *, abrupt: bool = False, code: int = 1001, reason: str = "") -> None:
        """Stop serving and join every thread the server started.

        Args:
            abrupt: drop connections without a close frame (a crash).
            code: close code of a graceful stop (1001: going away).
            reason: close reason of a graceful stop.

        """
        with self._lifecycle:
            server, self._server = self._server, None
            if server is None:
                return
            self._stopping = True
            if abrupt:
                for connection in self._open_connections():
                    connection.close_socket()
            else:
                for connection in self._open_connections():
                    connection.close(code, reason)
            server.shutdown()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            with self._timer_cond:
                self._timers.clear()
                self._timer_cond.notify_all()
            if self._timer_thread is not None:
                self._timer_thread.join()
                self._timer_thread = None
        logger.info("%s server on port %d stopped", self.kind, self._port)

    def restart(self, *, abrupt: bool = False) -> None:
        """Stop, then start again on the same port."""
        self.stop(abrupt=abrupt)
        self.start()

    def __enter__(self: T) -> T:
        server: JsonServerBase = self  # type: ignore[assignment]
        server._start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (after the first start of a ``port=0`` server)."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/PATH``."""
        if self._port == 0:
            raise RuntimeError("the server has no port yet; start() it first")
        return f"ws://{self._host}:{self._port}{self._path if self._path != '/' else '/'}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._host}:{self._port} {'running' if self.running else 'stopped'}>"

    # -- connections ----------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path != self._path and not (self._path == "/" and path == ""):
            return connection.respond(404, "")
        status = self._refuse_status
        if status is not None:
            return connection.respond(status, "")
        return self.authorize_upgrade(connection, request)

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        # Register an accepted connection before its 101 goes out, so that a
        # client that sees itself connected can be sent to at once.
        if response.status_code == 101:
            assert isinstance(connection, JsonConnection)
            with self._cond:
                connection.connection_id = next(self._ids)
                self._connections[connection.connection_id] = connection
                self.connections_opened += 1
                self._cond.notify_all()

    def authorize_upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        """Decide on an upgrade request (subclasses may refuse); ``None`` accepts it."""
        return None

    def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, JsonConnection)
        threading.current_thread().name = f"maxsdk-{self.kind}-server-conn-{connection.connection_id}"
        try:
            self.on_open(connection)
            for frame in connection:
                message = self._record(connection, frame)
                try:
                    self.handle_text(connection, frame, message)
                except Exception:
                    logger.exception("conn %d: handler failed", connection.connection_id)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._connections.pop(connection.connection_id, None)
                self._cond.notify_all()
            self.on_close(connection)

    def on_open(self, connection: JsonConnection) -> None:
        """A connection opened (subclass hook)."""

    def on_close(self, connection: JsonConnection) -> None:
        """A connection closed (subclass hook)."""

    def handle_text(self, connection: JsonConnection, frame: str | bytes, message: Any) -> None:
        """Answer one client frame; ``message`` is its decoded JSON or ``None``."""
        raise NotImplementedError

    def _record(self, connection: JsonConnection, frame: str | bytes) -> Any:
        message: Any = None
        if isinstance(frame, str):
            try:
                message = json.loads(frame)
            except ValueError:
                message = None
        with self._cond:
            self._records.append(
                JsonRecord(self._record_total, connection.connection_id, message, frame, time.monotonic())
            )
            self._record_total += 1
            self._cond.notify_all()
        return message

    def _open_connections(self) -> list[JsonConnection]:
        with self._lock:
            return list(self._connections.values())

    @property
    def connection_ids(self) -> list[int]:
        """The ids of the connections open now."""
        with self._lock:
            return list(self._connections)

    def connection(self, connection_id: int) -> JsonConnection | None:
        """An open connection by id."""
        with self._lock:
            return self._connections.get(connection_id)

    # -- sending -------------------------------------------------------------------------------------

    def reply(self, connection: JsonConnection, value: Any) -> None:
        """Send a reply through the reply faults (delay, withhold)."""
        text = value if isinstance(value, str) else _dumps(value)
        with self._lock:
            if self._withholding:
                self._withheld.append((connection, text))
                return
            delay = self._reply_delay
        if delay:
            self.call_later(delay, lambda: connection.send_text(text))
        else:
            connection.send_text(text)

    def broadcast_json(self, value: Any, connection_ids: list[int] | None = None) -> int:
        """Send ``value`` to every connection (or those listed) now; returns how many got it."""
        text = _dumps(value)
        count = 0
        for connection in self._open_connections():
            if connection_ids is None or connection.connection_id in connection_ids:
                count += connection.send_text(text)
        return count

    def call_later(self, delay: float, action: Callable[[], object]) -> None:
        """Run ``action`` on the server's scheduler thread after ``delay`` seconds."""
        with self._timer_cond:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), action))
            self._timer_cond.notify_all()

    def _run_timers(self) -> None:
        while True:
            with self._timer_cond:
                while True:
                    if self._stopping:
                        return
                    if self._timers and self._timers[0][0] <= time.monotonic():
                        _, _, action = heapq.heappop(self._timers)
                        break
                    timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._timer_cond.wait(timeout)
            try:
                action()
            except Exception:
                logger.exception("scheduled action failed")

    # -- faults ----------------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Drop every connection without a close frame; returns how many."""
        connections = self._open_connections()
        for connection in connections:
            connection.close_socket()
        return len(connections)

    def close_connections(self, code: int = 1000, reason: str = "") -> int:
        """Close every connection with ``code``; returns how many."""
        connections = self._open_connections()
        for connection in connections:
            connection.close(code, reason)
        return len(connections)

    def refuse_connections(self, status: int = 503) -> None:
        """Answer new upgrades with HTTP ``status`` until :meth:`accept_connections`."""
        with self._lock:
            self._refuse_status = status

    def accept_connections(self) -> None:
        """Accept new connections again."""
        with self._lock:
            self._refuse_status = None

    def send_raw(self, frame: str | bytes, connection_id: int | None = None) -> int:
        """Send a raw frame (malformed ones welcome) to every connection, or one; returns how many."""
        count = 0
        for connection in self._open_connections():
            if connection_id is None or connection.connection_id == connection_id:
                count += connection.send_text(frame)
        return count

    def delay_replies(self, seconds: float) -> None:
        """Send every reply ``seconds`` late (0 turns it off)."""
        with self._lock:
            self._reply_delay = max(0.0, float(seconds))

    def withhold_replies(self) -> None:
        """Keep every reply back until :meth:`release_replies`."""
        with self._lock:
            self._withholding = True

    def release_replies(self, *, send: bool = True) -> int:
        """Stop withholding; send the kept replies (or discard them); returns how many."""
        with self._lock:
            self._withholding = False
            withheld, self._withheld = self._withheld, []
        if send:
            for connection, text in withheld:
                connection.send_text(text)
        return len(withheld)

    def stop_answering_pings(self) -> None:
        """Ignore pings (protocol pings and WebSocket pings) until :meth:`answer_pings`."""
        with self._lock:
            self._pings_paused = True

    def answer_pings(self) -> None:
        """Answer pings again."""
        with self._lock:
            self._pings_paused = False

    @property
    def pings_paused(self) -> bool:
        """Whether pings go unanswered."""
        return self._pings_paused

    def refuse_subscriptions(self, pattern: str = "*") -> None:
        """Refuse subscriptions to topics matching ``pattern`` (shell-style wildcards)."""
        with self._lock:
            self._refused_subscriptions.append(pattern)

    def allow_subscriptions(self, pattern: str | None = None) -> None:
        """Lift the refusal for ``pattern`` (every refusal when ``None``)."""
        with self._lock:
            self._refused_subscriptions = [
                p for p in self._refused_subscriptions if pattern is not None and p != pattern
            ]

    def subscription_refused(self, topic: str) -> bool:
        """Whether a subscription to ``topic`` is refused now."""
        with self._lock:
            return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self._refused_subscriptions)

    def reset_faults(self) -> None:
        """Turn every fault off (withheld replies are discarded)."""
        with self._lock:
            self._refuse_status = None
            self._reply_delay = 0.0
            self._withholding = False
            self._withheld = []
            self._pings_paused = False
            self._refused_subscriptions = []

    # -- observability ---------------------------------------------------------------------------------

    def messages(self, since: int = 0) -> list[JsonRecord]:
        """Client messages with ``index >= since`` still in the record."""
        with self._lock:
            return [record for record in self._records if record.index >= since]

    @property
    def message_count(self) -> int:
        """How many client messages were recorded (a ``since=`` cursor)."""
        with self._lock:
            return self._record_total

    def wait_for_message(
        self, predicate: Callable[[JsonRecord], bool] | None = None, timeout: float = 5.0, *, since: int = 0
    ) -> JsonRecord:
        """Block until a client message matches (or already had); raises ``TimeoutError``."""

        def find() -> JsonRecord | None:
            for record in self._records:
                if record.index >= since and (predicate is None or predicate(record)):
                    return record
            return None

        return self._wait(find, timeout, f"a client message (since={since})")

    def wait_for_messages(
        self, predicate: Callable[[JsonRecord], bool], count: int, timeout: float = 5.0, *, since: int = 0
    ) -> list[JsonRecord]:
        """Block until ``count`` client messages match; returns them."""

        def find() -> list[JsonRecord] | None:
            found = [r for r in self._records if r.index >= since and predicate(r)]
            return found if len(found) >= count else None

        return self._wait(find, timeout, f"{count} client messages (since={since})")

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until exactly ``count`` connections are open; raises ``TimeoutError``."""
        self._wait(lambda: True if len(self._connections) == count else None, timeout, f"{count} connections")

    def wait_for_opened(self, count: int, timeout: float = 5.0) -> None:
        """Block until ``count`` connections were ever opened (reconnects count)."""
        self._wait(lambda: True if self.connections_opened >= count else None, timeout, f"{count} opened")

    def _wait(self, find: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = find()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self._cond.wait(remaining)
