"""Channel: join a topic, push and wait for replies, receive events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar, cast, overload

from maxsdk import signals
from maxsdk._runtime.shards import is_cap_refusal
from maxsdk._runtime.threads import call_user_code
from maxsdk.config import check_seconds
from maxsdk.errors import (
    ChannelClosedError,
    ClientClosedError,
    ConfigurationError,
    JoinError,
    JoinTimeoutError,
    NotConnectedError,
    RemoteProtocolError,
    ReplyTimeoutError,
)
from maxsdk.models import ModelError, decode_versioned, to_payload
from maxsdk.presence import Presence
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState
from maxsdk.protocol.phoenix.events import ChannelStateChanged
from maxsdk.recovery import ChannelRecovery, Discontinuity, Position, Recovery, StreamEvent
from maxsdk.reply import PendingReply, Reply
from maxsdk.state_view import StateView
from maxsdk.stats import ChannelStats

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine
    from maxsdk._runtime.phoenix_driver import PhoenixDriver
    from maxsdk.client import Client
    from maxsdk.stream import Expectation, MessageStream

__all__ = ["Channel"]

log = logging.getLogger("maxsdk.channel")

Handler = Callable[[Any], Any]
AnyHandler = Callable[[str, Any], Any]
Predicate = Callable[[Any], bool]
F = TypeVar("F", bound=Callable[..., Any])
_INVALID = object()


class _Binding(NamedTuple):
    ref: int
    handler: Handler
    model: type | None
    where: Predicate | None


class _AnyBinding(NamedTuple):
    ref: int
    handler: AnyHandler
    events: frozenset[str] | None
    where: Callable[[str, Any], bool] | None


class Channel:
    """One topic on a client's socket.

    Create with :meth:`Client.channel` (or :meth:`Client.join`, which also
    joins). Every method is safe to call from any thread. Handlers run off
    the reader, in arrival order, on the channel's own queue: a slow handler
    here never delays another channel's events nor any reply (see
    :meth:`Client.channel` for the queue's bound, overflow policy and the
    opt-in dedicated thread).

    Attributes:
        topic: the channel topic, e.g. ``"room:lobby"``.
        params: the join payload: a mapping, a dataclass, or a zero-argument
            callable returning one (called again for every rejoin).
        timeout: default timeout in seconds for join, push and leave.
        message_hook: optional ``hook(event, payload) -> payload`` run before
            the handlers of every event (it may transform the payload).

    """

    def __init__(
        self,
        client: Client,
        engine: Engine,
        topic: str,
        params: Any,
        timeout: float,
        *,
        queue_size: int | None = None,
        overflow: str | None = None,
        dedicated_thread: bool = False,
        recover: Any = None,
        recover_store: Any = None,
    ) -> None:
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError("topic must be a non-empty string")
        if queue_size is not None and (type(queue_size) is not int or queue_size < 1):
            raise ConfigurationError("queue_size must be a positive int or None")
        if overflow is not None and overflow not in ("block", "drop_oldest", "drop_newest"):
            raise ConfigurationError("overflow must be one of block, drop_oldest, drop_newest (or None)")
        self.topic = topic
        self.params = params
        self.timeout = timeout
        self.message_hook: Callable[[str, Any], Any] | None = None
        self._client = client
        self._engine = engine
        self._serializer = cast("PhoenixDriver", engine.driver).serializer
        self._core = ChannelCore(topic, self, timeout)
        self._lane_options = (queue_size, overflow, dedicated_thread)
        self._lane = self._make_lane(engine)
        self._bindings: dict[str, tuple[_Binding, ...]] = {}
        self._any: tuple[_AnyBinding, ...] = ()
        self._binding_lock = threading.Lock()
        self._binding_refs = 0
        self._state_cond = threading.Condition(threading.Lock())
        self._close_watchers: list[Callable[[], None]] = []
        self.join_response: Any = None
        self._join_waiter: PendingReply | None = None
        #: Who is online on this channel (fed by ``presence_state``/``presence_diff``).
        self.presence = Presence(self)
        config = Recovery.coerce(recover, recover_store)
        self._recovery = None if config is None else ChannelRecovery(self, config)
        if self._recovery is not None:
            self._deliver = self._recovery.deliver  # type: ignore[method-assign]

    # -- state -------------------------------------------------------------------

    @property
    def state(self) -> ChannelState:
        """The channel's state (``closed``, ``joining``, ``joined``, ``leaving``, ``errored``)."""
        return self._core.state

    @property
    def joined(self) -> bool:
        """Whether the channel is joined right now."""
        return self._core.state is ChannelState.JOINED

    @property
    def join_ref(self) -> str | None:
        """The join_ref of the current incarnation (changes on every rejoin)."""
        return self._core.join_ref

    def _make_lane(self, engine: Engine) -> Any:
        queue_size, overflow, dedicated_thread = self._lane_options
        return engine.dispatch_lane(
            self.topic,
            queue_size=queue_size,
            overflow=overflow,  # type: ignore[arg-type]
            dedicated_thread=dedicated_thread,
        )

    def _move_to(self, engine: Engine) -> None:
        """Put this (closed) channel on another socket of the client (sharding)."""
        if engine is not self._engine:
            self._engine = engine
            self._lane = self._make_lane(engine)

    def stats(self) -> ChannelStats:
        """The channel's dispatch counters: queued, handled, dropped (see :class:`~maxsdk.ChannelStats`)."""
        self._client._check_process()
        lane = self._lane
        return ChannelStats(
            topic=self.topic,
            queued=lane.depth,
            handled=lane.handled,
            dropped=lane.dropped_total,
            max_queued=lane.max_depth,
            queue_size=lane.maxsize,
            overflow=lane.overflow,
            dedicated_thread=lane.dedicated is not None,
        )

    # -- join / leave --------------------------------------------------------------

    def join(self, timeout: float | None = None) -> Channel:
        """Join the topic and block until the server accepts.

        Connects the client first if it was never started. If the channel is
        already joining or errored (rejoining), waits for it to be joined.

        Args:
            timeout: seconds to wait (default: the channel's timeout). Also
                becomes the channel's default timeout, as in phoenix.js.

        Returns:
            The channel itself; the server's response is in :attr:`join_response`.

        Raises:
            JoinError: the server refused (``.reason`` and ``.response`` tell why).
            JoinTimeoutError: no reply in time (the channel is left and closed).
            ClientClosedError: the client is closed.

        """
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        self.timeout = timeout
        self._engine.check_blocking_allowed()
        self._client._ensure_started()
        state = self._core.state
        if state is ChannelState.JOINED:
            return self
        if state in (ChannelState.JOINING, ChannelState.ERRORED):
            waiter = self._join_waiter
            if waiter is not None and not waiter.done():
                return self._join_result(self._sharded_outcome(waiter, timeout), timeout)
            return self._wait_joined(timeout)
        return self._join_result(self._sharded_outcome(self._start_join(timeout), timeout), timeout)

    def _sharded_outcome(self, waiter: PendingReply, timeout: float) -> Any:
        """Wait for a join's outcome; a refusal for the server's channel cap is retried on another socket."""
        return self._retry_on_cap(waiter.wait_outcome(timeout + 1.0), timeout)

    def _retry_on_cap(self, outcome: Any, timeout: float) -> Any:
        """Join again on another socket while the server refuses for its per-socket channel cap."""
        shards = self._client._shards
        attempts = 0
        while outcome.status == "error" and is_cap_refusal(outcome.response) and shards.max_channels is not None:
            attempts += 1
            if attempts > 3 or self._core.state is not ChannelState.CLOSED:
                break
            shards.refused(self._engine)
            outcome = self._start_join(timeout).wait_outcome(timeout + 1.0)
        return outcome

    def join_nowait(self, timeout: float | None = None) -> Channel:
        """Start joining and return the channel at once (phoenix.js's ``channel.join()``).

        Pushes made meanwhile are buffered and sent, in order, once the
        channel is joined (each still times out from its own call); handlers
        can be bound before any event arrives. Connects the client in the
        background if it was never started. :meth:`wait_joined` blocks for
        the outcome; a refusal or a timeout closes the channel and fails the
        buffered pushes with :class:`ChannelClosedError`, as :meth:`join`
        would have raised.

        Args:
            timeout: seconds for the join (default: the channel's timeout);
                also becomes the channel's default timeout.

        Returns:
            The channel itself (``state`` is ``joining`` until the server answers).

        """
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        self.timeout = timeout
        client = self._client
        client._check_process()
        if client.closed:
            raise ClientClosedError("the client is closed")
        if not client._started:
            client.connect_nowait()
        if self._core.state in (ChannelState.CLOSED, ChannelState.LEAVING):
            self._start_join(timeout)
        return self

    def wait_joined(self, timeout: float | None = None) -> Channel:
        """Block until the channel is joined; raise as :meth:`join` if the join failed.

        Args:
            timeout: seconds to wait (default: the channel's timeout). A wait
                that gives up sooner than the join raises
                :class:`JoinTimeoutError` and leaves the join going on.

        Raises:
            JoinError: the server refused the join.
            JoinTimeoutError: not joined in time.
            ChannelClosedError: the channel was closed (left, or never joined).
            ClientClosedError: the client is closed.

        """
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        self._engine.check_blocking_allowed()
        waiter = self._join_waiter
        if waiter is not None:
            try:
                outcome = waiter.wait_outcome(timeout)
            except ReplyTimeoutError:
                raise JoinTimeoutError(self.topic, timeout) from None
            outcome = self._retry_on_cap(outcome, waiter.timeout)
            if outcome.status != "ok" or self._core.state is ChannelState.JOINED:
                return self._join_result(outcome, waiter.timeout)
            # Joined once, dropped since: wait for the rejoin below.
        state = self._core.state
        if state is ChannelState.JOINED:
            return self
        if state in (ChannelState.JOINING, ChannelState.ERRORED):
            return self._wait_joined(timeout)
        raise ChannelClosedError(f"channel {self.topic!r} is {state}", topic=self.topic)

    def _start_join(self, timeout: float) -> PendingReply:
        payload = self._serializer.encode_payload(self._join_params())
        shards = self._client._shards
        with shards.lock:  # placed and registered at once: two joins cannot take the last place
            if self._core.state is ChannelState.CLOSED:
                self._move_to(shards.place())
            waiter = PendingReply(self._engine, self.topic, "phx_join", timeout)
            self._join_waiter = waiter
            self._core.timeout = timeout
            self._engine.run(lambda session, now: session.join(self._core, payload, now, timeout, waiter))
        return waiter

    def _join_result(self, outcome: Any, timeout: float) -> Channel:
        if outcome.status == "ok":
            self.join_response = outcome.response
            return self
        if outcome.status == "timeout":
            raise JoinTimeoutError(self.topic, timeout)
        if outcome.status == "client_closed":
            raise ClientClosedError("the client was closed while joining")
        if outcome.status == "closed":
            raise ChannelClosedError(f"channel {self.topic!r} was closed while joining", topic=self.topic)
        raise JoinError(self.topic, outcome.response)

    def _wait_joined(self, timeout: float) -> Channel:
        with self._engine.blocking_wait(), self._state_cond:
            if not self._state_cond.wait_for(
                lambda: self._core.state is not ChannelState.JOINING and self._core.state is not ChannelState.ERRORED,
                timeout,
            ):
                raise JoinTimeoutError(self.topic, timeout)
        if self._core.state is not ChannelState.JOINED:
            raise ChannelClosedError(f"channel {self.topic!r} is {self._core.state}", topic=self.topic)
        return self

    def leave(self, timeout: float | None = None) -> None:
        """Leave the topic: send ``phx_leave`` and wait for the reply (or the timeout).

        Pushes still buffered fail with :class:`ChannelClosedError`. A left
        channel is never rejoined by a reconnect; calling :meth:`join` again
        starts a new incarnation.
        """
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        self._engine.check_blocking_allowed()
        waiter = PendingReply(self._engine, self.topic, "phx_leave", timeout)
        engine = self._engine
        engine.run(lambda session, now: session.leave(self._core, now, timeout, waiter))
        try:
            waiter.wait_outcome(timeout + 1.0)
        except ClientClosedError:
            pass
        self._client._shards.retire_if_idle(engine)

    def _join_params(self) -> Any:
        params = call_user_code(self.params) if callable(self.params) else self.params
        params = to_payload(params)
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ConfigurationError(f"join params for {self.topic!r} must be a mapping, got {type(params).__name__}")
        params = dict(params)
        if self._recovery is not None:
            params[self._recovery.config.param] = self._recovery.join_param()
        return params

    # -- push ---------------------------------------------------------------------

    def push(self, event: str, payload: Any = None, timeout: float | None = None) -> Reply:
        """Push ``event`` and block until the reply.

        Args:
            event: the event name (``phx_*`` names are reserved).
            payload: a JSON value (default ``{}``), a dataclass, or ``bytes``
                (sent as a binary frame; the reply's response is then ``bytes`` too).
            timeout: seconds to wait (default: the channel's timeout). The
                timeout runs from now, even while the push waits for a join.

        Returns:
            The :class:`Reply` (status ``"ok"`` or a custom status).

        Raises:
            ReplyError: the server replied ``"error"`` (the reply is attached).
            ReplyTimeoutError: no reply in time (:class:`ReplyLostError` if the
                connection or channel dropped after the push was sent).
            ChannelClosedError: the channel is closed (never joined, or left).
            LocalProtocolError: the payload cannot be sent (not JSON, binary limits).

        """
        return self.push_nowait(event, payload, timeout).wait()

    def send(
        self,
        event: str,
        payload: Any = None,
        *,
        priority: str | int = "normal",
        ttl: float | None = None,
        key: str | None = None,
    ) -> str:
        """Send ``event`` durably through the client's outbox; return its idempotency key.

        The message is on disk before this returns, online or not; it is
        pushed when this channel is joined and removed only after an ``ok``
        reply (at-least-once; see :mod:`maxsdk.outbox` for the guarantees).
        The key is added to the payload (field ``idempotency_key`` by default)
        so the server can drop duplicates.

        Args:
            event: the event name.
            payload: a JSON object (mapping or dataclass).
            priority: ``"high"``, ``"normal"`` or ``"low"``.
            ttl: seconds after which an undelivered message is dropped and
                reported (``outbox_expired``); ``None`` = never.
            key: your own idempotency key (default: a new sortable unique key).

        Raises:
            ConfigurationError: the client has no outbox, or the payload is not an object.
            OutboxFullError: the outbox is full (nothing is ever dropped to make room).
            OutboxStorageError: the disk refused; the message was not accepted.

        """
        outbox = self._client.outbox
        if outbox is None:
            raise ConfigurationError("durable sends need a client created with outbox=<directory>")
        if not isinstance(event, str) or not event:
            raise ConfigurationError("event must be a non-empty string")
        self._client._check_process()
        return outbox.put(self.topic, event, payload, priority=priority, ttl=ttl, key=key)

    def send_many(
        self,
        messages: Iterable[tuple[str, Any]],
        *,
        priority: str | int = "normal",
        ttl: float | None = None,
    ) -> list[str]:
        """Durably send several ``(event, payload)`` messages at once (one disk flush); return their keys.

        Same guarantees as :meth:`send`; all of the batch is stored, or none.
        """
        outbox = self._client.outbox
        if outbox is None:
            raise ConfigurationError("durable sends need a client created with outbox=<directory>")
        self._client._check_process()
        return outbox.put_many(self.topic, messages, priority=priority, ttl=ttl)

    def push_nowait(self, event: str, payload: Any = None, timeout: float | None = None) -> PendingReply:
        """Push without waiting; return a :class:`PendingReply` to wait on later.

        Raises the same errors as :meth:`push` for problems detectable at once.
        """
        if not isinstance(event, str) or not event:
            raise ConfigurationError("event must be a non-empty string")
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        engine = self._engine
        encoded = self._serializer.encode_payload({} if payload is None else to_payload(payload))
        if isinstance(encoded, bytes):
            self._serializer.check_binary_fields(self.topic, event)
        client = self._client
        client._check_process()
        if client.closed:
            raise ClientClosedError("the client is closed")
        if client.config.offline == "raise" and not client.connected:
            raise NotConnectedError(
                f"not connected ({client.state}); push of {event!r} refused", url=engine.redacted_url
            )
        waiter = PendingReply(engine, self.topic, event, timeout)
        waiter.ref = engine.push(self._core, event, encoded, timeout, waiter)
        return waiter

    # -- handlers ---------------------------------------------------------------

    @overload
    def on(
        self, event: str | Iterable[str], *, model: type | None = None, where: Predicate | None = None
    ) -> Callable[[F], F]: ...

    @overload
    def on(
        self,
        event: str | Iterable[str],
        handler: Handler,
        *,
        model: type | None = None,
        where: Predicate | None = None,
    ) -> int: ...

    def on(
        self,
        event: str | Iterable[str],
        handler: Handler | None = None,
        *,
        model: type | None = None,
        where: Predicate | None = None,
    ) -> int | Callable[[F], F]:
        """Call ``handler(payload)`` for every ``event`` on this channel.

        Usable as a call (returns a ref for :meth:`off`) or as a decorator
        (``@channel.on("new_msg")``, returns the function unchanged).
        ``phx_error`` and ``phx_close`` from the server can be bound too.

        Args:
            event: an event name, or several (a set or list).
            handler: the callable; it runs on the dispatcher thread.
            model: a dataclass to decode the payload into (dataclasses-json
                or plain ``@dataclass``, schema versions upgraded — see
                :mod:`maxsdk.models`). A payload that does not fit never
                reaches the handler; it is logged and reported through the
                ``payload_invalid`` signal.
            where: a predicate on the (raw) payload; the handler only sees
                payloads for which it returns true.

        """
        events = _events(event)
        if handler is None:

            def decorator(fn: F) -> F:
                self.on(events, fn, model=model, where=where)
                return fn

            return decorator
        if not callable(handler):
            raise ConfigurationError("handler must be callable")
        _check_model(model)
        with self._binding_lock:
            ref = self._next_ref()
            binding = _Binding(ref, handler, model, where)
            bindings = dict(self._bindings)
            for name in events:
                bindings[name] = (*bindings.get(name, ()), binding)
            self._bindings = bindings
        return ref

    def on_any(
        self,
        handler: AnyHandler,
        *,
        events: Iterable[str] | None = None,
        where: Callable[[str, Any], bool] | None = None,
    ) -> int:
        """Call ``handler(event, payload)`` for every event (or only ``events``); return a ref."""
        if not callable(handler):
            raise ConfigurationError("handler must be callable")
        wanted = frozenset(_events(events)) if events is not None else None
        with self._binding_lock:
            ref = self._next_ref()
            self._any = (*self._any, _AnyBinding(ref, handler, wanted, where))
        return ref

    def off(self, event: str | Iterable[str], ref: int | None = None) -> None:
        """Remove the handler ``ref`` of ``event``, or all its handlers when ``ref`` is None."""
        with self._binding_lock:
            bindings = dict(self._bindings)
            for name in _events(event):
                remaining = () if ref is None else tuple(b for b in bindings.get(name, ()) if b.ref != ref)
                if remaining:
                    bindings[name] = remaining
                else:
                    bindings.pop(name, None)
            self._bindings = bindings

    def off_any(self, ref: int | None = None) -> None:
        """Remove the catch-all handler ``ref``, or all of them when ``ref`` is None."""
        with self._binding_lock:
            self._any = () if ref is None else tuple(b for b in self._any if b.ref != ref)

    def _next_ref(self) -> int:
        ref = self._binding_refs
        self._binding_refs += 1
        return ref

    # -- consuming helpers ----------------------------------------------------------

    def messages(
        self,
        *,
        events: Iterable[str] | None = None,
        timeout: float | None = None,
        maxsize: int = 10_000,
        overflow: str = "drop_oldest",
    ) -> MessageStream:
        """Iterate over this channel's messages from a script: ``for msg in channel.messages(): ...``.

        Each item is a :class:`~maxsdk.Message` (``.event``, ``.payload``).
        Messages arriving between iterations are buffered (``maxsize``; when
        full, ``overflow`` is ``"drop_oldest"`` or ``"drop_newest"`` and
        ``stream.dropped`` counts what was lost). Iteration ends when the
        channel or client closes, or after ``timeout`` seconds without a
        message. Use it as a context manager (or call ``close()``) to stop
        buffering.
        """
        from maxsdk.stream import MessageStream

        return MessageStream(self, events=events, timeout=timeout, maxsize=maxsize, overflow=overflow)

    def expect(self, event: str, predicate: Predicate | None = None, *, model: type | None = None) -> Expectation:
        """Start listening for ``event`` *before* triggering it; then ``.wait(timeout)``.

        ::

            with room.expect("order_filled", lambda p: p["id"] == order_id) as filled:
                room.push("place_order", {"id": order_id})
                payload = filled.wait(5)
        """
        from maxsdk.stream import Expectation

        return Expectation(self, event, predicate, model)

    def wait_for(
        self, event: str, predicate: Predicate | None = None, *, timeout: float = 10.0, model: type | None = None
    ) -> Any:
        """Block until the next ``event`` (matching ``predicate``) arrives; return its payload.

        Raises:
            MaxsdkTimeoutError: nothing matching within ``timeout``.
            ChannelClosedError: the channel closed while waiting.

        """
        with self.expect(event, predicate, model=model) as expectation:
            return expectation.wait(timeout)

    # -- stream recovery (see maxsdk.recovery) ---------------------------------------

    @property
    def position(self) -> Position | None:
        """The position of the last event delivered to handlers (``None``: none yet, or not recoverable)."""
        return None if self._recovery is None else self._recovery.position

    def on_discontinuity(self, handler: Callable[[Discontinuity], Any]) -> Callable[[Discontinuity], Any]:
        """Call ``handler(discontinuity)`` when the stream has a gap the server cannot fill.

        Usable as a decorator. The :class:`~maxsdk.recovery.Discontinuity`
        says why (``reason``), the last delivered position (``last``), the
        server's oldest (``oldest``) and where the stream resumed (``resumed``);
        :meth:`history` can fetch what is still retained. Runs on the
        channel's dispatch lane, in order with the events.

        Raises:
            ConfigurationError: the channel was not created with ``recover=``.

        """
        if self._recovery is None:
            raise ConfigurationError(f"channel {self.topic!r} is not recoverable (join it with recover=True)")
        if not callable(handler):
            raise ConfigurationError("handler must be callable")
        self._recovery.on_discontinuity(handler)
        return handler

    def history(
        self, since: Position | int | None = None, limit: int = 100, timeout: float | None = None
    ) -> list[StreamEvent]:
        """Fetch retained events after ``since`` from the server (they do not go to handlers).

        Args:
            since: a :class:`~maxsdk.recovery.Position`, an offset in the
                current epoch, or ``None`` for the oldest retained event.
            limit: the most events to return (servers may cap it).
            timeout: seconds to wait for the reply.

        Returns:
            The events in order, each with its ``position``.

        Raises:
            ReplyError: the server refused: ``.response["reason"]`` is
                ``"trimmed"``, ``"epoch_changed"``, ``"unknown_position"`` or
                ``"bad_request"``.

        """
        if type(limit) is not int or limit < 1:
            raise ConfigurationError("limit must be a positive int")
        config = self._recovery.config if self._recovery is not None else Recovery()
        if isinstance(since, int) and not isinstance(since, bool):
            current = self.position
            if current is None:
                raise ConfigurationError("an offset needs a known epoch: pass a Position")
            since = Position(current.epoch, since)
        if since is not None and not isinstance(since, Position):
            raise ConfigurationError(f"since must be a Position, an int or None, got {since!r}")
        request = {"since": None if since is None else since.to_wire(), "limit": limit}
        reply = self.push("history", request, timeout)
        events = reply.response.get("events", []) if isinstance(reply.response, Mapping) else []
        result = []
        for item in events:
            try:
                payload = item["payload"]
                position = Position.from_wire(payload[config.field])
                if not isinstance(item["event"], str):
                    raise ValueError("event must be a string")
            except (KeyError, TypeError, ValueError) as exc:
                raise RemoteProtocolError(f"history of {self.topic!r}: malformed event ({exc})") from None
            result.append(StreamEvent(item["event"], payload, position))
        return result

    def state_view(self, *, model: type | None = None, timeout: float | None = None) -> StateView:
        """Follow this channel's server-owned document: a local, versioned copy (``docs/state.md``).

        The view asks for a snapshot now (if joined) and after every join,
        applies ``state_delta`` broadcasts in version order, re-syncs by itself
        on a gap, and sends optimistic updates (:meth:`StateView.update`).

        Args:
            model: a dataclass for typed reads (:meth:`StateView.get`).
            timeout: push timeout of its snapshot requests and updates.

        """
        return StateView(self, model=model, timeout=timeout)

    # -- called on the dispatcher thread ---------------------------------------------

    def _deliver_now(self, message: Any, join_ref: str | None = None) -> None:
        event, payload = message.event, message.payload
        engine = self._engine
        presence = self.presence
        if event == presence.state_event or event == presence.diff_event:
            presence._handle(event, payload, join_ref)
        hook = self.message_hook
        if hook is not None:
            try:
                payload = hook(event, payload)
            except Exception as exc:  # noqa: BLE001 - reported, message skipped
                engine.guarded(_reraise, (exc,), f"message_hook for {self.topic} {event}")
                return
        decoded: dict[type, Any] | None = None
        for binding in self._bindings.get(event, ()):
            if binding.where is not None and not self._accepts(binding.where, (payload,), event):
                continue
            argument = payload
            if binding.model is not None:
                if decoded is None:
                    decoded = {}
                if binding.model not in decoded:
                    decoded[binding.model] = self._decode(binding.model, event, payload)
                argument = decoded[binding.model]
                if argument is _INVALID:
                    continue
            # Inline rather than engine.guarded(): no call, and the context string is
            # only built when a handler fails (the per-message path of every flood).
            try:
                binding.handler(argument)
            except Exception as exc:  # noqa: BLE001 - user code: logged and signalled
                engine.handler_failed(binding.handler, exc, f"{self.topic} {event}")
        for any_binding in self._any:
            if any_binding.events is not None and event not in any_binding.events:
                continue
            if any_binding.where is not None and not self._accepts(any_binding.where, (event, payload), event):
                continue
            engine.guarded(any_binding.handler, (event, payload), f"{self.topic} {event}")

    # A recoverable channel replaces it, per instance, by its recovery's deliver: plain
    # channels pay nothing for recovery on the hot path.
    _deliver = _deliver_now

    def _accepts(self, predicate: Callable[..., bool], args: tuple[Any, ...], event: str) -> bool:
        try:
            return bool(predicate(*args))
        except Exception as exc:  # noqa: BLE001 - a broken filter skips the handler
            self._engine.guarded(_reraise, (exc,), f"filter for {self.topic} {event}")
            return False

    def _decode(self, model: type, event: str, payload: Any) -> Any:
        try:
            return decode_versioned(model, payload)
        except ModelError as exc:
            log.warning("%s %s: payload does not fit %s: %s", self.topic, event, model.__name__, exc.reason)
            self._engine.send_signal(signals.payload_invalid, channel=self, event=event, model=model, error=exc)
            return _INVALID

    def _state_changed(self, change: ChannelStateChanged) -> None:
        if change.new is ChannelState.JOINED:
            self.join_response = change.response
        if self._recovery is not None:
            if change.new is ChannelState.JOINED:
                self._recovery.joined(change.response)
            elif change.new in (ChannelState.ERRORED, ChannelState.CLOSED):
                self._recovery.save(force=True)
        if change.new is ChannelState.JOINED and self._client.outbox is not None:
            self._client.outbox.wake()
        with self._state_cond:
            self._state_cond.notify_all()
            watchers = list(self._close_watchers) if change.new is ChannelState.CLOSED else []
        for watcher in watchers:
            watcher()

    def _watch_close(self, callback: Callable[[], None]) -> None:
        with self._state_cond:
            self._close_watchers.append(callback)

    def _unwatch_close(self, callback: Callable[[], None]) -> None:
        with self._state_cond:
            if callback in self._close_watchers:
                self._close_watchers.remove(callback)

    def __repr__(self) -> str:
        return f"<Channel {self.topic!r} {self._core.state} join_ref={self._core.join_ref!r}>"


def _check_timeout(timeout: Any) -> float:
    return check_seconds("timeout", timeout)


def _reraise(exc: BaseException) -> None:
    raise exc


def _events(event: str | Iterable[str]) -> tuple[str, ...]:
    names = (event,) if isinstance(event, str) else tuple(event)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigurationError("event must be a non-empty string or a collection of them")
    return names


def _check_model(model: type | None) -> None:
    import dataclasses

    if model is not None and not (isinstance(model, type) and dataclasses.is_dataclass(model)):
        raise ConfigurationError(f"model must be a dataclass, got {model!r}")
