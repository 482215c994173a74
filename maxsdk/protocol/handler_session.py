"""The generic sans-I/O session for request/subscription protocols, driving a ProtocolHandler.

:class:`HandlerSession` follows the :class:`~maxsdk.protocol.session.ProtocolSession`
contract, so the engine runs it exactly as it runs Phoenix: one lock around
every call, ``now`` passed in, ``outgoing`` frames, ``completions`` and
events drained after each call, deadlines acted on by the timer thread.

What it does for every protocol (the handler supplies the messages):

* **requests**: an id from one counter (never reused), a waiter and its own
  deadline in a :class:`~maxsdk.protocol.pending.PendingTable` bounded by
  ``max_pending`` (:class:`~maxsdk.errors.CapacityError`). Requests made while
  disconnected or authenticating are queued and sent, in order, once ready;
  their timeout runs from the call. When the connection drops, requests sent
  on it fail as ``lost``, except durable ones, which are sent again.
* **subscriptions**: a :class:`~maxsdk.protocol.subscriptions.SubscriptionTable`;
  subscribers of one topic share one server subscription. On every ready
  connection each live topic is subscribed again in batches of
  ``subscribe_batch_size``; a refused or timed-out batch only affects its own
  topics, which are retried one by one on the ``resubscribe`` schedule.
* **liveness**: a protocol ping every ``ping_interval`` after the last pong
  (or a WebSocket ping, if the handler says so); no pong within
  ``pong_timeout`` → ``close_request = "heartbeat_timeout"`` and the engine
  reconnects. Server pings are answered with the handler's pong.
* **authentication**: with credentials, the handler's auth message goes out
  on every connection; nothing else is sent until it succeeds.

Outcomes handed to waiters are :class:`RequestOutcome` values with a
``status``: ``"ok"``, ``"error"`` (the server's error in ``error``),
``"timeout"``, ``"lost"``, ``"invalid"`` (a malformed reply),
``"auth_failed"``, ``"client_closed"``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from maxsdk.errors import CapacityError, LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.deadlines import Deadlines
from maxsdk.protocol.handler import (
    Frame,
    FrameKind,
    Incoming,
    ProtocolHandler,
    RequestId,
    SubscribeResult,
    TopicRef,
)
from maxsdk.protocol.pending import PendingRequest, PendingTable, RequestIds
from maxsdk.protocol.subscriptions import (
    ACTIVE,
    FAILED,
    SUBSCRIBING,
    SubscriptionTable,
    TopicSubscription,
    chunked,
)

__all__ = [
    "Authenticated",
    "ErrorReceived",
    "HandlerSession",
    "HandlerSessionConfig",
    "NotificationReceived",
    "PongReceived",
    "ProtocolErrorReported",
    "RawReceived",
    "RequestOutcome",
    "SubscriptionChanged",
    "UnroutableUpdate",
    "UpdateReceived",
]

#: How many abandoned subscribe requests are remembered to undo a late confirmation.
_MAX_ABANDONED = 1024
#: How many distinct names of unroutable updates are reported (each once).
_MAX_UNROUTABLE_REPORTS = 64

#: How many times a pong timeout is postponed because other frames keep arriving.
_MAX_PONG_EXTENSIONS = 3

_REPLY = FrameKind.REPLY
_UPDATE = FrameKind.UPDATE


@dataclass(frozen=True)
class HandlerSessionConfig:
    """Settings of a :class:`HandlerSession` (durations in seconds).

    Attributes:
        ping_interval: time between a pong and the next ping; ``None``: no pings.
        pong_timeout: how long to wait for a pong (default: ``ping_interval``).
        resubscribe: the retry schedule of a refused or timed-out resubscription.
        subscribe_batch_size: the most topics per (re)subscribe message.
        subscribe_timeout: how long a resubscribe waits for its confirmation.
        auth_timeout: how long to wait for the auth answer before reconnecting.
        max_pending: the most requests awaiting replies (or queued) at once.

    """

    ping_interval: float | None = 30.0
    pong_timeout: float | None = None
    resubscribe: Backoff = field(default_factory=Backoff.phoenix_rejoin)
    subscribe_batch_size: int = 50
    subscribe_timeout: float = 10.0
    auth_timeout: float = 10.0
    max_pending: int | None = 100_000


# -- what the session tells the runtime ----------------------------------------------------


class RequestOutcome(NamedTuple):
    """How a request ended (handed to its waiter)."""

    status: str
    result: Any
    error: Any
    method: str
    request_id: RequestId | None
    topic: str | None = None

    @property
    def event(self) -> str:
        """The method, under the name the engine's reply metrics read."""
        return self.method


class UpdateReceived(NamedTuple):
    """Data for a subscription: deliver to each of ``subscribers``."""

    subscribers: tuple[Any, ...]
    topic: str
    data: Any
    message: Any


class NotificationReceived(NamedTuple):
    """A server-initiated message outside any subscription (``name``: method or topic)."""

    name: str | None
    data: Any
    message: Any


