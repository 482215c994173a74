"""The Phoenix Channels protocol core for one socket: pure, single-threaded, clock-free.

:class:`PhoenixSession` owns the channels, the ref counter, the table of
pushes awaiting replies, the heartbeat and every deadline. The runtime feeds
it events (connection opened/closed, a decoded message, the current time when
a deadline passes, user operations) and drains its outputs:

* ``outgoing``: encoded frames to send, in order;
* :meth:`take_output`: events for the dispatcher, completions for blocked
  callers, and channels whose rejoin is due (the runtime evaluates their join
  params outside its lock, then calls :meth:`send_rejoin`);
* ``close_request``: set when the connection must be dropped (heartbeat timeout).

Section numbers refer to ``reference/phoenix-protocol.md``.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from maxsdk.errors import CapacityError, ChannelClosedError, LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.deadlines import Deadlines
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState, Trigger
from maxsdk.protocol.phoenix.events import (
    ChannelMessage,
    ChannelStateChanged,
    Completion,
    HeartbeatReplied,
    Outcome,
    ProtocolErrorReceived,
    RawMessage,
)
from maxsdk.protocol.phoenix.handler import PhoenixProtocol
from maxsdk.protocol.phoenix.message import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_CLOSE,
    PHX_ERROR,
    PHX_JOIN,
    PHX_LEAVE,
    PHX_REPLY,
    RESERVED_EVENTS,
    Message,
)
from maxsdk.protocol.phoenix.serializer import EncodedPayload, Serializer

__all__ = ["PhoenixSession", "PushKind", "SessionConfig"]

_EMPTY = "{}"
#: How many times a heartbeat timeout is postponed because other frames keep arriving.
_MAX_HEARTBEAT_EXTENSIONS = 3
_S = ChannelState
_new_tuple = tuple.__new__
# Module constants for the per-message checks: an Enum member lookup costs ~90 ns on 3.11.
_LEAVING, _CLOSED, _JOINED = _S.LEAVING, _S.CLOSED, _S.JOINED


class PushKind(enum.Enum):
    """What a ref in the pending table stands for."""

    PUSH = "push"
    JOIN = "join"
    LEAVE = "leave"
    PING = "ping"


@dataclass(frozen=True)
class SessionConfig:
    """Protocol settings (durations in seconds).

    Attributes:
        heartbeat_interval: time between a heartbeat reply and the next
            heartbeat; ``None`` disables heartbeats.
        heartbeat_timeout: how long to wait for a heartbeat reply before
            declaring the connection dead; defaults to ``heartbeat_interval``.
        rejoin: the channel rejoin schedule.
        max_pending: the most pushes awaiting a reply (or buffered) at once;
            ``None`` = unbounded.

    """

    heartbeat_interval: float | None = 30.0
    heartbeat_timeout: float | None = None
    rejoin: Backoff = field(default_factory=Backoff.phoenix_rejoin)
    max_pending: int | None = None


@dataclass(eq=False)
class _Pending:
    ref: str
    kind: PushKind
    channel: ChannelCore | None
    topic: str
    event: str
    payload: EncodedPayload
    waiter: Any
    join_ref: str | None = None  # the join_ref it was sent with
    sent: bool = False


class PhoenixSession:
    """Sans-I/O state of one Phoenix socket and its channels.

    Not thread-safe: the runtime serializes every call with one lock.
    ``now`` arguments are monotonic seconds.
    """

    def __init__(
        self,
        serializer: Serializer,
        config: SessionConfig | None = None,
        *,
        emit: Callable[[Any], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        #: Events emitted when no ``emit`` sink is given (handy in tests).
        self.events: list[Any] = []
        self._emit: Callable[[Any], None] = emit or self.events.append
        self.serializer = serializer
        #: The wire (frames for pushes, joins, leaves, heartbeats) as a protocol handler.
        self.protocol = PhoenixProtocol(serializer)
        self._frame = self.protocol.frame
        self.config = config or SessionConfig()
        self._rng = rng
        self.connected = False
        self.emit_raw = False
        #: Channel states whose :class:`ChannelStateChanged` events are not emitted
        #: (the runtime acts on none of the moves into them).
        self.unreported_states: frozenset[_S] = frozenset()
        #: Set by the runtime while its reader is deliberately not reading
        #: (backpressure): a missing heartbeat reply then proves nothing.
        self.heartbeat_timeout_suspended = False
        self.close_request: str | None = None
        self.last_heartbeat_rtt: float | None = None
        self.outgoing: deque[str | bytes] = deque()
        self.counters: dict[str, int] = {
            "protocol_errors": 0,
            "stale_dropped": 0,
            "unknown_replies": 0,
            "unroutable": 0,
            "push_timeouts": 0,
            "heartbeat_timeouts": 0,
            "heartbeat_replies": 0,
            "joins_ok": 0,
        }
        self._ref = 0
        self._channels: dict[str, list[ChannelCore]] = {}
        self._pending: dict[str, _Pending] = {}
        self._deadlines: Deadlines[tuple[Any, ...]] = Deadlines()
        self._hb_ref: str | None = None
        self._hb_sent_at = 0.0
        self._hb_extensions = 0
        self._heartbeats = True
        self._last_received = 0.0
        self.completions: list[Completion] = []
        #: Channels whose (re)join is due: the runtime evaluates their join
        #: params outside its lock, then calls :meth:`send_rejoin`.
        self.followups: list[ChannelCore] = []

    # -- outputs --------------------------------------------------------------

    @property
    def rejoins_due(self) -> list[ChannelCore]:
        """The channels waiting for a rejoin (the session's ``followups``)."""
        return self.followups

    def take_output(self) -> tuple[list[Completion], list[ChannelCore]]:
        """Return and clear ``(completions, followups)`` (followups = channels due a rejoin).

        Events are not buffered here: they go to the ``emit`` sink as they happen.
        """
        completions, rejoins = self.completions, self.followups
        if completions:
            self.completions = []
        if rejoins:
            self.followups = []
        return completions, rejoins

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which :meth:`on_deadline` has work."""
        return self._deadlines.next()

    def take_new_deadline(self) -> float:
        """The earliest deadline set since the last call (``inf`` if none)."""
        return self._deadlines.take_lowest_set()

    # -- queries ---------------------------------------------------------------

    def new_ref(self) -> str:
        """Allocate a ref: decimal strings from one counter, never reused (§2.1)."""
        self._ref += 1
        return str(self._ref)

    def channels(self) -> list[ChannelCore]:
        """Every registered channel (joining, joined, errored or leaving)."""
        return [ch for chs in self._channels.values() for ch in chs]

    @property
    def pending_count(self) -> int:
        """Pushes (and joins, leaves, pings) awaiting a reply or buffered."""
        return len(self._pending)

    # -- connection lifecycle ------------------------------------------------------

    def connection_opened(self, now: float, *, heartbeats: bool = True) -> None:
        """The transport is open: start heartbeats and ask for every rejoin (§5.5).

        ``heartbeats=False`` for transports that must not send them (long-poll, §1.8).
        """
        self.connected = True
        self.close_request = None
        self._hb_ref = None
        self._hb_extensions = 0
        self._last_received = now
        self._heartbeats = heartbeats
        if self.config.heartbeat_interval and heartbeats:
            self._deadlines.set(("hb_send",), now + self.config.heartbeat_interval)
        for ch in self.channels():
            if ch.state is _S.ERRORED or (ch.state is _S.JOINING and not ch.join_sent):
                ch.rejoin_attempt = 0
                self._deadlines.cancel(("rejoin", ch))
                self.followups.append(ch)

    def connection_closed(self, now: float, reason: str = "connection_closed") -> None:
        """The transport closed: drop unsent frames, end in-flight pushes, error channels."""
        if not self.connected:
            return
        self.connected = False
        reason = self.close_request or reason
        self.close_request = None
        self.outgoing.clear()
        self._hb_ref = None
        self._deadlines.cancel(("hb_send",))
        self._deadlines.cancel(("hb_timeout",))
        # Pushes already sent will never be answered on a new connection (§5.2, checklist 34).
        for entry in [e for e in self._pending.values() if e.sent]:
            self._finish(entry, "lost", None)
        for ch in self.channels():
            if ch.state is _S.LEAVING:
                self._close_channel(ch, Trigger.CONNECTION_LOST, ch.leave_reason, None)
            elif ch.state in (_S.JOINING, _S.JOINED):
                ch.join_sent = False
                self._change(ch, Trigger.CONNECTION_LOST, reason, None)
            elif ch.state is _S.ERRORED:
                self._deadlines.cancel(("rejoin", ch))

    def shutdown(self) -> None:
        """The client is closing for good: end every push and close every channel."""
        self.connection_closed(0.0, "client_closed")
        for entry in list(self._pending.values()):
            self._finish(entry, "client_closed", None)
        for ch in self.channels():
            if ch.join_waiter is not None:
                self._complete_join_waiter(ch, "client_closed", None)
            while ch.buffer:
                buffered = self._pending.get(ch.buffer.popleft())
                if buffered is not None:
                    self._finish(buffered, "client_closed", None)
            self._close_channel(ch, None, "client_closed", None)
        self._deadlines.clear()

    # -- user operations -----------------------------------------------------------

    def join(self, ch: ChannelCore, payload: EncodedPayload, now: float, timeout: float, waiter: Any) -> None:
        """Start joining ``ch`` (§5.2 ``closed → joining``).

        Any other active channel object on the same topic is left first
        (§3.5, checklist 23). ``waiter`` receives the outcome of this first
        join, which ends ``closed`` on refusal or timeout.
        """
        if ch.state is not _S.CLOSED:
            raise LocalProtocolError(f"channel {ch.topic!r} is {ch.state}; join() needs a closed channel")
        _check_text("topic", ch.topic)
        for other in list(self._channels.get(ch.topic, ())):
            if other is not ch and other.is_active:
                self._leave(other, now, other.timeout, None, reason="replaced")
        self._channels.setdefault(ch.topic, []).append(ch)
        ch.timeout = timeout
        ch.joined_once = False
        ch.rejoin_attempt = 0
        ch.join_waiter = waiter
        ch.join_ref = None
        ch.join_sent = False
        self._change(ch, Trigger.JOIN, "join", None)
        self._deadlines.set(("join_wait", ch), now + timeout)
        if self.connected:
            self._send_join(ch, payload, now)

    def send_rejoin(self, ch: ChannelCore, payload: EncodedPayload, now: float) -> bool:
        """Send the (re)join of a channel listed in ``followups``, if still wanted.

        Returns:
            Whether a ``phx_join`` was sent (the channel may have been left
            or the connection lost in the meantime).

        """
        if not self.connected:
            return False
        if ch.state is _S.ERRORED:
            self._change(ch, Trigger.REJOIN, "rejoin", None)
        elif not (ch.state is _S.JOINING and not ch.join_sent):
            return False
        self._deadlines.cancel(("rejoin", ch))
        self._send_join(ch, payload, now)
        return True

    def rejoin_not_sent(self, ch: ChannelCore, now: float) -> None:
        """The runtime could not build a rejoin (its params callable failed): retry later."""
        if ch.state is _S.ERRORED:
            self._schedule_rejoin(ch, now)
        elif ch.state is _S.JOINING and not ch.join_sent and self.connected:
            self._change(ch, Trigger.CONNECTION_LOST, "params_failed", None)
            self._schedule_rejoin(ch, now)

    def push(
        self,
        ch: ChannelCore,
        event: str,
        payload: EncodedPayload,
        now: float,
        timeout: float,
        waiter: Any,
        *,
        buffer: bool = True,
    ) -> str:
        """Push ``event`` on ``ch``; send now if joined, else buffer until the join (§5.2).

        The timeout runs from now, buffered or not (checklist 17). With
        ``buffer=False`` (the durable outbox, which keeps its own order) a push
        that cannot go out now is refused with :class:`ChannelClosedError`.

        Returns:
            The push's ref.

        Raises:
            ChannelClosedError: the channel is closed or leaving (or not
                joined, with ``buffer=False``).
            LocalProtocolError: ``event`` is reserved.
            CapacityError: ``max_pending`` pushes are already waiting.

        """
        if ch.state is _CLOSED or ch.state is _LEAVING:
            raise ChannelClosedError(f"cannot push to {ch.topic!r}: channel is {ch.state}", topic=ch.topic)
        if not buffer and not (self.connected and ch.state is _JOINED):
            raise ChannelClosedError(f"{ch.topic!r} is not joined now ({ch.state})", topic=ch.topic)
        if event in RESERVED_EVENTS:
            raise LocalProtocolError(f"{event!r} is reserved; use join()/leave()")
        _check_text("event", event)
        _check_text("topic", ch.topic)
        self._check_capacity()
        ref = self.new_ref()
        entry = _Pending(ref, PushKind.PUSH, ch, ch.topic, event, payload, waiter)
        self._pending[ref] = entry
        self._deadlines.set(("push", ref), now + timeout)
        if self.connected and ch.state is _JOINED:
            self._send_entry(entry, ch.join_ref)
        else:
            ch.buffer.append(ref)
        return ref

    def leave(self, ch: ChannelCore, now: float, timeout: float, waiter: Any) -> None:
        """Leave ``ch``: ``phx_leave`` then closed on its reply or timeout (§3.6, checklist 22)."""
        if ch.state is _S.CLOSED or ch.state is _S.LEAVING:
            self.completions.append(Completion(waiter, Outcome("ok", None, ch.topic, PHX_LEAVE, "")))
            return
        self._leave(ch, now, timeout, waiter, reason="left")

    def ping(self, now: float, timeout: float, waiter: Any) -> str:
        """Send an extra heartbeat whose reply completes ``waiter`` (phoenix.js ``socket.ping``)."""
        if not self.connected:
            raise LocalProtocolError("cannot ping while disconnected")
        self._check_capacity()
        ref = self.new_ref()
        entry = _Pending(ref, PushKind.PING, None, PHOENIX_TOPIC, HEARTBEAT, _EMPTY, waiter)
        self._pending[ref] = entry
        self._deadlines.set(("push", ref), now + timeout)
        self._send_entry(entry, None)
        return ref

    def emit_to(self, sink: Callable[[Any], None]) -> None:
        """Send events to ``sink`` from now on (the runtime's dispatcher, once it exists)."""
        self._emit = sink

    # -- incoming -------------------------------------------------------------------

    def receive(self, msg: Message, now: float) -> None:
        """Route one decoded message (§3.4, §4.1, §5.1 dispatch)."""
        self._last_received = now
        if self.emit_raw:
            self._emit(RawMessage(msg))
        ref = msg.ref
        if ref is not None:
            if ref == self._hb_ref and msg.topic == PHOENIX_TOPIC:
                self._heartbeat_replied(ref, now)
                return
            if msg.event == PHX_REPLY:
                self._reply(msg, now)
                return
        channels = self._channels.get(msg.topic)
        if not channels:
            self.counters["unroutable"] += 1
            return
        join_ref = msg.join_ref
        for ch in list(channels) if len(channels) > 1 else channels:
            if join_ref is not None and join_ref != ch.join_ref:
                self.counters["stale_dropped"] += 1
                continue
            event = msg.event
            if event == PHX_CLOSE:
                self._server_close(ch, msg)
            elif event == PHX_ERROR:
                self._server_error(ch, msg, now)
            elif ch.state is not _LEAVING and ch.state is not _CLOSED:
                # tuple.__new__: one C call instead of the NamedTuple's Python-level __new__.
                self._emit(_new_tuple(ChannelMessage, (ch.owner, msg, ch.join_ref)))

    def protocol_error(self, error: RemoteProtocolError) -> None:
        """Count a frame that could not be decoded and report it."""
        self.counters["protocol_errors"] += 1
        self._emit(ProtocolErrorReceived(error))

    # -- deadlines --------------------------------------------------------------------

    def on_deadline(self, now: float) -> None:
        """Act on every deadline that has passed."""
        for key in self._deadlines.due(now):
            kind = key[0]
            if kind == "push":
                self._push_timed_out(key[1], now)
            elif kind == "hb_send":
                self._send_heartbeat(now)
            elif kind == "hb_timeout":
                self._heartbeat_timed_out(now)
            elif kind == "rejoin":
                ch = key[1]
                if self.connected and ch.state is _S.ERRORED:
                    self.followups.append(ch)
            elif kind == "join_wait":
                self._join_wait_expired(key[1])

    # -- internals: sending ---------------------------------------------------------------

    def _check_capacity(self) -> None:
        limit = self.config.max_pending
        if limit is not None and len(self._pending) >= limit:
            raise CapacityError(f"{limit} pushes are already awaiting replies (max_pending)")

    def _send_entry(self, entry: _Pending, join_ref: str | None) -> None:
        entry.join_ref = join_ref
        entry.sent = True
        self.outgoing.append(self._frame(join_ref, entry.ref, entry.topic, entry.event, entry.payload))

    def _send_join(self, ch: ChannelCore, payload: EncodedPayload, now: float) -> None:
        ref = self.new_ref()
        ch.join_ref = ref
        ch.join_sent = True
        entry = _Pending(ref, PushKind.JOIN, ch, ch.topic, PHX_JOIN, payload, None, ref, True)
        self._pending[ref] = entry
        self._deadlines.set(("push", ref), now + ch.timeout)
        # join_ref == ref (§2.3, checklist 13)
        self.outgoing.append(self.protocol.join(ref, ch.topic, payload))

    def _send_leave_frame(self, ch: ChannelCore, now: float, timeout: float, waiter: Any) -> None:
        ref = self.new_ref()
        entry = _Pending(ref, PushKind.LEAVE, ch, ch.topic, PHX_LEAVE, _EMPTY, waiter, ch.join_ref, True)
        self._pending[ref] = entry
        self._deadlines.set(("push", ref), now + timeout)
        self.outgoing.append(self.protocol.leave(ch.join_ref, ref, ch.topic))

    def _send_heartbeat(self, now: float) -> None:
        if not self.connected:
            return
        ref = self.new_ref()
        self._hb_ref = ref
        self._hb_sent_at = now
        self.outgoing.append(self.protocol.heartbeat(ref))
        timeout = self.config.heartbeat_timeout or self.config.heartbeat_interval or 30.0
        self._deadlines.set(("hb_timeout",), now + timeout)

    # -- internals: replies -----------------------------------------------------------------

    def _reply(self, msg: Message, now: float) -> None:
        entry = self._pending.get(msg.ref)  # type: ignore[arg-type]
        if entry is None or not entry.sent or entry.topic != msg.topic:
            if msg.topic != PHOENIX_TOPIC:  # late heartbeat replies are expected noise
                self.counters["unknown_replies"] += 1
            return
        if msg.join_ref is not None and msg.join_ref != entry.join_ref:
            self.counters["stale_dropped"] += 1
            return
        del self._pending[entry.ref]
        self._deadlines.cancel(("push", entry.ref))
        payload = msg.payload
        status, response = payload["status"], payload.get("response")
        kind = entry.kind
        if kind is PushKind.PUSH or kind is PushKind.PING:
            if entry.waiter is not None:
                self.completions.append(
                    Completion(entry.waiter, Outcome(status, response, entry.topic, entry.event, entry.ref))
                )
            return
        ch = entry.channel
        assert ch is not None
        if kind is PushKind.LEAVE:
            if ch.state is _S.LEAVING:
                self._close_channel(ch, Trigger.LEAVE_DONE, ch.leave_reason, None)
            self.completions.append(Completion(entry.waiter, Outcome(status, response, ch.topic, PHX_LEAVE, entry.ref)))
            return
        if ch.join_ref != entry.ref or ch.state is not _S.JOINING:
            return  # a superseded join
        if status == "ok":
            self._join_ok(ch, response)
        else:
            self._join_refused(ch, response, now)

    def _join_ok(self, ch: ChannelCore, response: Any) -> None:
        rejoined = ch.joined_once
        ch.joined_once = True
        self.counters["joins_ok"] += 1
        ch.rejoin_attempt = 0
        ch.last_join_response = response
        self._deadlines.cancel(("join_wait", ch))
        self._deadlines.cancel(("rejoin", ch))
        self._change(ch, Trigger.JOIN_OK, "rejoined" if rejoined else "joined", response)
        if ch.join_waiter is not None:
            self._complete_join_waiter(ch, "ok", response)
        # Flush the push buffer with the new join_ref (§5.2; each keeps its ref and deadline).
        buffer, pending = ch.buffer, self._pending
        while buffer:
            entry = pending.get(buffer.popleft())
            if entry is not None and not entry.sent:
                self._send_entry(entry, ch.join_ref)

    def _join_refused(self, ch: ChannelCore, response: Any, now: float) -> None:
        if ch.join_waiter is not None:
            self._complete_join_waiter(ch, "error", response)
            self._close_channel(ch, Trigger.JOIN_FAILED, "refused", response)
        else:
            self._change(ch, Trigger.REJOIN_FAILED, "rejoin_refused", response)
            self._schedule_rejoin(ch, now)

    def _heartbeat_replied(self, ref: str, now: float) -> None:
        self._hb_ref = None
        self._hb_extensions = 0
        rtt = now - self._hb_sent_at
        self.last_heartbeat_rtt = rtt
        self.counters["heartbeat_replies"] += 1
        self._deadlines.cancel(("hb_timeout",))
        # The next heartbeat is scheduled from the reply (§4.1, phoenix PR #4309).
        if self.config.heartbeat_interval and self._heartbeats:
            self._deadlines.set(("hb_send",), now + self.config.heartbeat_interval)
        self._emit(HeartbeatReplied(ref, rtt))

    # -- internals: server-initiated channel events ------------------------------------------

    def _server_close(self, ch: ChannelCore, msg: Message) -> None:
        if ch.state is _S.CLOSED:
            return
        self._emit(ChannelMessage(ch.owner, msg, ch.join_ref))
        reason = ch.leave_reason if ch.state is _S.LEAVING else "closed_by_server"
        if ch.join_waiter is not None:
            self._complete_join_waiter(ch, "closed", msg.payload)
        self._close_channel(ch, Trigger.SERVER_CLOSE, reason, msg.payload)

    def _server_error(self, ch: ChannelCore, msg: Message, now: float) -> None:
        if ch.state is not _S.JOINING and ch.state is not _S.JOINED:
            return
        self._emit(ChannelMessage(ch.owner, msg, ch.join_ref))
        self._fail_sent(ch, "lost")
        ch.join_sent = False
        self._change(ch, Trigger.SERVER_ERROR, "crashed", msg.payload)
        self._schedule_rejoin(ch, now)

    # -- internals: timeouts ----------------------------------------------------------------

    def _push_timed_out(self, ref: str, now: float) -> None:
        entry = self._pending.get(ref)
        if entry is None:
            return
        kind = entry.kind
        if kind is PushKind.JOIN:
            ch = entry.channel
            assert ch is not None
            del self._pending[ref]
            if ch.join_ref != ref or ch.state is not _S.JOINING:
                return
            if ch.join_waiter is not None:
                self._join_wait_expired(ch)
                return
            # A rejoin timed out: tell the server to drop it, then retry (§5.2).
            if self.connected:
                self._send_leave_frame(ch, now, ch.timeout, None)
            # Forget the abandoned incarnation (§5.2): its late frames, and the
            # phx_close answering our leave, must not touch the channel.
            ch.join_ref = None
            ch.join_sent = False
            self._change(ch, Trigger.REJOIN_FAILED, "timeout", None)
            self._schedule_rejoin(ch, now)
            return
        self.counters["push_timeouts"] += kind is PushKind.PUSH
        if kind is PushKind.LEAVE and entry.channel is not None and entry.channel.state is _S.LEAVING:
            self._close_channel(entry.channel, Trigger.LEAVE_DONE, entry.channel.leave_reason, None)
        self._finish(entry, "timeout", None)

    def _join_wait_expired(self, ch: ChannelCore) -> None:
        if ch.join_waiter is None:
            return
        self._complete_join_waiter(ch, "timeout", None)
        if ch.state is _S.JOINING and ch.join_sent and self.connected:
            # The server may still join us: leave explicitly (§5.2 join timeout).
            self._pending.pop(ch.join_ref or "", None)
            self._deadlines.cancel(("push", ch.join_ref))
            self.outgoing.append(self.protocol.leave(ch.join_ref, self.new_ref(), ch.topic))
        if ch.state in (_S.JOINING, _S.ERRORED):
            self._close_channel(ch, Trigger.JOIN_FAILED, "timeout", None)

    def _heartbeat_timed_out(self, now: float) -> None:
        if self._hb_ref is None or not self.connected:
            return
        timeout = self.config.heartbeat_timeout or self.config.heartbeat_interval or 30.0
        if self.heartbeat_timeout_suspended:
            self._deadlines.set(("hb_timeout",), now + timeout)
            return
        if now - self._last_received < timeout and self._hb_extensions < _MAX_HEARTBEAT_EXTENSIONS:
            # Frames are still arriving: the reply is likely queued behind a burst
            # (a link that delivers data is not half-open). Wait a little longer.
            self._hb_extensions += 1
            self._deadlines.set(("hb_timeout",), now + timeout)
            return
        self._hb_ref = None
        self.counters["heartbeat_timeouts"] += 1
        self.close_request = "heartbeat_timeout"

    # -- internals: channel bookkeeping --------------------------------------------------------

    def _leave(self, ch: ChannelCore, now: float, timeout: float, waiter: Any, *, reason: str) -> None:
        self._deadlines.cancel(("rejoin", ch))
        if ch.join_waiter is not None:
            self._complete_join_waiter(ch, "closed", None)
        self._fail_buffered(ch)
        can_send = self.connected and ch.join_sent and ch.state in (_S.JOINING, _S.JOINED)
        ch.leave_reason = reason
        self._change(ch, Trigger.LEAVE, reason, None)
        if can_send:
            self._send_leave_frame(ch, now, timeout, waiter)
        else:
            self._close_channel(ch, Trigger.LEAVE_DONE, reason, None)
            self.completions.append(Completion(waiter, Outcome("ok", None, ch.topic, PHX_LEAVE, "")))

    def _schedule_rejoin(self, ch: ChannelCore, now: float) -> None:
        if not self.connected:
            return  # the next connection_opened rejoins immediately
        ch.rejoin_attempt += 1
        delay = self.config.rejoin.delay(ch.rejoin_attempt, self._rng)
        if delay is None:
            self._close_channel(ch, Trigger.JOIN_FAILED, "rejoin_exhausted", None)
        else:
            self._deadlines.set(("rejoin", ch), now + delay)

    def _change(self, ch: ChannelCore, trigger: Trigger, reason: str, response: Any) -> None:
        old = ch.apply(trigger)
        if (old is not ch.state or trigger is Trigger.REJOIN_FAILED) and ch.state not in self.unreported_states:
            self._emit(ChannelStateChanged(ch.owner, ch.topic, old, ch.state, reason, response, ch.join_ref))

    def _close_channel(self, ch: ChannelCore, trigger: Trigger | None, reason: str, response: Any) -> None:
        """Move ``ch`` to closed (directly when ``trigger`` is None) and forget it."""
        old = ch.state
        if trigger is None:
            ch.state = _S.CLOSED
        else:
            ch.apply(trigger)
        if ch.join_waiter is not None:
            self._complete_join_waiter(ch, "closed", response)
        self._fail_sent(ch, "lost")
        self._fail_buffered(ch)
        for key in (("rejoin", ch), ("join_wait", ch)):
            self._deadlines.cancel(key)
        siblings = self._channels.get(ch.topic)
        if siblings is not None and ch in siblings:
            siblings.remove(ch)
            if not siblings:
                del self._channels[ch.topic]
        if old is not _S.CLOSED:
            self._emit(ChannelStateChanged(ch.owner, ch.topic, old, _S.CLOSED, reason, response, ch.join_ref))

    def _complete_join_waiter(self, ch: ChannelCore, status: str, response: Any) -> None:
        waiter, ch.join_waiter = ch.join_waiter, None
        self._deadlines.cancel(("join_wait", ch))
        self.completions.append(Completion(waiter, Outcome(status, response, ch.topic, PHX_JOIN, ch.join_ref or "")))

    def _fail_sent(self, ch: ChannelCore, status: str) -> None:
        """End the pushes of ``ch`` that were sent (their replies can no longer come)."""
        for entry in [e for e in self._pending.values() if e.channel is ch and e.sent]:
            if entry.kind is PushKind.LEAVE:
                continue
            self._finish(entry, status, None)

    def _fail_buffered(self, ch: ChannelCore) -> None:
        """End the pushes of ``ch`` that never went out."""
        while ch.buffer:
            entry = self._pending.get(ch.buffer.popleft())
            if entry is not None and not entry.sent:
                self._finish(entry, "closed", None)

    def _finish(self, entry: _Pending, status: str, response: Any) -> None:
        self._pending.pop(entry.ref, None)
        self._deadlines.cancel(("push", entry.ref))
        if entry.waiter is not None:
            self.completions.append(
                Completion(entry.waiter, Outcome(status, response, entry.topic, entry.event, entry.ref))
            )


def _check_text(name: str, value: str) -> None:
    """Refuse strings that cannot be sent as UTF-8 (lone surrogates)."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise LocalProtocolError(f"{name} {value!r} is not valid Unicode (lone surrogate)") from None
