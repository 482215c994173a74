"""Requests in flight on request/response protocols: :class:`PendingCall` and :class:`BatchResult`.

A call blocks on a :class:`threading.Event` until the reader thread hands it
the reply, the timer thread hands it a timeout, or the connection goes away —
the same mechanics as :class:`~maxsdk.PendingReply` for Phoenix pushes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.errors import (
    AuthRefusedError,
    ChannelClosedError,
    ClientClosedError,
    RemoteProtocolError,
    ReplyLostError,
    ReplyTimeoutError,
    RpcError,
)

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["BatchResult", "ErrorConverter", "PendingCall", "rpc_error"]

#: Turns the server's error value into the exception a caller sees: ``convert(error, method)``.
ErrorConverter = Callable[[Any, str], BaseException]


def rpc_error(error: Any, method: str) -> RpcError:
    """An :class:`RpcError` from a JSON-RPC error object (or any error value a feed sends)."""
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message", error.get("msg", error.get("reason")))
        return RpcError(
            code if type(code) is int else None,
            str(message) if message is not None else repr(error),
            error.get("data", error if message is None else None),
            method=method,
        )
    return RpcError(None, str(error), None, method=method)


class PendingCall:
    """A request in flight. :meth:`wait` blocks until its result, error, timeout or loss.

    Safe to wait on from any thread except maxsdk's reader and timer threads.

    Attributes:
        method: the method or operation.
        timeout: its timeout in seconds.
        request_id: its id once sent (``None`` for a queued notification).

    """

    __slots__ = (
        "_callbacks",
        "_convert",
        "_engine",
        "_event",
        "_lock",
        "_outcome",
        "created",
        "method",
        "request_id",
        "timeout",
        "topic",
    )

    def __init__(
        self,
        engine: Engine | None,
        method: str,
        timeout: float,
        convert: ErrorConverter = rpc_error,
        *,
        topic: str | None = None,
    ) -> None:
        self._engine = engine
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._outcome: Any = None
        self._callbacks: list[Callable[[PendingCall], None]] | None = None
        self._convert = convert
        self.method = method
        self.timeout = timeout
        self.topic = topic
        self.request_id: Any = None
        #: ``time.monotonic()`` when the call was made.
        self.created = time.monotonic()

    def done(self) -> bool:
        """Whether the outcome is known."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the outcome; return the result.

        Args:
            timeout: how long to wait here; defaults to the call's own
                timeout (which the client enforces anyway) plus a second.

        Raises:
            RpcError: the server answered with an error.
            ReplyTimeoutError: no reply within the timeout.
            ReplyLostError: the connection dropped after the request was sent.
            RemoteProtocolError: the reply was malformed.
            AuthRefusedError: the server refused the client's credentials.
            ClientClosedError: the client was closed.
            WrongThreadError: called from a maxsdk reader or timer thread.

        """
        if self._engine is not None:
            self._engine.check_blocking_allowed()
        if not self._event.is_set():
            limit = self.timeout + 1.0 if timeout is None else timeout
            if self._engine is not None:
                with self._engine.blocking_wait():
                    done = wait_interruptibly(self._event.wait, limit)
            else:
                done = wait_interruptibly(self._event.wait, limit)
            if not done:
                raise ReplyTimeoutError(
                    f"no reply to {self.method!r} within {limit:g} s", topic=self.topic or "", event=self.method
                )
        return self._value()

    def result(self) -> Any:
        """The result if done (raising as :meth:`wait` does); never blocks.

        Raises:
            RuntimeError: not done yet.

        """
        if not self._event.is_set():
            raise RuntimeError("the reply has not arrived yet")
        return self._value()

    def exception(self) -> BaseException | None:
        """The error the call ended with (``None`` on success); never blocks.

        Raises:
            RuntimeError: not done yet.

        """
        if not self._event.is_set():
            raise RuntimeError("the reply has not arrived yet")
        outcome = self._outcome
        return None if outcome.status == "ok" else self._error(outcome)

    def add_done_callback(self, callback: Callable[[PendingCall], None]) -> None:
        """Call ``callback(pending)`` when done, on the dispatcher thread (at once if done)."""
        with self._lock:
            if not self._event.is_set():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        if self._engine is not None:
            self._engine.call_soon(callback, self)
        else:
            callback(self)

    def _complete(self, outcome: Any) -> list[Callable[[PendingCall], None]]:
        """Record the outcome (a ``RequestOutcome``); return callbacks for the caller to schedule."""
        with self._lock:
            if self._event.is_set():
                return []
            self._outcome = outcome
            self._event.set()
            callbacks, self._callbacks = self._callbacks, None
        return callbacks or []

    def _value(self) -> Any:
        outcome = self._outcome
        status = outcome.status
        if status == "ok":
            return outcome.result
        raise self._error(outcome)

    def _error(self, outcome: Any) -> BaseException:
        status, method, topic = outcome.status, self.method, self.topic or ""
        if status == "error":
            return self._convert(outcome.error, method)
        if status == "timeout":
            return ReplyTimeoutError(f"no reply to {method!r} within {self.timeout:g} s", topic=topic, event=method)
        if status == "lost":
            return ReplyLostError(
                f"connection lost before the reply to {method!r} (the server may or may not have processed it)",
                topic=topic,
                event=method,
            )
        if status == "invalid":
            error = outcome.error
            return error if isinstance(error, RemoteProtocolError) else RemoteProtocolError(str(error))
        if status == "auth_failed":
            message = f"the server refused the credentials: {outcome.error!r}"[:300]
            return AuthRefusedError(message, response=outcome.error)
        if status == "closed":
            return ChannelClosedError(f"subscription to {topic!r} ended before it was confirmed", topic=topic)
        return ClientClosedError("the client was closed")

    def __repr__(self) -> str:
        state = "pending" if not self.done() else f"done:{self._outcome.status}"
        return f"<PendingCall {self.method!r} id={self.request_id!r} {state}>"


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one call in a batch: its result, or the error kept apart.

    Attributes:
        method: the method called.
        result: the result (``None`` when it failed).
        error: the exception it failed with (:class:`~maxsdk.RpcError`,
            a timeout...), or ``None``.

    """

    method: str
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.error is None

    def unwrap(self) -> Any:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.result