class SubscriptionChanged(NamedTuple):
    """A subscription was confirmed (``"active"``), refused or timed out (``"failed"``), or ended (``"closed"``)."""

    subscribers: tuple[Any, ...]
    topic: str
    state: str
    resubscribed: bool
    error: Any
    key: str | None


class UnroutableUpdate(NamedTuple):
    """The first update named ``name`` that matched no live subscription (reported once per name)."""

    name: str | None
    key: str | None


class ErrorReceived(NamedTuple):
    """An error reply that matches no request (e.g. JSON-RPC ``"id": null`` after a parse error)."""

    error: Any
    message: Any


class PongReceived(NamedTuple):
    """A pong arrived ``rtt`` seconds after its ping."""

    rtt: float


class Authenticated(NamedTuple):
    """The auth message was answered: ``ok`` or refused with ``response``."""

    ok: bool
    response: Any


class ProtocolErrorReported(NamedTuple):
    """A frame broke the protocol and was dropped; the connection carries on."""

    error: RemoteProtocolError


class RawReceived(NamedTuple):
    """Every decoded message, for raw observers (only when asked for)."""

    message: Any


class _Queued(NamedTuple):
    frame: Frame
    entries: tuple[PendingRequest, ...]


class HandlerSession:
    """Sans-I/O state of one connection of a handler-driven protocol.

    Not thread-safe: the runtime serializes every call with one lock.
    ``now`` arguments are monotonic seconds.
    """

    def __init__(
        self,
        handler: ProtocolHandler,
        config: HandlerSessionConfig | None = None,
        *,
        emit: Callable[[Any], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        #: Events emitted when no ``emit`` sink is given (handy in tests).
        self.events: list[Any] = []
        self._emit: Callable[[Any], None] = emit or self.events.append
        self.handler = handler
        self.config = config or HandlerSessionConfig()
        self._rng = rng
        self.connected = False
        #: Connected and authenticated: requests and subscriptions flow.
        self.ready = False
        self.emit_raw = False
        self.heartbeat_timeout_suspended = False
        self.close_request: str | None = None
        self.last_heartbeat_rtt: float | None = None
        #: What the auth message is built from (``None``: no authentication).
        self.credentials: Any = None
        self.outgoing: deque[str | bytes] = deque()
        self.completions: list[tuple[Any, Any]] = []
        self.followups: list[Any] = []
        self.counters: dict[str, int] = {
            "protocol_errors": 0,
            "stale_dropped": 0,
            "unknown_replies": 0,
            "unroutable": 0,
            "request_timeouts": 0,
            "heartbeat_timeouts": 0,
            "heartbeat_replies": 0,
            "errors_received": 0,
            "unknown_messages": 0,
            "resubscribe_failures": 0,
            "late_subscriptions_undone": 0,
            "late_subscriptions_adopted": 0,
        }
        self.ids = RequestIds(strings=handler.string_ids)
        self.requests = PendingTable(self.config.max_pending)
        self.subscriptions = SubscriptionTable()
        self._queue: deque[_Queued] = deque()
        self._deadlines: Deadlines[tuple[Any, ...]] = Deadlines()
        self._auth_id: RequestId | None = None
        self._ready_waiters: list[Any] = []
        self._auth_failed = False
        self._auth_refusal: Any = None  # what the server answered to the refused auth message
        self._ping_id: RequestId | None = None
        self._ping_sent_at = 0.0
        self._ping_waiters: list[Any] = []
        self._pong_extensions = 0
        self._pings = True
        self._last_received = 0.0
        self._reconnect_reason: str | None = None
        self._sweep_at: float | None = None
        self._batch_size = _batch_size(self.config.subscribe_batch_size, handler.max_subscribe_batch)
        # Subscribe requests that timed out, by id: a late confirmation is undone (or adopted).
        self._abandoned: dict[RequestId, list[TopicRef]] = {}
        self._unroutable_names: set[str | None] = set()

    # -- outputs ----------------------------------------------------------------------------

    def take_output(self) -> tuple[list[Any], list[Any]]:
        """Return and clear ``(completions, followups)``."""
        completions, followups = self.completions, self.followups
        if completions:
            self.completions = []
        if followups:
            self.followups = []
        return completions, followups

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`on_deadline` has work."""
        return self._deadlines.next()

    def take_new_deadline(self) -> float:
        """The earliest deadline set since the last call (``inf`` if none)."""
        return self._deadlines.take_lowest_set()

    def _add_request(self, entry: PendingRequest) -> None:
        """Register ``entry``; keep the cleanup sweep no later than its deadline.

        The engine sees one ``("sweep",)`` deadline for the whole table, not one
        per request: a request whose deadline is later than the next sweep (the
        usual case, with equal timeouts) does not wake the timer thread. The
        sweep expires what is due and moves itself to the earliest deadline left.
        """
        self.requests.add(entry, check=False)
        sweep = self._sweep_at
        if sweep is None or entry.deadline < sweep:
            self._sweep_at = entry.deadline
            self._deadlines.set(("sweep",), entry.deadline)

    @property
    def pending_count(self) -> int:
        """Requests awaiting a reply or queued."""
        return len(self.requests)

    # -- connection lifecycle -----------------------------------------------------------------

    def connection_opened(self, now: float, *, heartbeats: bool = True) -> None:
        """The transport opened: greet, authenticate, then (when ready) resubscribe and flush."""
        self.connected = True
        self.ready = False
        self.close_request = None
        self._auth_failed = False
        self._auth_refusal = None
        self._last_received = now
        self._pong_extensions = 0
        self._ping_id = None
        self._pings = heartbeats
        self.outgoing.extend(self.handler.connect_messages())
        if self.config.ping_interval and heartbeats:
            self._deadlines.set(("ping",), now + self.config.ping_interval)
        if self.credentials is not None:
            auth_id = self.ids.next()
            frame = self.handler.auth_message(auth_id, self.credentials)
            if frame is not None:
                self._auth_id = auth_id
                #: Frames carrying credentials: the runtime never logs their content.
                self.secret_frames = {frame}
                self.outgoing.append(frame)
                self._deadlines.set(("auth",), now + self.config.auth_timeout)
                return
        self._became_ready(now)

    def connection_closed(self, now: float, reason: str = "connection_closed") -> None:
        """The transport closed: fail what was sent (durable requests wait), subscriptions wait."""
        if not self.connected:
            return
        self.connected = False
        self.ready = False
        self.close_request = None
        self._auth_id = None
        self.outgoing.clear()
        for key in (("ping",), ("pong",), ("auth",), ("close",)):
            self._deadlines.cancel(key)
        self._ping_id = None
        self._finish_ping_waiters("lost", None)
        lost, kept = self.requests.connection_lost()
        for entry in lost:
            self._request_lost(entry)
        if kept:
            self._queue.extendleft(_Queued(entry.frame, (entry,)) for entry in reversed(kept) if entry.frame)
        for sub in self.subscriptions:
            self._deadlines.cancel(("resubscribe", sub.topic))
        self.subscriptions.connection_lost()
        self._abandoned.clear()  # the server forgot their subscriptions with the connection

    def shutdown(self) -> None:
        """The client is closing for good: end every wait and forget every subscription."""
        self.connection_closed(0.0, "client_closed")
        for entry in self.requests.clear():
            self._complete(entry, "client_closed", None, None)
        self._queue.clear()
        for sub in self.subscriptions.clear():
            self._fail_waiters(sub, "client_closed", None)
            self._emit(SubscriptionChanged(sub.subscribers, sub.topic, "closed", False, None, None))
        for waiter in self._ready_waiters:
            self.completions.append((waiter, RequestOutcome("client_closed", None, None, "connect", None)))
        self._ready_waiters = []
        self._finish_ping_waiters("client_closed", None)
        self._deadlines.clear()
        self._sweep_at = None

    def add_ready_waiter(self, waiter: Any) -> None:
        """Complete ``waiter`` once connected and authenticated (at once if already)."""
        if self.ready:
            self.completions.append((waiter, RequestOutcome("ok", None, None, "connect", None)))
        elif self._auth_failed:
            self.completions.append((waiter, RequestOutcome("auth_failed", None, self._auth_refusal, "connect", None)))
        else:
            self._ready_waiters.append(waiter)

    def pong_received(self, now: float) -> None:
        """A WebSocket pong arrived (reported by the runtime)."""
        if self._ping_id is not None:
            self._pong(now)

    # -- user operations --------------------------------------------------------------------

    def request(
        self,
        method: str,
        params: Any,
        now: float,
        timeout: float,
        waiter: Any,
        *,
        durable: bool = False,
        scope: TopicRef | None = None,
    ) -> RequestId:
        """Send a request (or queue it until ready); ``waiter`` gets its :class:`RequestOutcome`.

        Raises:
            CapacityError: ``max_pending`` requests are already waiting.
            LocalProtocolError: the handler cannot encode it.

        """
        requests = self.requests
        requests.check_capacity()
        request_id = self.ids.next()
        frame = self.handler.request(request_id, method, params, scope=scope)
        entry = PendingRequest(request_id, "call", method, waiter, now + timeout, frame, durable)
        self._add_request(entry)
        if self.ready and not self._queue:
            entry.sent = True
            self.outgoing.append(frame)
        else:
            self._queue.append(_Queued(frame, (entry,)))
        return request_id

    def notify(self, method: str, params: Any) -> None:
        """Send a message that expects no reply (queued until ready)."""
        frame = self.handler.notification(method, params)
        if self.ready and not self._queue:
            self.outgoing.append(frame)
        else:
            limit = self.config.max_pending
            if limit is not None and len(self._queue) >= limit:
                raise CapacityError(f"{limit} messages are already waiting for the connection")
            self._queue.append(_Queued(frame, ()))

    def batch(self, items: Sequence[tuple[str, Any, Any]], now: float, timeout: float) -> list[RequestId | None]:
        """Send several requests and notifications in one frame.

        Args:
            items: ``(method, params, waiter)``; ``waiter=None`` makes it a notification.
            now: the current time.
            timeout: for every request in it.

        Returns:
            The request ids (``None`` for notifications), in order.

        Raises:
            LocalProtocolError: the protocol has no batches.
            CapacityError: the requests do not fit in ``max_pending``.

        """
        calls = sum(1 for item in items if item[2] is not None)
        self.requests.check_capacity(calls)
        ids = [self.ids.next() if waiter is not None else None for _, _, waiter in items]
        frame = self.handler.batch([(rid, method, params) for rid, (method, params, _) in zip(ids, items)])
        if frame is None:
            raise LocalProtocolError(f"{self.handler.name} has no batches")
        entries = tuple(
            PendingRequest(rid, "call", method, waiter, now + timeout, None)
            for rid, (method, _, waiter) in zip(ids, items)
            if rid is not None
        )
        for entry in entries:
            self._add_request(entry)
        if self.ready and not self._queue:
            self._send_queued(_Queued(frame, entries))
        else:
            self._queue.append(_Queued(frame, entries))
        return ids

    def subscribe(self, topic: str, args: Any, subscriber: Any, now: float, timeout: float, waiter: Any) -> None:
        """Add ``subscriber`` to ``topic``; ``waiter`` completes once the subscription is active.

        The first subscriber of a topic makes the session subscribe; later
        ones share the server subscription. Until the first confirmation the
        wait is bounded by ``timeout``: a refusal or timeout then forgets the
        topic.
        """
        sub, first = self.subscriptions.add(topic, args, subscriber)
        if sub.state == ACTIVE or sub.confirmed_once:
            # Active, or being restored after a reconnect: the subscriber shares it as it is.
            self.completions.append((waiter, RequestOutcome("ok", sub.key, None, "subscribe", None, topic)))
            return
        if waiter is not None:
            sub.waiters.append(waiter)
        if not sub.confirmed_once:
            wait = self._deadlines.get(("subscribe_wait", topic))
            if wait is None or wait < now + timeout:
                self._deadlines.set(("subscribe_wait", topic), now + timeout)
        if first and self.ready:
            self._send_subscribe([sub], now, timeout)

    def subscribe_many(self, topics: Sequence[tuple[str, Any, Any]], now: float, timeout: float, waiter: Any) -> None:
        """Subscribe several ``(topic, args, subscriber)`` at once, sending new topics in batches.

        ``waiter`` completes when all are active (``result``: ``{topic: key}``)
        or with the first failure.
        """
        if not topics:
            self.completions.append((waiter, RequestOutcome("ok", {}, None, "subscribe", None)))
            return
        fresh: list[TopicSubscription] = []
        group = _Group(waiter, len(topics))
        for topic, args, subscriber in topics:
            sub, first = self.subscriptions.add(topic, args, subscriber)
            if sub.state == ACTIVE or sub.confirmed_once:
                group.done(self, topic, "ok", sub.key, None)
                continue
            sub.waiters.append(_GroupMember(group, topic))
            if not sub.confirmed_once:
                self._deadlines.set(("subscribe_wait", topic), now + timeout)
            if first:
                fresh.append(sub)
        if self.ready:
            for chunk in chunked(fresh, self._batch_size):
                self._send_subscribe(list(chunk), now, timeout)

    def unsubscribe(self, topic: str, subscriber: Any, now: float, timeout: float, waiter: Any) -> None:
        """Take ``subscriber`` off ``topic``; the last one out unsubscribes on the server."""
        sub = self.subscriptions.remove_subscriber(topic, subscriber)
        if sub is None:
            self.completions.append((waiter, RequestOutcome("ok", None, None, "unsubscribe", None, topic)))
            return
        self._deadlines.cancel(("resubscribe", topic))
        self._deadlines.cancel(("subscribe_wait", topic))
        self._fail_waiters(sub, "closed", None)
        self._emit(SubscriptionChanged((subscriber,), topic, "closed", False, None, sub.key))
        if sub.state == ACTIVE and self.ready:
            self._send_unsubscribe([sub.ref()], now, timeout, waiter)
        else:
            # Still subscribing: a late confirmation is answered with an unsubscribe.
            self.completions.append((waiter, RequestOutcome("ok", None, None, "unsubscribe", None, topic)))

    def ping(self, now: float, timeout: float, waiter: Any) -> None:
        """Measure a round trip: ``waiter`` gets the RTT in seconds as its result."""
        if not self.connected:
            self.completions.append((waiter, RequestOutcome("lost", None, None, "ping", None)))
            return
        self._ping_waiters.append(waiter)
        if self._ping_id is None and not self._send_ping(now):
            self._finish_ping_waiters("ok", None)  # the protocol has no pings
            return
        self._deadlines.set(("ping_wait",), now + timeout)

    # -- incoming -----------------------------------------------------------------------------

    def receive(self, incoming: Incoming, now: float) -> None:
        """Route one classified message."""
        self._last_received = now
        if self.emit_raw:
            self._emit(RawReceived(incoming.message))
        if self._auth_id is not None and self._authenticating(incoming, now):
            return
        kind = incoming.kind
        if kind is _REPLY:
            self._reply(incoming, now)
        elif kind is _UPDATE:
            self._update(incoming)
        elif kind is FrameKind.BATCH:
            for part in incoming.parts:
                self.receive(part, now)
        elif kind is FrameKind.NOTIFICATION:
            self._emit(NotificationReceived(incoming.topic, incoming.data, incoming.message))
            self._maybe_reconnect(incoming, now)
        elif kind is FrameKind.PING:
            pong = self.handler.pong(incoming)
            if pong is not None and self.connected:
                self.outgoing.append(pong)
        elif kind is FrameKind.PONG:
            if self._ping_id is not None:
                self._pong(now)
        elif kind is FrameKind.CONTROL:
            self._control(incoming, now)
        elif kind is FrameKind.INVALID:
            self._invalid(incoming)
        else:
            self.counters["unknown_messages"] += 1
            self._maybe_reconnect(incoming, now)

    def protocol_error(self, error: RemoteProtocolError) -> None:
        """Count a frame that broke the protocol and report it."""
        self.counters["protocol_errors"] += 1
        self._emit(ProtocolErrorReported(error))

    # -- deadlines ----------------------------------------------------------------------------

    def on_deadline(self, now: float) -> None:
        """Act on every deadline that has passed."""
        for key in self._deadlines.due(now):
            kind = key[0]
            if kind == "sweep":
                self._sweep(now)
            elif kind == "ping":
                self._send_ping(now)
            elif kind == "pong":
                self._pong_timed_out(now)
            elif kind == "subscribe_wait":
                self._subscribe_wait_expired(key[1])
            elif kind == "resubscribe":
                sub = self.subscriptions.get(key[1])
                if sub is not None and sub.state == FAILED and self.ready:
                    self._send_subscribe([sub], now, self.config.subscribe_timeout)
            elif kind == "ping_wait":
                self._finish_ping_waiters("timeout", None)
            elif kind == "auth":
                if self._auth_id is not None and self.connected:
                    self._auth_id = None
                    self.close_request = "auth_timeout"
            elif kind == "close" and self.connected:
                self.close_request = self._reconnect_reason or "reconnect_requested"

    def _sweep(self, now: float) -> None:
        """Fail the requests whose deadline passed; schedule the next sweep at the earliest one left."""
        for entry in self.requests.expire(now):
            self._request_timed_out(entry, now)
        following = self.requests.next_deadline()
        self._sweep_at = following
        if following is not None:
            self._deadlines.set(("sweep",), following)

    # -- internals: sending -----------------------------------------------------------------------

    def _became_ready(self, now: float) -> None:
        self.ready = True
        self._auth_id = None
        self._deadlines.cancel(("auth",))
        for waiter in self._ready_waiters:
            self.completions.append((waiter, RequestOutcome("ok", None, None, "connect", None)))
        self._ready_waiters = []
        due = self.subscriptions.due()
        for chunk in chunked(due, self._batch_size):
            self._send_subscribe(list(chunk), now, self.config.subscribe_timeout)
        queue = self._queue
        while queue and self.ready:
            self._send_queued(queue.popleft())

    def _send_queued(self, item: _Queued) -> None:
        entries = item.entries
        if entries:
            live = [entry for entry in entries if self.requests.get(entry.request_id) is entry]
            if not live:
                return  # every request in it timed out while queued
            for entry in live:
                entry.sent = True
        self.outgoing.append(item.frame)

    def _send_subscribe(self, subs: list[TopicSubscription], now: float, timeout: float) -> None:
        handler = self.handler
        refs = [sub.ref() for sub in subs]
        if handler.request_id_per_topic:
            ids: list[RequestId] = [self.ids.next() for _ in subs]
        else:
            ids = [self.ids.next()]
        try:
            frame = handler.subscribe(ids, refs)
        except LocalProtocolError as exc:
            for sub in subs:
                self._subscription_failed(sub, exc, now)
            return
        for sub in subs:
            sub.state = SUBSCRIBING
        self.outgoing.append(frame)
        mode = handler.subscription_confirmation
        if mode == "none":
            for sub, ref in zip(subs, refs):
                self._subscription_confirmed(sub, SubscribeResult(True, ref.topic))
            return
        if mode == "control" and not handler.request_id_per_topic:
            # Confirmed topic by topic by control messages; the request entry only times it out.
            entry = PendingRequest(ids[0], "subscribe", "subscribe", None, now + timeout, frame, sent=True)
            entry.context = subs
            self._add_request(entry)
            return
        groups = [[sub] for sub in subs] if handler.request_id_per_topic else [subs]
        for request_id, group in zip(ids, groups):
            entry = PendingRequest(request_id, "subscribe", "subscribe", None, now + timeout, frame, sent=True)
            entry.context = group
            self._add_request(entry)

    def _send_unsubscribe(self, refs: list[TopicRef], now: float, timeout: float, waiter: Any) -> None:
        handler = self.handler
        ids: list[RequestId] = [self.ids.next() for _ in refs] if handler.request_id_per_topic else [self.ids.next()]
        topic = refs[0].topic if refs else None
        try:
            frame = handler.unsubscribe(ids, refs)
        except LocalProtocolError:
            frame = None
        if frame is None:
            self.completions.append((waiter, RequestOutcome("ok", None, None, "unsubscribe", None, topic)))
            return
        self.outgoing.append(frame)
        if handler.subscription_confirmation != "reply":
            self.completions.append((waiter, RequestOutcome("ok", None, None, "unsubscribe", ids[0], topic)))
            return
        for index, request_id in enumerate(ids):
            entry = PendingRequest(
                request_id, "unsubscribe", "unsubscribe", waiter if index == 0 else None, now + timeout, frame
            )
            entry.sent = True
            entry.topic = topic
            self._add_request(entry)

    def _send_ping(self, now: float) -> bool:
        if not self.connected or self._ping_id is not None:
            return self._ping_id is not None
        ping_id = self.ids.next()
        frame = self.handler.ping(ping_id)
        if frame is None:
            return False
        self._ping_id = ping_id
        self._ping_sent_at = now
        self.outgoing.append(frame)
        timeout = self.config.pong_timeout or self.config.ping_interval or 30.0
        self._deadlines.set(("pong",), now + timeout)
        return True

    # -- internals: incoming ------------------------------------------------------------------

    def _authenticating(self, incoming: Incoming, now: float) -> bool:
        """Offer ``incoming`` to the auth check; ``True`` if it was the answer."""
        auth_id = self._auth_id
        assert auth_id is not None
        verdict = self.handler.auth_result(incoming, auth_id)
        if verdict is None:
            return False
        self._auth_id = None
        self._deadlines.cancel(("auth",))
        if verdict:
            self._emit(Authenticated(True, incoming.data))
            self._became_ready(now)
            return True
        self._auth_failed = True
        response = incoming.error if incoming.error is not None else incoming.data
        self._auth_refusal = response
        self._emit(Authenticated(False, response))
        for waiter in self._ready_waiters:
            self.completions.append((waiter, RequestOutcome("auth_failed", None, response, "connect", None)))
        self._ready_waiters = []
        # Nothing was sent yet, and nothing will be on this connection.
        self._queue.clear()
        for entry in self.requests.clear():
            self._complete(entry, "auth_failed", None, response)
        for sub in self.subscriptions:
            if not sub.confirmed_once:
                self._fail_waiters(sub, "auth_failed", response)
        return True

    def _reply(self, incoming: Incoming, now: float) -> None:
        request_id = incoming.request_id
        entry = self.requests.pop(request_id) if request_id is not None else None
        if entry is None:
            abandoned = self._abandoned.pop(request_id, None) if request_id is not None else None
            if abandoned is not None:
                self._late_subscribe_answer(abandoned, incoming, now)
            elif request_id == self._ping_id and request_id is not None:
                self._pong(now)
            elif incoming.error is not None:
                self.counters["errors_received"] += 1
                self._emit(ErrorReceived(incoming.error, incoming.message))
            else:
                self.counters["unknown_replies"] += 1
            return
        kind = entry.kind
        if kind == "call":
            if incoming.error is not None:
                self._complete(entry, "error", None, incoming.error)
            else:
                self._complete(entry, "ok", incoming.data, None)
        elif kind == "subscribe":
            self._subscribe_answered(entry.context, incoming, now)
        elif kind == "unsubscribe":
            if incoming.error is not None:
                self._complete(entry, "error", None, incoming.error)
            else:
                self._complete(entry, "ok", incoming.data, None)

    def _update(self, incoming: Incoming) -> None:
        key = incoming.topic
        sub = self.subscriptions.route(key) if key is not None else None
        if sub is None:
            # Counted, reported once per name, and delivered as a notification under its name.
            self.counters["unroutable"] += 1
            name = incoming.name if incoming.name is not None else key
            reported = self._unroutable_names
            if name not in reported and len(reported) < _MAX_UNROUTABLE_REPORTS:
                reported.add(name)
                self._emit(UnroutableUpdate(name, key))
            self._emit(NotificationReceived(name, incoming.data, incoming.message))
            return
        self._emit(UpdateReceived(sub.subscribers, sub.topic, incoming.data, incoming.message))

    def _control(self, incoming: Incoming, now: float) -> None:
        topic = incoming.topic
        if topic is not None and self.handler.subscription_confirmation == "control":
            sub = self.subscriptions.get(topic)
            if sub is not None and sub.state == SUBSCRIBING:
                (result,) = self.handler.subscribe_results([sub.ref()], incoming)
                self._apply_result(sub, result, now)
                self._forget_answered_control_requests(sub)
                return
        if incoming.request_id is not None and incoming.request_id in self.requests:
            self._reply(incoming._replace(kind=_REPLY), now)
            return
        self._maybe_reconnect(incoming, now)

    def _invalid(self, incoming: Incoming) -> None:
        error = incoming.error
        if not isinstance(error, RemoteProtocolError):
            error = RemoteProtocolError(str(error))
        self.protocol_error(error)
        request_id = incoming.request_id
        entry = self.requests.pop(request_id) if request_id is not None else None
        if entry is not None and entry.kind == "call":
            self._complete(entry, "invalid", None, error)

    def _maybe_reconnect(self, incoming: Incoming, now: float) -> None:
        reason = self.handler.reconnect_reason(incoming)
        if reason and self.connected:
            # The engine acts on close_request from its timer: make it due now.
            self._reconnect_reason = reason
            self._deadlines.set(("close",), now)

    # -- internals: subscriptions ---------------------------------------------------------------

    def _subscribe_answered(self, subs: list[TopicSubscription], incoming: Incoming, now: float) -> None:
        results = list(self.handler.subscribe_results([sub.ref() for sub in subs], incoming))
        if len(results) != len(subs):
            error = RemoteProtocolError(f"{len(results)} subscribe results for {len(subs)} topics")
            results = [SubscribeResult(False, None, error)] * len(subs)
        for sub, result in zip(subs, results):
            self._apply_result(sub, result, now)

    def _apply_result(self, sub: TopicSubscription, result: SubscribeResult, now: float) -> None:
        wanted = self.subscriptions.get(sub.topic) is sub
        if not wanted:
            if result.ok and self.ready:
                # Abandoned while subscribing: undo it on the server.
                self.counters["late_subscriptions_undone"] += 1
                self._send_unsubscribe([TopicRef(sub.topic, sub.args, result.key)], now, 5.0, None)
            return
        if sub.state != SUBSCRIBING:
            return
        if result.ok:
            self._subscription_confirmed(sub, result)
        else:
            self._subscription_failed(sub, result.error, now)

    def _late_subscribe_answer(self, refs: list[TopicRef], incoming: Incoming, now: float) -> None:
        """A subscribe request that timed out was answered after all.

        A resubscription still waiting to be retried adopts the answer; any
        other confirmed subscription is nobody's any more and is undone on
        the server (as a Phoenix client leaves a channel whose join timed out).
        """
        results = list(self.handler.subscribe_results(refs, incoming))
        for ref, result in zip(refs, results):
            if not result.ok:
                continue
            sub = self.subscriptions.get(ref.topic)
            if sub is not None and sub.state == FAILED and sub.args == ref.args:
                self.counters["late_subscriptions_adopted"] += 1
                self._subscription_confirmed(sub, result)
            elif self.ready:
                self.counters["late_subscriptions_undone"] += 1
                self._send_unsubscribe([TopicRef(ref.topic, ref.args, result.key)], now, 5.0, None)

    def _subscription_confirmed(self, sub: TopicSubscription, result: SubscribeResult) -> None:
        resubscribed = sub.confirmed_once
        sub.state = ACTIVE
        sub.confirmed_once = True
        sub.attempt = 0
        self.subscriptions.set_key(sub, result.key if result.key is not None else sub.topic)
        self._deadlines.cancel(("subscribe_wait", sub.topic))
        self._deadlines.cancel(("resubscribe", sub.topic))
        waiters, sub.waiters = sub.waiters, []
        for waiter in waiters:
            self._finish_sub_waiter(waiter, sub.topic, "ok", sub.key, None)
        self._emit(SubscriptionChanged(sub.subscribers, sub.topic, ACTIVE, resubscribed, None, sub.key))

    def _subscription_failed(self, sub: TopicSubscription, error: Any, now: float) -> None:
        if not sub.confirmed_once:
            # The first subscribe was refused: it never existed.
            self.subscriptions.discard(sub)
            self._deadlines.cancel(("subscribe_wait", sub.topic))
            self._fail_waiters(sub, "timeout" if error == "timeout" else "error", error)
            self._emit(SubscriptionChanged(sub.subscribers, sub.topic, FAILED, False, error, None))
            return
        sub.state = FAILED
        self.counters["resubscribe_failures"] += 1
        self._emit(SubscriptionChanged(sub.subscribers, sub.topic, FAILED, True, error, None))
        sub.attempt += 1
        delay = self.config.resubscribe.delay(sub.attempt, self._rng)
        if delay is not None:
            self._deadlines.set(("resubscribe", sub.topic), now + delay)

    def _subscribe_wait_expired(self, topic: str) -> None:
        sub = self.subscriptions.get(topic)
        if sub is None or sub.confirmed_once:
            return
        self.subscriptions.discard(sub)
        self._fail_waiters(sub, "timeout", None)
        self._emit(SubscriptionChanged(sub.subscribers, sub.topic, FAILED, False, "timeout", None))

    def _forget_answered_control_requests(self, sub: TopicSubscription) -> None:
        for entry in self.requests.values():
            if entry.kind == "subscribe" and sub in entry.context:
                if all(s.state != SUBSCRIBING or s is sub for s in entry.context):
                    self.requests.pop(entry.request_id)
                return

    def _fail_waiters(self, sub: TopicSubscription, status: str, error: Any) -> None:
        waiters, sub.waiters = sub.waiters, []
        for waiter in waiters:
            self._finish_sub_waiter(waiter, sub.topic, status, None, error)

    def _finish_sub_waiter(self, waiter: Any, topic: str, status: str, key: Any, error: Any) -> None:
        if type(waiter) is _GroupMember:
            waiter.group.done(self, topic, status, key, error)
        else:
            self.completions.append((waiter, RequestOutcome(status, key, error, "subscribe", None, topic)))

    # -- internals: timeouts and endings ----------------------------------------------------------

    def _request_timed_out(self, entry: PendingRequest, now: float) -> None:
        kind = entry.kind
        if kind == "subscribe":
            subs: list[TopicSubscription] = entry.context
            if self.handler.subscription_confirmation == "reply" and self.connected:
                abandoned = self._abandoned
                if len(abandoned) >= _MAX_ABANDONED:
                    del abandoned[next(iter(abandoned))]
                abandoned[entry.request_id] = [sub.ref() for sub in subs]
            for sub in subs:
                if self.subscriptions.get(sub.topic) is sub and sub.state == SUBSCRIBING:
                    self._subscription_failed(sub, "timeout", now)
            return
        # A queued entry that timed out stays in the queue: sending skips it (it is no longer pending).
        self.counters["request_timeouts"] += kind == "call"
        self._complete(entry, "timeout", None, None)

    def _request_lost(self, entry: PendingRequest) -> None:
        kind = entry.kind
        if kind == "subscribe":
            return  # the subscriptions themselves are reset to "new"
        if kind == "unsubscribe":
            self._complete(entry, "ok", None, None)  # the server forgot it with the connection
            return
        self._complete(entry, "lost", None, None)

    def _complete(self, entry: PendingRequest, status: str, result: Any, error: Any) -> None:
        if entry.waiter is not None:
            self.completions.append(
                (entry.waiter, RequestOutcome(status, result, error, entry.method, entry.request_id, entry.topic))
            )

    def _pong(self, now: float) -> None:
        self._ping_id = None
        self._pong_extensions = 0
        rtt = now - self._ping_sent_at
        self.last_heartbeat_rtt = rtt
        self.counters["heartbeat_replies"] += 1
        self._deadlines.cancel(("pong",))
        if self.config.ping_interval and self._pings:
            self._deadlines.set(("ping",), now + self.config.ping_interval)
        self._finish_ping_waiters("ok", rtt)
        self._emit(PongReceived(rtt))

    def _finish_ping_waiters(self, status: str, rtt: float | None) -> None:
        self._deadlines.cancel(("ping_wait",))
        waiters, self._ping_waiters = self._ping_waiters, []
        for waiter in waiters:
            self.completions.append((waiter, RequestOutcome(status, rtt, None, "ping", None)))

    def _pong_timed_out(self, now: float) -> None:
        if self._ping_id is None or not self.connected:
            return
        timeout = self.config.pong_timeout or self.config.ping_interval or 30.0
        if self.heartbeat_timeout_suspended:
            self._deadlines.set(("pong",), now + timeout)
            return
        if now - self._last_received < timeout and self._pong_extensions < _MAX_PONG_EXTENSIONS:
            # Frames keep arriving: the pong is likely queued behind them.
            self._pong_extensions += 1
            self._deadlines.set(("pong",), now + timeout)
            return
        self._ping_id = None
        self.counters["heartbeat_timeouts"] += 1
        self.close_request = "heartbeat_timeout"


class _Group:
    """One waiter for several topics (``subscribe_many``)."""

    __slots__ = ("error", "keys", "remaining", "status", "waiter")

    def __init__(self, waiter: Any, count: int) -> None:
        self.waiter = waiter
        self.remaining = count
        self.keys: dict[str, Any] = {}
        self.status: str | None = None
        self.error: Any = None

    def done(self, session: HandlerSession, topic: str, status: str, key: Any, error: Any) -> None:
        if self.status is not None:
            return
        if status != "ok":
            self.status, self.error = status, error
            session.completions.append((self.waiter, RequestOutcome(status, None, error, "subscribe", None, topic)))
            return
        self.keys[topic] = key
        self.remaining -= 1
        if self.remaining <= 0:
            self.status = "ok"
            session.completions.append((self.waiter, RequestOutcome("ok", self.keys, None, "subscribe", None)))


class _GroupMember(NamedTuple):
    group: _Group
    topic: str


def _batch_size(configured: int, limit: int | None) -> int:
    size = max(1, configured)
    return size if limit is None else max(1, min(size, limit))
