"""The transport-independent core of the server (the role of a Phoenix endpoint).

The endpoint owns the router, pubsub, presence, faults and the recorder,
plus the worker pool and timer while the server runs. Transports ask it to
authorise a connection (:meth:`Endpoint.authorize`), then open and close
sessions; everything else (channels, broadcasts, presence, faults) happens
here and in the sessions, identically for every transport.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .channel_server import ChannelServer
from .connect import Accept, Accepted, ConnectHandler, ConnectRequest, Refuse, normalize
from .faults import Faults
from .message import Frame, OutPayload
from .negotiation import select_serializer
from .presence import Presence, PresenceState
from .pubsub import PubSub
from .recorder import Recorder
from .router import Router
from .scheduler import Scheduler
from .session import Session
from .settings import ServerSettings
from .state import StateStore
from .timer import Timer
from .transport import Transport

logger = logging.getLogger(__name__)


class Endpoint:
    """Sessions, channels, presence and faults shared by every transport."""

    def __init__(
        self,
        *,
        router: Router,
        connect: ConnectHandler,
        settings: ServerSettings,
        faults: Faults | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        """Create an idle endpoint; :meth:`start` makes it ready for sessions."""
        self.router = router
        self.connect_handler = connect
        self.settings = settings
        self.faults = faults if faults is not None else Faults()
        self.recorder = recorder if recorder is not None else Recorder(settings.record_limit)
        self.pubsub: PubSub[ChannelServer] = PubSub()
        self.presence = Presence(self.broadcast)
        self.states = StateStore(self.broadcast)
        """The documents of replicated state topics (:mod:`maxsdk.server.state`)."""
        self.stopping = threading.Event()
        """Set while the server stops; long-running callbacks may wait on it."""
        self.scheduler = Scheduler(max_workers=settings.max_workers)
        self.timer = Timer(self.scheduler.submit)
        self._ids = itertools.count(1)
        self._sessions: dict[int, Session] = {}
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Create a fresh worker pool and timer (after a previous :meth:`stop`)."""
        self.stopping.clear()
        self.scheduler = Scheduler(max_workers=self.settings.max_workers)
        self.timer = Timer(self.scheduler.submit)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the timer and drain and join the workers (transports must be closed first)."""
        self.stopping.set()
        self.timer.stop()
        self.scheduler.stop(timeout)

    # -- connections -----------------------------------------------------------------

    def authorize(self, request: ConnectRequest) -> Accepted | Refuse:
        """Decide a connection attempt: fault switch, ``vsn`` (§1.2), then the connect handler.

        ``request.vsn`` is ignored: the ``vsn`` param decides the serializer.
        """
        status = self.faults.refusal_for(request.transport)
        if status is not None:
            return self._refused(request, status, "refusing connections (fault)")
        vsn = request.params.get("vsn")
        serializer = select_serializer(vsn) if vsn is None or isinstance(vsn, str) else None
        if serializer is None:
            return self._refused(request, 403, f"unsupported or invalid vsn {vsn!r}")
        request = ConnectRequest(
            params=request.params,
            vsn=serializer.vsn,
            auth_token=request.auth_token,
            headers=request.headers,
            path=request.path,
            remote_address=request.remote_address,
            transport=request.transport,
        )
        try:
            decision = normalize(self.connect_handler(request))
        except Exception:  # Phoenix answers 500 when connect/3 raises
            logger.error("connect handler failed", exc_info=True)
            return self._refused(request, 500, "connect handler failed")
        if isinstance(decision, Refuse):
            return self._refused(request, decision.status, "connect handler refused")
        assert isinstance(decision, Accept)
        return Accepted(request, serializer, decision.assigns, decision.socket_id)

    def refused(self, request: ConnectRequest | None, status: int, why: str) -> Refuse:
        """Record a refusal decided by a transport (404, 400...)."""
        return self._refused(request, status, why)

    def _refused(self, request: ConnectRequest | None, status: int, why: str) -> Refuse:
        logger.info("refusing connection with HTTP %d: %s", status, why)
        params = request.params if request is not None else {}
        transport = request.transport if request is not None else "websocket"
        self.recorder.record_event("refused", None, params=params, status=status, transport=transport)
        return Refuse(status)

    def open_session(self, accepted: Accepted, transport: Transport) -> Session:
        """Register the session of a connection that just opened."""
        session = Session(self, accepted, transport, next(self._ids))
        with self._lock:
            self._sessions[session.id] = session
        logger.debug("conn %d opened (vsn %s)", session.id, session.serializer.vsn)
        self.recorder.record_event(
            "opened",
            session.id,
            params=session.params,
            vsn=session.serializer.vsn,
            socket_id=session.socket_id,
            transport=transport.name,
        )
        return session

    def close_session(self, session: Session, code: int | None) -> None:
        """Shut a session's channels down and forget it (its connection ended)."""
        try:
            session.terminate()
        finally:
            with self._lock:
                self._sessions.pop(session.id, None)
            logger.debug("conn %d closed (code %s)", session.id, code)
            self.recorder.record_event(
                "closed",
                session.id,
                params=session.params,
                vsn=session.serializer.vsn,
                socket_id=session.socket_id,
                code=code,
                transport=session.transport.name,
            )

    def sessions(self) -> list[Session]:
        """The sessions open right now."""
        with self._lock:
            return list(self._sessions.values())

    # -- messaging -------------------------------------------------------------------

    def broadcast(
        self,
        topic: str,
        event: str,
        payload: OutPayload,
        *,
        exclude: ChannelServer | None = None,
    ) -> int:
        """Broadcast to every subscriber of ``topic`` (fastlane: join_ref and ref null).

        Each serializer encodes the message once, before anything is written,
        so an encoding error (bytes to a V1 subscriber) reaches the caller.
        A ``"disconnect"`` event also closes the sockets whose id is ``topic`` (§1.7).

        Returns:
            How many subscribers it was written to.

        """
        if event == "disconnect":
            self.disconnect(topic)
        subscribers = self.pubsub.subscribers(topic)
        frames: dict[int, Frame] = {}
        for channel in subscribers:
            serializer = channel.session.serializer
            if id(serializer) not in frames:
                frames[id(serializer)] = serializer.encode_broadcast(topic, event, payload)
        delivered = 0
        for channel in subscribers:
            if channel is not exclude and channel.deliver_broadcast(frames[id(channel.session.serializer)]):
                delivered += 1
        return delivered

    def disconnect(self, socket_id: str) -> int:
        """Close every connection whose socket id is ``socket_id`` with the disconnect code.

        The closes happen on workers (a close waits for the client's close frame).

        Returns:
            How many connections are being closed.

        """
        code = self.settings.disconnect_close_code
        matching = [s for s in self.sessions() if s.socket_id == socket_id]
        for session in matching:
            self.scheduler.submit(partial(session.transport.close, code))
        return len(matching)

    def presence_state(self, topic: str) -> PresenceState:
        """The presence state of ``topic``."""
        return self.presence.state(topic)

    # -- fault actions ---------------------------------------------------------------

    def drop_connections(self) -> int:
        """Drop every connection without a close frame; returns how many."""
        sessions = self.sessions()
        for session in sessions:
            session.transport.abort()
        return len(sessions)

    def close_connections(self, code: int, reason: str = "", timeout: float = 10.0) -> int:
        """Close every connection with ``code`` and wait until each close completes."""
        return self._each_session(lambda s: s.transport.close(code, reason), timeout)

    def send_raw(self, frame: Frame, connection_id: int | None = None) -> int:
        """Write a raw frame (possibly malformed) to every connection, or to one."""
        count = 0
        for session in self.sessions():
            if connection_id is None or session.id == connection_id:
                count += session.outbox.send(frame)
        return count

    def crash_channel(self, topic: str, connection_id: int | None = None) -> int:
        """Crash the channels of ``topic`` (``phx_error``); returns how many."""
        return sum(
            session.kill_channels(topic)
            for session in self.sessions()
            if connection_id is None or session.id == connection_id
        )

    def _each_session(self, action: Callable[[Session], None], timeout: float) -> int:
        sessions = self.sessions()
        remaining = len(sessions)
        finished = threading.Event()
        lock = threading.Lock()
        if not sessions:
            return 0

        def run(session: Session) -> None:
            nonlocal remaining
            try:
                action(session)
            finally:
                with lock:
                    remaining -= 1
                    if remaining == 0:
                        finished.set()

        for session in sessions:
            self.scheduler.submit(partial(run, session))
        if not finished.wait(timeout):
            logger.warning("connections still closing after %.1f s", timeout)
        return len(sessions)

    def snapshot(self) -> Mapping[str, Any]:
        """A summary for debugging: sessions, channels and presence topics."""
        return {
            "sessions": [repr(s) for s in self.sessions()],
            "channels": {s.id: [c.topic for c in s.channels()] for s in self.sessions()},
            "presence_topics": self.presence.topics(),
        }
