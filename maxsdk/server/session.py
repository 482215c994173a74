"""One client connection's Phoenix socket: the part of ``Phoenix.Socket`` that routes.

The session decodes frames, answers heartbeats, joins and replaces channels,
applies the stale join_ref rule and answers ``unmatched topic``
(reference §3.2-§3.5, §4.2). It knows nothing about WebSockets: a transport
feeds it frames and it writes through an :class:`~.outbox.Outbox`.

Threads: :meth:`handle_frame` runs on the transport's reader thread, which
also runs ``join`` callbacks (Phoenix runs joins inside the socket process).
Every other channel callback runs in that channel's mailbox on a worker, so
heartbeats and other channels never wait for a slow ``handle_in``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .channel_server import ChannelServer
from .connect import Accepted
from .message import Frame, Message, Ref
from .outbox import Outbox, preview
from .result import Reply, error, ok
from .settings import JoinRefCheck
from .transport import Transport

if TYPE_CHECKING:
    from .endpoint import Endpoint

logger = logging.getLogger(__name__)

UNMATCHED_TOPIC: Mapping[str, Any] = {"reason": "unmatched topic"}
TOO_MANY_CHANNELS: Mapping[str, Any] = {"reason": "too many channels joined"}
JOIN_CRASHED: Mapping[str, Any] = {"reason": "join crashed"}


def forwards(mode: JoinRefCheck, stored: Ref, incoming: Ref, event: str) -> bool:
    """Whether a non-join message reaches the joined channel (§3.4).

    Args:
        mode: The server's join_ref rule.
        stored: The join_ref the channel was joined with.
        incoming: The message's join_ref.
        event: The message's event.

    """
    if mode == "1.8.12":
        return incoming is None or incoming == stored
    if mode == "1.8.3":
        return incoming == stored or stored is None
    # Phoenix <= 1.8.2 forwards everything but a phx_leave for another join.
    return event != "phx_leave" or stored is None or incoming == stored


class Session:
    """The Phoenix socket state of one connection."""

    def __init__(self, endpoint: Endpoint, accepted: Accepted, transport: Transport, connection_id: int) -> None:
        """Create the session of a freshly accepted connection."""
        self.id = connection_id
        self.endpoint = endpoint
        self.transport = transport
        self.serializer = accepted.serializer
        self.params = accepted.request.params
        self.assigns: dict[str, Any] = dict(accepted.assigns)
        self.socket_id = accepted.socket_id
        self.outbox = Outbox(transport, faults=endpoint.faults, timer=endpoint.timer, connection_id=connection_id)
        self._channels: dict[str, ChannelServer] = {}
        self._lock = threading.Lock()
        self._terminated = False

    def __repr__(self) -> str:
        return f"<Session {self.id} vsn={self.serializer.vsn} socket_id={self.socket_id!r}>"

    # -- inbound ---------------------------------------------------------------

    def handle_frame(self, frame: Frame) -> None:
        """Decode and dispatch one client frame.

        Raises:
            MalformedFrameError: for a malformed frame; the transport then closes
                the connection with 1011, as a crashed Phoenix socket does.

        """
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("conn %d >> %s", self.id, preview(frame))
        message = self.serializer.decode(frame)
        self.endpoint.recorder.record_message(self.id, message)
        self.dispatch(message)

    def dispatch(self, message: Message) -> None:
        """Route one decoded message (§3.2-§3.5, §4.2)."""
        if message.topic == "phoenix" and message.event == "heartbeat":
            self._heartbeat(message)
            return
        with self._lock:
            channel = self._channels.get(message.topic)
        if message.event == "phx_join":
            self._join(message, channel)
        elif channel is None:
            if message.event == "phx_leave":
                # Leaving what is not joined is a plain ok, without phx_close (§3.3).
                self._reply(message.join_ref, message.ref, message.topic, ok())
            else:
                self._unmatched(message)
        elif forwards(self.endpoint.settings.join_ref_check, channel.join_ref, message.join_ref, message.event):
            channel.deliver(message)
        else:
            logger.debug(
                "conn %d: dropping %s on %r with stale join_ref %r (joined as %r)",
                self.id,
                message.event,
                message.topic,
                message.join_ref,
                channel.join_ref,
            )

    def _heartbeat(self, message: Message) -> None:
        if self.endpoint.faults.heartbeats_paused:
            logger.debug("conn %d: heartbeat %r left unanswered (fault)", self.id, message.ref)
            return
        frame = self.serializer.encode_reply(None, message.ref, "phoenix", "ok", {})
        self.outbox.send_reply(frame, heartbeat=True)

    def _unmatched(self, message: Message) -> None:
        logger.warning("conn %d: ignoring unmatched topic %r", self.id, message.topic)
        self._reply(None, message.ref, message.topic, error(UNMATCHED_TOPIC))

    def _reply(self, join_ref: Ref, ref: Ref, topic: str, reply: Reply) -> None:
        frame = self.serializer.encode_reply(join_ref, ref, topic, reply.status, reply.response)
        self.outbox.send_reply(frame)

    # -- joins -------------------------------------------------------------------

    def _join(self, message: Message, existing: ChannelServer | None) -> None:
        close_frame: Frame | None = None
        if existing is not None:
            # §3.5: the last join wins; the old incarnation's phx_close goes
            # out after the new join's reply, unless it already said goodbye
            # (it was leaving, or crashed meanwhile).
            self._replace(existing)
            if not existing.exit_notified:
                close_frame = self._exit_frame(existing, graceful=True)
        try:
            self._join_new(message)
        finally:
            if close_frame is not None:
                self.outbox.send(close_frame)

    def _replace(self, old: ChannelServer) -> None:
        if old.status != "leaving":
            logger.debug("conn %d: duplicate join of %r, closing the old channel", self.id, old.topic)
        self._shut_down([old], "shutdown:duplicate_join")
        with self._lock:
            if self._channels.get(old.topic) is old:
                del self._channels[old.topic]

    def _join_new(self, message: Message) -> None:
        topic = message.topic
        endpoint = self.endpoint
        factory = endpoint.router.match(topic)
        if factory is None:
            self._unmatched(message)
            return
        limit = endpoint.settings.max_channels_per_transport
        with self._lock:
            full = limit is not None and len(self._channels) >= limit
        if full:
            self._reply(message.join_ref, message.ref, topic, error(TOO_MANY_CHANNELS))
            return
        refusal = endpoint.faults.join_refusal(topic)
        if refusal is not None:
            self._reply(message.join_ref, message.ref, topic, error({"reason": refusal}))
            return
        channel = ChannelServer(self, topic, message.join_ref, factory(), self.assigns)
        try:
            reply = channel.run_join(message.payload)
        except Exception:
            logger.error("conn %d: join of %r crashed", self.id, topic, exc_info=True)
            reply = error(JOIN_CRASHED)
        if reply.status != "ok":
            endpoint.presence.untrack_all(channel)
            self._reply(message.join_ref, message.ref, topic, reply)
            return
        # Subscribe and reply under the write lock: no broadcast can overtake the reply.
        with self.outbox.lock:
            with self._lock:
                self._channels[topic] = channel
            endpoint.pubsub.subscribe(topic, channel)
            self._reply(message.join_ref, message.ref, topic, reply)
        channel.activate()

    # -- channel exits -------------------------------------------------------------

    def channel_ended(self, channel: ChannelServer, *, notify: bool, graceful: bool) -> None:
        """Forget an ended channel; write its ``phx_close``/``phx_error`` if ``notify``."""
        with self._lock:
            if self._channels.get(channel.topic) is channel:
                del self._channels[channel.topic]
        if notify:
            self.outbox.send(self._exit_frame(channel, graceful=graceful))

    def _exit_frame(self, channel: ChannelServer, *, graceful: bool) -> Frame:
        # phx_close / phx_error carry the ended join's join_ref as both refs (§3.1).
        if graceful:
            event, payload = "phx_close", {}
        else:
            event, payload = "phx_error", dict(self.endpoint.settings.crash_payload)
        return self.serializer.encode_message(channel.join_ref, channel.join_ref, channel.topic, event, payload)

    def channels(self) -> list[ChannelServer]:
        """The channels currently joined (or leaving) on this connection."""
        with self._lock:
            return list(self._channels.values())

    def kill_channels(self, topic: str) -> int:
        """Crash the channel of ``topic`` at once (``phx_error``); returns 0 or 1."""
        with self._lock:
            channel = self._channels.get(topic)
        if channel is None:
            return 0
        channel.kill(notify=True)
        return 1

    # -- connection end ------------------------------------------------------------

    def terminate(self) -> None:
        """Shut every channel down after the connection ended (idempotent).

        Like Phoenix, waits for the channels to run ``terminate`` (up to the
        shutdown timeout each round) and kills the stragglers.
        """
        with self._lock:
            if self._terminated:
                return
            self._terminated = True
            channels = list(self._channels.values())
        self._shut_down(channels, "shutdown:closed")
        with self._lock:
            self._channels.clear()

    def _shut_down(self, channels: list[ChannelServer], reason: str) -> None:
        waiting = [channel for channel in channels if channel.shutdown(reason)]
        deadline = time.monotonic() + self.endpoint.settings.channel_shutdown_timeout
        for channel in waiting:
            if not channel.done.wait(max(0.0, deadline - time.monotonic())):
                logger.warning("channel %r did not shut down in time; killing it", channel.topic)
                channel.kill(notify=False)
