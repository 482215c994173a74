"""Replies to pushes: :class:`Reply` (a result) and :class:`PendingReply` (a wait on one).

A push blocks on a :class:`threading.Event` until the reader thread hands it
the reply, the timer thread hands it a timeout, or the connection or channel
goes away.
"""

from __future__ import annotations

import _thread
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.errors import (
    ChannelClosedError,
    ClientClosedError,
    ReplyError,
    ReplyLostError,
    ReplyTimeoutError,
)
from maxsdk.protocol.phoenix.events import Outcome

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["PendingReply", "Reply"]

T = TypeVar("T")
_allocate_lock = _thread.allocate_lock
#: Guards callback registration against completion (both rare and short).
_CALLBACK_LOCK = threading.Lock()


@dataclass(frozen=True)
class Reply:
    """A server reply to a push.

    Attributes:
        status: ``"ok"``, ``"error"`` or a custom status chosen by the channel.
        response: the reply's response payload (``bytes`` for binary replies).
        topic: the channel topic.
        event: the pushed event.
        ref: the push's ref.

    """

    status: str
    response: Any
    topic: str
    event: str
    ref: str

    @property
    def ok(self) -> bool:
        """Whether the status is ``"ok"``."""
        return self.status == "ok"

    def as_(self, model: type[T]) -> T:
        """Decode the response into a dataclass ``model`` (see :mod:`maxsdk.models`)."""
        from maxsdk.models import decode

        return decode(model, self.response)


