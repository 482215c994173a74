"""The ``socket`` a channel callback receives (the channel view of ``Phoenix.Socket``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from .message import OutPayload, Ref
from .presence import PresenceState
from .result import Reply
from .timer import TimerHandle

if TYPE_CHECKING:
    from .channel_server import ChannelServer
    from .endpoint import Endpoint

_CHUNK = 256


@dataclass(frozen=True)
class SocketRef:
    """Where a delayed reply goes (Phoenix's ``socket_ref/1``)."""

    join_ref: Ref
    ref: Ref
    topic: str


class ChannelSocket:
    """Per-join state and the actions a channel may take.

    Attributes:
        assigns: Per-channel assigns, initialised from the connection's assigns;
            mutate freely inside the channel's callbacks.

    """

    def __init__(self, server: ChannelServer, assigns: Mapping[str, Any]) -> None:
        """Bind a socket to its channel server (done by the runtime)."""
        self._server = server
        self.assigns: dict[str, Any] = dict(assigns)
        self._ref: Ref = None
        self._in_message = False

    # -- identity ------------------------------------------------------------

    @property
    def topic(self) -> str:
        """The joined topic."""
        return self._server.topic

    @property
    def join_ref(self) -> Ref:
        """The join_ref of this incarnation."""
        return self._server.join_ref

    @property
    def ref(self) -> Ref:
        """The ref of the message being handled (inside ``handle_in`` only)."""
        return self._ref

    @property
    def params(self) -> Mapping[str, Any]:
        """The connection's connect params."""
        return self._server.session.params

    @property
    def socket_id(self) -> str | None:
        """The connection's socket id, if the connect handler set one."""
        return self._server.session.socket_id

    @property
    def connection_id(self) -> int:
        """The id of the connection this channel lives on."""
        return self._server.session.id

    @property
    def vsn(self) -> str:
        """The connection's serializer version (``"1.0.0"`` or ``"2.0.0"``)."""
        return self._server.session.serializer.vsn

    @property
    def transport(self) -> str:
        """The transport name (``"websocket"``)."""
        return self._server.session.transport.name

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint: broadcast to other topics, disconnect sockets, read presence."""
        return self._server.session.endpoint

    @property
    def joined(self) -> bool:
        """Whether the join completed and the channel has not ended."""
        return self._server.joined

    # -- sending -------------------------------------------------------------

    def push(self, event: str, payload: OutPayload) -> None:
        """Push to this client only (join_ref set, ref null); bytes go as binary.

        Raises:
            RuntimeError: before the join completed (as in Phoenix).

        """
        self._require_joined("push")
        self._server.send(self._server.push_frame(event, payload))

    def push_many(self, event: str, payloads: Iterable[OutPayload]) -> int:
        """Push many messages of one event with the envelope encoded once.

        Frames are written in chunks, each with one lock acquisition and one
        socket write, which is what throughput benchmarks need.

        Returns:
            How many messages were written.

        """
        self._require_joined("push")
        encode = self._server.push_encoder(event)
        sent = 0
        iterator: Iterator[OutPayload] = iter(payloads)
        while chunk := [encode(payload) for payload in islice(iterator, _CHUNK)]:
            if not self._server.send_many(chunk):
                break
            sent += len(chunk)
        return sent

    def broadcast(self, event: str, payload: OutPayload) -> int:
        """Broadcast to every subscriber of this topic, this channel included.

        Returns:
            How many subscribers it was written to.

        """
        self._require_joined("broadcast")
        return self.endpoint.broadcast(self.topic, event, payload)

    def broadcast_from(self, event: str, payload: OutPayload) -> int:
        """Broadcast to every subscriber of this topic except this channel."""
        self._require_joined("broadcast_from")
        return self.endpoint.broadcast(self.topic, event, payload, exclude=self._server)

    def socket_ref(self) -> SocketRef:
        """Capture the current message's refs to reply later with :meth:`reply`."""
        if not self._in_message:
            raise RuntimeError("socket_ref() is only available inside handle_in")
        return SocketRef(self.join_ref, self._ref, self.topic)

    def reply(self, socket_ref: SocketRef, reply: Reply) -> None:
        """Send a reply to an earlier message (after returning ``None`` from ``handle_in``)."""
        self._server.send_reply(socket_ref.ref, reply)

    def send_self(self, message: Any, delay: float | None = None) -> TimerHandle | None:
        """Queue ``message`` for this channel's ``handle_info`` (after ``delay`` seconds)."""
        if delay is None:
            self._server.send_info(message)
            return None
        return self.endpoint.timer.call_later(delay, lambda: self._server.send_info(message))

    # -- presence ------------------------------------------------------------

    def track(self, key: str, meta: Mapping[str, Any]) -> str:
        """Track this channel under ``key`` on its topic; returns the ``phx_ref``."""
        return self.endpoint.presence.track(self._server, self.topic, key, meta)

    def update(self, key: str, meta: Mapping[str, Any]) -> str:
        """Replace the meta of ``key``; returns the new ``phx_ref`` (old one in ``phx_ref_prev``)."""
        return self.endpoint.presence.update(self._server, self.topic, key, meta)

    def untrack(self, key: str | None = None) -> None:
        """Stop tracking ``key`` (every key of this channel when ``None``)."""
        self.endpoint.presence.untrack(self._server, self.topic, key)

    def presence_state(self) -> PresenceState:
        """The topic's presence state, ready to push as ``presence_state``."""
        return self.endpoint.presence.state(self.topic)

    # -- connection ----------------------------------------------------------

    def kill_transport(self) -> None:
        """Drop this client's connection without a close frame (no channel callbacks run first)."""
        self._server.session.transport.abort()

    def _require_joined(self, action: str) -> None:
        # After the channel ended, sends are silently dropped instead (see ChannelServer.send).
        if not self._server.join_completed:
            raise RuntimeError(f"{action} can only be called after the socket has finished joining")

    def __repr__(self) -> str:
        return f"<ChannelSocket {self.topic!r} join_ref={self.join_ref!r} conn={self.connection_id}>"
