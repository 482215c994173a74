"""``PhoenixServer``: the embedded server's one entry class.

It wires an :class:`~.endpoint.Endpoint` (sessions, channels, presence,
faults, recorder) to a :class:`~.websocket.WebSocketListener`, owns the
lifecycle (``start``/``stop``, context manager, restart on the same port)
and exposes the scripted faults and the observability helpers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from .connect import ConnectHandler
from .endpoint import Endpoint
from .faults import Faults
from .http_front import Listener
from .message import Frame, OutPayload
from .presence import PresenceState
from .recorder import ConnectionEvent, ReceivedMessage, Recorder
from .reference_app import reference_connect, reference_router
from .router import ChannelFactory, Router
from .settings import ServerSettings
from .state import StateDocument

logger = logging.getLogger(__name__)

_LOOPBACK = "127.0.0.1"


class PhoenixServer:
    """A threaded Phoenix Channels server for tests, examples and demos.

    Example::

        with PhoenixServer(token="secret") as server:
            ws = websocket.create_connection(server.url + "?vsn=2.0.0&token=secret")
            ...
            server.wait_for_message(event="phx_join", timeout=2)
    """

    def __init__(
        self,
        router: Router | Iterable[tuple[str, ChannelFactory]] | None = None,
        *,
        host: str = _LOOPBACK,
        port: int = 0,
        path: str = "/socket",
        settings: ServerSettings | None = None,
        connect: ConnectHandler | None = None,
        token: str | None = None,
    ) -> None:
        """Configure a server (nothing is bound until :meth:`start`).

        Args:
            router: Channel routes; the reference app's when ``None``.
            host: Interface to bind (loopback by default).
            port: Port to bind; 0 picks a free one, which is kept across restarts.
            path: Socket mount path; the WebSocket lives at ``<path>/websocket``.
            settings: Protocol behaviour; :class:`ServerSettings` defaults when ``None``.
            connect: Connect handler; the reference app's when ``None``.
            token: Shortcut for the reference connect handler's required token.

        Raises:
            ValueError: when both ``connect`` and ``token`` are given.

        """
        if connect is not None and token is not None:
            raise ValueError("pass either connect= or token=, not both")
        if router is None:
            router = reference_router()
        elif not isinstance(router, Router):
            router = Router(router)
        self.settings = settings if settings is not None else ServerSettings()
        self.endpoint = Endpoint(
            router=router,
            connect=connect if connect is not None else reference_connect(token),
            settings=self.settings,
            faults=Faults(),
            recorder=Recorder(self.settings.record_limit),
        )
        self._host = host
        self._path = "/" + path.strip("/") if path.strip("/") else ""
        self._listener = Listener(self.endpoint, host=host, port=port, path=self._path)
        self._lifecycle = threading.Lock()
        self._running = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> PhoenixServer:
        """Bind and serve; returns ``self``. A stopped server may be started again."""
        with self._lifecycle:
            if self._running:
                return self
            self.endpoint.start()
            try:
                self._listener.start()
            except BaseException:
                self.endpoint.stop()
                raise
            self._running = True
        logger.info("serving Phoenix channels at %s", self.url)
        return self

    def stop(self, *, abrupt: bool = False, code: int = 1012, reason: str = "") -> None:
        """Stop serving and join every thread the server started.

        Args:
            abrupt: Drop connections without a close frame (a crash) instead of
                closing them with ``code``.
            code: Close code of a graceful stop (1012, as a Phoenix drain sends).
            reason: Close reason of a graceful stop.

        """
        with self._lifecycle:
            if not self._running:
                return
            self._running = False
            self.endpoint.stopping.set()
            try:
                self._listener.stop(abrupt=abrupt, code=code, reason=reason)
            finally:
                self.endpoint.stop()
        logger.info("server on port %d stopped", self.port)

    def restart(self, *, abrupt: bool = False, code: int = 1012) -> None:
        """Stop, then start again on the same port."""
        self.stop(abrupt=abrupt, code=code)
        self.start()

    def __enter__(self) -> PhoenixServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._running

    @property
    def host(self) -> str:
        """The bound interface."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (after the first :meth:`start` when created with ``port=0``)."""
        return self._listener.port

    @property
    def path(self) -> str:
        """The socket mount path, e.g. ``"/socket"``."""
        return self._path

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/socket/websocket`` (add ``?vsn=2.0.0&...`` yourself).

        Raises:
            RuntimeError: before the first start of a ``port=0`` server.

        """
        if self.port == 0:
            raise RuntimeError("the server has no port yet; start() it first")
        return f"ws://{self._host}:{self.port}{self._path}/websocket"

    @property
    def longpoll_url(self) -> str:
        """``http://HOST:PORT/socket/longpoll``, the long-poll endpoint on the same port (§1.8).

        Raises:
            RuntimeError: before the first start of a ``port=0`` server.

        """
        if self.port == 0:
            raise RuntimeError("the server has no port yet; start() it first")
        return f"http://{self._host}:{self.port}{self._path}/longpoll"

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PhoenixServer {self._host}:{self.port}{self._path} {state}>"

    # -- faults: connections --------------------------------------------------------------

    def drop_connections(self) -> int:
        """Drop every connection without a close frame (client sees 1006); returns how many."""
        return self.endpoint.drop_connections()

    def close_connections(self, code: int = 1000, reason: str = "") -> int:
        """Close every connection with ``code``/``reason``; blocks until done."""
        return self.endpoint.close_connections(code, reason)

    def disconnect(self, socket_id: str) -> int:
        """Broadcast ``disconnect`` to a socket id (closes with the disconnect code)."""
        return self.endpoint.disconnect(socket_id)

    def refuse_connections(self, status: int = 503, *, transport: str | None = None) -> None:
        """Answer every new connection with HTTP ``status`` until :meth:`accept_connections`.

        ``transport="websocket"`` refuses only WebSocket upgrades (like a proxy
        that blocks them), ``"longpoll"`` only new long-poll sessions.
        """
        self.endpoint.faults.refuse_connections(status, transport=transport)

    def accept_connections(self) -> None:
        """Accept new connections again."""
        self.endpoint.faults.accept_connections()

    def expire_sessions(self, connection_id: int | None = None) -> int:
        """Expire long-poll sessions now, as if their client stopped polling; returns how many.

        The next poll with the old token gets a logical 410 (session gone).
        """
        return self._listener.hub.expire(connection_id)

    def send_raw(self, frame: Frame, connection_id: int | None = None) -> int:
        """Send a raw text (``str``) or binary (``bytes``) frame to every connection (or one)."""
        return self.endpoint.send_raw(frame, connection_id)

    # -- faults: heartbeats and replies ----------------------------------------------------

    def pause_heartbeats(self) -> None:
        """Stop answering heartbeats."""
        self.endpoint.faults.pause_heartbeats()

    def resume_heartbeats(self) -> None:
        """Answer heartbeats again."""
        self.endpoint.faults.resume_heartbeats()

    def delay_replies(self, seconds: float, *, heartbeats: bool = False) -> None:
        """Send every ``phx_reply`` ``seconds`` late (0 turns it off)."""
        self.endpoint.faults.delay_replies(seconds, heartbeats=heartbeats)

    def withhold_replies(self, *, heartbeats: bool = False) -> None:
        """Keep every ``phx_reply`` back until :meth:`release_replies`."""
        self.endpoint.faults.withhold_replies(heartbeats=heartbeats)

    def release_replies(self, *, send: bool = True) -> int:
        """Stop withholding; send the kept replies (or discard them). Returns how many."""
        withheld = self.endpoint.faults.take_withheld()
        if send:
            for release in withheld:
                release()
        return len(withheld)

    # -- faults: channels ---------------------------------------------------------------------

    def refuse_joins(self, pattern: str = "*", reason: str = "join refused") -> None:
        """Refuse joins of topics matching ``pattern`` with ``error {"reason": reason}``."""
        self.endpoint.faults.refuse_joins(pattern, reason)

    def allow_joins(self, pattern: str | None = None) -> None:
        """Lift the join refusal for ``pattern`` (all refusals when ``None``)."""
        self.endpoint.faults.allow_joins(pattern)

    def crash_channel(self, topic: str, connection_id: int | None = None) -> int:
        """Crash the channels of ``topic`` now (clients get ``phx_error``); returns how many."""
        return self.endpoint.crash_channel(topic, connection_id)

    def reset_faults(self) -> None:
        """Turn every fault off (withheld replies are discarded)."""
        self.endpoint.faults.reset()

    # -- server-side messaging ----------------------------------------------------------------

    def broadcast(self, topic: str, event: str, payload: OutPayload) -> int:
        """Broadcast to every subscriber of ``topic``; returns how many got it."""
        return self.endpoint.broadcast(topic, event, payload)

    def presence(self, topic: str) -> PresenceState:
        """The presence state of ``topic``."""
        return self.endpoint.presence_state(topic)

    def state(self, topic: str) -> StateDocument:
        """The replicated document of state topic ``topic`` (read, change, reset; see ``docs/state.md``)."""
        return self.endpoint.states.get(topic)

    # -- observability --------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder:
        """The record of received messages and connection events."""
        return self.endpoint.recorder

    def messages(self, since: int = 0) -> list[ReceivedMessage]:
        """Client messages received so far (``index >= since``)."""
        return self.recorder.messages(since)

    def events(self, since: int = 0) -> list[ConnectionEvent]:
        """Connection events so far (``index >= since``)."""
        return self.recorder.events(since)

    @property
    def message_count(self) -> int:
        """How many client messages were received (use as a ``since=`` cursor)."""
        return self.recorder.message_count

    @property
    def event_count(self) -> int:
        """How many connection events happened (use as a ``since=`` cursor)."""
        return self.recorder.event_count

    @property
    def connections(self) -> list[ConnectionEvent]:
        """The ``opened`` events of the connections open right now."""
        return self.recorder.open_connections()

    def wait_for_message(
        self,
        predicate: Callable[[ReceivedMessage], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        topic: str | None = None,
        event: str | None = None,
    ) -> ReceivedMessage:
        """Block until a matching client message arrived (or already had); raises ``TimeoutError``."""
        return self.recorder.wait_for_message(predicate, timeout, since=since, topic=topic, event=event)

    def wait_for_event(
        self,
        predicate: Callable[[ConnectionEvent], bool],
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> ConnectionEvent:
        """Block until a matching connection event happened; raises ``TimeoutError``."""
        return self.recorder.wait_for_event(predicate, timeout, since=since)

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until exactly ``count`` connections are open; raises ``TimeoutError``."""
        self.recorder.wait_for_connections(count, timeout)

    def clear_records(self) -> None:
        """Forget recorded messages and events (cursors keep counting)."""
        self.recorder.clear()
