"""Channel: join a topic, push and wait for replies, receive events."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from maxsdk.errors import (
    ChannelClosedError,
    ClientClosedError,
    ConfigurationError,
    JoinError,
    JoinTimeoutError,
)
from maxsdk.models import to_payload
from maxsdk.presence import Presence
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState
from maxsdk.protocol.phoenix.events import ChannelStateChanged
from maxsdk.reply import PendingReply, Reply

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine
    from maxsdk.client import Client

__all__ = ["Channel"]

Handler = Callable[[Any], Any]
AnyHandler = Callable[[str, Any], Any]
F = TypeVar("F", bound=Callable[..., Any])


class Channel:
    """One topic on a client's socket.

    Create with :meth:`Client.channel` (or :meth:`Client.join`, which also
    joins). Every method is safe to call from any thread. Handlers run on the
    client's dispatcher thread, in arrival order.

    Attributes:
        topic: the channel topic, e.g. ``"room:lobby"``.
        params: the join payload: a mapping, a dataclass, or a zero-argument
            callable returning one (called again for every rejoin).
        timeout: default timeout in seconds for join, push and leave.
        message_hook: optional ``hook(event, payload) -> payload`` run before
            the handlers of every event (it may transform the payload).

    """

    def __init__(self, client: Client, engine: Engine, topic: str, params: Any, timeout: float) -> None:
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError("topic must be a non-empty string")
        self.topic = topic
        self.params = params
        self.timeout = timeout
        self.message_hook: Callable[[str, Any], Any] | None = None
        self._client = client
        self._engine = engine
        self._core = ChannelCore(topic, self, timeout)
        self._bindings: dict[str, tuple[tuple[int, Handler], ...]] = {}
        self._any: tuple[tuple[int, AnyHandler], ...] = ()
        self._binding_lock = threading.Lock()
        self._binding_refs = 0
        self._state_cond = threading.Condition(threading.Lock())
        self.join_response: Any = None
        #: Who is online on this channel (fed by ``presence_state``/``presence_diff``).
        self.presence = Presence(self)

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
            return self._wait_joined(timeout)
        payload = self._engine.serializer.encode_payload(self._join_params())
        waiter = PendingReply(self._engine, self.topic, "phx_join", timeout)
        self._core.timeout = timeout
        self._engine.run(lambda session, now: session.join(self._core, payload, now, timeout, waiter))
        outcome = waiter.wait_outcome(timeout + 1.0)
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
        with self._state_cond:
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
        self._engine.run(lambda session, now: session.leave(self._core, now, timeout, waiter))
        try:
            waiter.wait_outcome(timeout + 1.0)
        except ClientClosedError:
            pass

    def _join_params(self) -> Any:
        params = self.params() if callable(self.params) else self.params
        params = to_payload(params)
        if params is None:
            return {}
        if not isinstance(params, Mapping):
            raise ConfigurationError(f"join params for {self.topic!r} must be a mapping, got {type(params).__name__}")
        return dict(params)

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

    def push_nowait(self, event: str, payload: Any = None, timeout: float | None = None) -> PendingReply:
        """Push without waiting; return a :class:`PendingReply` to wait on later.

        Raises the same errors as :meth:`push` for problems detectable at once.
        """
        if not isinstance(event, str) or not event:
            raise ConfigurationError("event must be a non-empty string")
        timeout = _check_timeout(self.timeout if timeout is None else timeout)
        engine = self._engine
        encoded = engine.serializer.encode_payload({} if payload is None else to_payload(payload))
        if isinstance(encoded, bytes):
            engine.serializer.check_binary_fields(self.topic, event)
        if self._client.closed:
            raise ClientClosedError("the client is closed")
        waiter = PendingReply(engine, self.topic, event, timeout)
        waiter.ref = engine.push(self._core, event, encoded, timeout, waiter)
        return waiter

    # -- handlers ---------------------------------------------------------------

    @overload
    def on(self, event: str) -> Callable[[F], F]: ...

    @overload
    def on(self, event: str, handler: Handler) -> int: ...

    def on(self, event: str, handler: Handler | None = None) -> int | Callable[[F], F]:
        """Call ``handler(payload)`` for every ``event`` on this channel.

        Usable as a call (returns a ref for :meth:`off`) or as a decorator
        (``@channel.on("new_msg")``, returns the function unchanged).
        ``phx_error`` and ``phx_close`` from the server can be bound too.
        """
        if not isinstance(event, str) or not event:
            raise ConfigurationError("event must be a non-empty string")
        if handler is None:

            def decorator(fn: F) -> F:
                self.on(event, fn)
                return fn

            return decorator
        if not callable(handler):
            raise ConfigurationError("handler must be callable")
        with self._binding_lock:
            ref = self._binding_refs
            self._binding_refs += 1
            self._bindings = {**self._bindings, event: (*self._bindings.get(event, ()), (ref, handler))}
        return ref

    def on_any(self, handler: AnyHandler) -> int:
        """Call ``handler(event, payload)`` for every event on this channel; return a ref."""
        if not callable(handler):
            raise ConfigurationError("handler must be callable")
        with self._binding_lock:
            ref = self._binding_refs
            self._binding_refs += 1
            self._any = (*self._any, (ref, handler))
        return ref

    def off(self, event: str, ref: int | None = None) -> None:
        """Remove the handler ``ref`` of ``event``, or all its handlers when ``ref`` is None."""
        with self._binding_lock:
            bindings = dict(self._bindings)
            if ref is None:
                bindings.pop(event, None)
            else:
                remaining = tuple(b for b in bindings.get(event, ()) if b[0] != ref)
                if remaining:
                    bindings[event] = remaining
                else:
                    bindings.pop(event, None)
            self._bindings = bindings

    def off_any(self, ref: int | None = None) -> None:
        """Remove the catch-all handler ``ref``, or all of them when ``ref`` is None."""
        with self._binding_lock:
            self._any = () if ref is None else tuple(b for b in self._any if b[0] != ref)

    # -- called on the dispatcher thread ---------------------------------------------

    def _deliver(self, message: Any, join_ref: str | None = None) -> None:
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
        for _, handler in self._bindings.get(event, ()):
            engine.guarded(handler, (payload,), f"{self.topic} {event}")
        for _, handler in self._any:
            engine.guarded(handler, (event, payload), f"{self.topic} {event}")

    def _state_changed(self, change: ChannelStateChanged) -> None:
        if change.new is ChannelState.JOINED:
            self.join_response = change.response
        with self._state_cond:
            self._state_cond.notify_all()

    def __repr__(self) -> str:
        return f"<Channel {self.topic!r} {self._core.state} join_ref={self._core.join_ref!r}>"


def _check_timeout(timeout: Any) -> float:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _reraise(exc: BaseException) -> None:
    raise exc
