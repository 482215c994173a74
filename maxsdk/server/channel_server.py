"""The runtime of one channel incarnation (the role of ``Phoenix.Channel.Server``).

A :class:`ChannelServer` owns the handler instance, its socket and its
mailbox. It turns callback results into replies, stops and crashes, and on
the way out unsubscribes, untracks presence and tells its session, which
writes ``phx_close`` / ``phx_error`` (reference §3.1, §3.6).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from .channel import Channel
from .channel_socket import ChannelSocket
from .mailbox import Mailbox
from .message import Frame, Message, OutPayload, Ref
from .result import Reply, Stop, is_graceful, ok

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

Status = Literal["joining", "joined", "leaving"]

_NO_MESSAGE = object()  # handle_info results have no ref to reply to

_Item = Union[tuple[Literal["in"], Message], tuple[Literal["info"], Any], tuple[Literal["shutdown"], str]]


class ChannelServer:
    """One join of one topic on one connection."""

    def __init__(
        self,
        session: Session,
        topic: str,
        join_ref: Ref,
        handler: Channel,
        assigns: Mapping[str, Any],
    ) -> None:
        """Create the incarnation; its mailbox stays inactive until :meth:`activate`."""
        self.session = session
        self.topic = topic
        self.join_ref = join_ref
        self.handler = handler
        self.status: Status = "joining"
        self.socket = ChannelSocket(self, assigns)
        self.done = threading.Event()
        self._mailbox: Mailbox[_Item] = Mailbox(session.endpoint.scheduler, self._handle, active=False)
        self._lock = threading.Lock()
        self._ended = False
        self.exit_notified = False
        """Whether the client was sent this incarnation's ``phx_close``/``phx_error``."""
        self._push_encoders: dict[str, Callable[[OutPayload], Frame]] = {}

    def __repr__(self) -> str:
        return f"<ChannelServer {self.topic!r} join_ref={self.join_ref!r} {self.status}>"

    # -- state ---------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the incarnation is over (left, stopped, crashed, shut down or killed)."""
        return self._ended

    @property
    def join_completed(self) -> bool:
        """Whether the join reply was sent (pushes are allowed from then on)."""
        return self.status != "joining"

    @property
    def joined(self) -> bool:
        """Whether the channel is joined and alive."""
        return self.status != "joining" and not self._ended

    # -- lifecycle, driven by the session ------------------------------------------

    def run_join(self, payload: Any) -> Reply:
        """Call the handler's ``join`` (on the caller's thread); exceptions propagate."""
        result = self.handler.join(self.topic, payload, self.socket)
        if result is None:
            return ok()
        if isinstance(result, Reply) and result.status in ("ok", "error"):
            return result
        raise TypeError(f"join must return None, ok(...) or error(...), got {result!r}")

    def activate(self) -> None:
        """Mark the join complete and start handling queued messages."""
        self.status = "joined"
        self._mailbox.activate()

    def deliver(self, message: Message) -> None:
        """Queue a client message for ``handle_in`` (``phx_leave`` included)."""
        if message.event == "phx_leave":
            self.status = "leaving"
        self._mailbox.put(("in", message))

    def send_info(self, message: Any) -> None:
        """Queue a message for ``handle_info``."""
        self._mailbox.put(("info", message))

    def shutdown(self, reason: str) -> bool:
        """Ask the channel to terminate after what is queued; ``False`` if already over."""
        return self._mailbox.put(("shutdown", reason))

    def kill(self, *, notify: bool) -> None:
        """End now, without ``terminate`` (``Process.exit(pid, :kill)``); ``phx_error`` if ``notify``."""
        self._end(notify=notify, graceful=False)

    # -- output ----------------------------------------------------------------

    def send(self, frame: Frame) -> bool:
        """Write a frame unless the channel ended."""
        if self._ended:
            return False
        return self.session.outbox.send(frame)

    def send_many(self, frames: Sequence[Frame]) -> bool:
        """Write frames unless the channel ended."""
        if self._ended:
            return False
        return self.session.outbox.send_many(frames)

    def push_encoder(self, event: str) -> Callable[[OutPayload], Frame]:
        """The cached push encoder of ``event`` for this channel's envelope."""
        encoder = self._push_encoders.get(event)
        if encoder is None:
            serializer = self.session.serializer
            encoder = serializer.push_encoder(self.join_ref, self.topic, event)
            self._push_encoders[event] = encoder
        return encoder

    def push_frame(self, event: str, payload: OutPayload) -> Frame:
        """Encode one push of this channel."""
        return self.push_encoder(event)(payload)

    def send_reply(self, ref: Ref, reply: Reply) -> None:
        """Reply to ``ref`` with this channel's join_ref (§3.4)."""
        if self._ended:
            return
        frame = self.session.serializer.encode_reply(self.join_ref, ref, self.topic, reply.status, reply.response)
        self.session.outbox.send_reply(frame)

    def deliver_broadcast(self, frame: Frame) -> bool:
        """Write an already encoded fastlane broadcast."""
        return self.send(frame)

    # -- mailbox ---------------------------------------------------------------

    def _handle(self, item: _Item) -> None:
        if self._ended:
            return
        try:
            if item[0] == "in":
                self._handle_in(item[1])
            elif item[0] == "info":
                self._apply(self.handler.handle_info(item[1], self.socket), _NO_MESSAGE)
            else:
                self._stop(item[1], notify=False)
        except Exception:
            if self._ended:
                return
            logger.error("channel %r crashed", self.topic, exc_info=True)
            self._terminate("crash")
            self._end(notify=True, graceful=False)

    def _handle_in(self, message: Message) -> None:
        if message.event == "phx_leave":
            # §3.6: ok reply to the leave, then stop with {:shutdown, :left} -> phx_close.
            self.send_reply(message.ref, ok())
            self._stop("shutdown:left", notify=True)
            return
        socket = self.socket
        socket._ref, socket._in_message = message.ref, True
        try:
            result = self.handler.handle_in(message.event, message.payload, socket)
        finally:
            socket._ref, socket._in_message = None, False
        self._apply(result, message.ref)

    def _apply(self, result: object, ref: object) -> None:
        if result is None:
            return
        if isinstance(result, Reply):
            if ref is _NO_MESSAGE:
                raise TypeError("handle_info cannot reply; use socket.reply(socket_ref, ...)")
            self.send_reply(ref, result)  # type: ignore[arg-type]
            return
        if isinstance(result, Stop):
            if result.reply is not None and ref is not _NO_MESSAGE:
                self.send_reply(ref, result.reply)  # type: ignore[arg-type]
            self._stop(result.reason, notify=True)
            return
        raise TypeError(f"a callback must return None, a Reply or a Stop, got {result!r}")

    def _stop(self, reason: str, *, notify: bool) -> None:
        self._terminate(reason)
        self._end(notify=notify, graceful=is_graceful(reason))

    def _terminate(self, reason: str) -> None:
        try:
            self.handler.terminate(reason, self.socket)
        except Exception:
            logger.error("terminate of channel %r failed", self.topic, exc_info=True)

    def _end(self, *, notify: bool, graceful: bool) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.exit_notified = notify
        self._mailbox.close()
        endpoint = self.session.endpoint
        # Unsubscribe first: the client does not see the leave diff of its own dead channel.
        endpoint.pubsub.unsubscribe(self.topic, self)
        try:
            endpoint.presence.untrack_all(self)
        finally:
            self.session.channel_ended(self, notify=notify, graceful=graceful)
            self.done.set()