class PendingReply:
    """A push in flight. :meth:`wait` blocks until its reply, timeout or loss.

    Created by :meth:`Channel.push_nowait`; safe to wait on from any thread
    except maxsdk's reader and timer threads.
    """

    __slots__ = (
        "_callbacks",
        "_engine",
        "_gate",
        "_outcome",
        "created",
        "event",
        "reads_while_waiting",
        "ref",
        "timeout",
        "topic",
    )

    def __init__(self, engine: Engine | None, topic: str, event: str, timeout: float) -> None:
        self._engine = engine
        # A raw lock used as a one-shot gate: held until the outcome is known.
        # Cheaper to create and to wait on than a threading.Event (push hot path).
        self._gate = _allocate_lock()
        self._gate.acquire()
        self._outcome: Outcome | BaseException | None = None
        self._callbacks: list[Callable[[PendingReply], None]] | None = None
        self.topic = topic
        self.event = event
        self.timeout = timeout
        self.ref: str | None = None
        #: Monotonic time of creation (push latency is measured from here).
        self.created = time.monotonic()
        #: A thread blocked in :meth:`wait` may read the connection itself (see
        #: :mod:`maxsdk._runtime.read_baton`).
        #: The ident of the thread that waits for this reply reading the connection (0: none).
        self.reads_while_waiting = 0

    def done(self) -> bool:
        """Whether the outcome is known."""
        return self._outcome is not None

    def _gate_acquire(self, timeout: float | None) -> bool:
        return self._gate.acquire(True, -1 if timeout is None else timeout)

    def wait_done(self, timeout: float) -> bool:
        """Block until the outcome is known (or ``timeout``); return whether it is. Never raises."""
        if self._outcome is None:
            if not wait_interruptibly(self._gate_acquire, max(0.0, timeout)):
                return False
            self._gate.release()
        return True

    def wait(self, timeout: float | None = None) -> Reply:
        """Block until the outcome and return the reply.

        Args:
            timeout: how long to wait here; defaults to the push's own timeout
                (which the client enforces anyway).

        Returns:
            The :class:`Reply` for an ``ok`` (or custom status) reply.

        Raises:
            ReplyError: the reply status is ``"error"``.
            ReplyTimeoutError: no reply within the timeout.
            ReplyLostError: the connection or channel dropped after sending.
            ChannelClosedError: the channel closed before the push was sent.
            ClientClosedError: the client was closed.
            WrongThreadError: called from a maxsdk reader or timer thread.

        """
        return _reply_or_raise(self.wait_outcome(timeout), self.timeout)

    def _wait_reading(self, engine: Engine, limit: float) -> bool:
        """Wait, reading the connection on this thread while the reader lends it."""
        self.reads_while_waiting = threading.get_ident()
        deadline = time.monotonic() + limit
        engine.read_while_waiting(self.done, deadline)
        if self._outcome is not None:
            return True
        # The reader has the connection (it never lends it while this push is in flight).
        return self.wait_done(deadline - time.monotonic())

    def wait_outcome(self, timeout: float | None = None) -> Outcome:
        """Block until the outcome and return it as is (no exception for error statuses).

        Raises:
            ReplyTimeoutError: nothing within ``timeout`` (default: the push's
                timeout plus a second of grace).
            ClientClosedError, WrongThreadError: as for :meth:`wait`.

        """
        engine = self._engine
        if engine is not None:
            engine.check_blocking_allowed()
        if self._outcome is None:
            # The client times the push out itself; the extra second only
            # guards against a stalled timer thread.
            limit = self.timeout + 1.0 if timeout is None else timeout
            if engine is None:
                done = self.wait_done(limit)
            elif engine.waits_in_handler():
                engine.recall_connection()  # a handler never reads the socket itself
                with engine.blocking_wait():
                    done = self.wait_done(limit)
            else:
                done = self._wait_reading(engine, limit)
            if not done:
                raise ReplyTimeoutError(
                    f"no reply to {self.event!r} on {self.topic!r} within {limit:g} s",
                    topic=self.topic,
                    event=self.event,
                )
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome

    def result(self) -> Reply:
        """The reply if done (raising as :meth:`wait` does); never blocks.

        Raises:
            RuntimeError: not done yet (as well as the errors of :meth:`wait`).

        """
        outcome = self._outcome
        if outcome is None:
            raise RuntimeError("the reply has not arrived yet")
        if isinstance(outcome, BaseException):
            raise outcome
        return _reply_or_raise(outcome, self.timeout)

    def add_done_callback(self, callback: Callable[[PendingReply], None]) -> None:
        """Call ``callback(pending)`` when done, on the dispatcher thread (at once if done)."""
        with _CALLBACK_LOCK:
            if self._outcome is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        if self._engine is not None:
            self._engine.call_soon(callback, self)
        else:
            callback(self)

    def _complete(self, outcome: Outcome | BaseException) -> list[Callable[[PendingReply], None]]:
        """Record the outcome; return callbacks for the caller to schedule."""
        with _CALLBACK_LOCK:
            if self._outcome is not None:
                return []
            self._outcome = outcome
            callbacks, self._callbacks = self._callbacks, None
        self._gate.release()
        return callbacks or []

    def __repr__(self) -> str:
        state = "pending" if not self.done() else f"done:{getattr(self._outcome, 'status', 'error')}"
        return f"<PendingReply {self.event!r} on {self.topic!r} ref={self.ref} {state}>"


def _reply_or_raise(outcome: Outcome, timeout: float) -> Reply:
    status = outcome.status
    if status == "timeout":
        raise ReplyTimeoutError(
            f"no reply to {outcome.event!r} on {outcome.topic!r} within {timeout:g} s",
            topic=outcome.topic,
            event=outcome.event,
        )
    if status == "lost":
        raise ReplyLostError(
            f"connection or channel lost before the reply to {outcome.event!r} on {outcome.topic!r}"
            " (the server may or may not have processed it)",
            topic=outcome.topic,
            event=outcome.event,
        )
    if status == "closed":
        raise ChannelClosedError(
            f"channel {outcome.topic!r} closed before {outcome.event!r} was sent", topic=outcome.topic
        )
    if status == "client_closed":
        raise ClientClosedError("the client was closed")
    reply = Reply(status, outcome.response, outcome.topic, outcome.event, outcome.ref)
    if status == "error":
        raise ReplyError(reply)
    return reply
