"""Blocking ways to consume a channel from a script: an iterator and one-shot expectations."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable

from maxsdk._runtime.threads import wait_interruptibly, wait_slice
from maxsdk.errors import ChannelClosedError, ConfigurationError, MaxsdkTimeoutError
from maxsdk.models import ModelError, decode_versioned
from maxsdk.protocol.phoenix.message import Message

if TYPE_CHECKING:
    from maxsdk.channel import Channel

__all__ = ["Expectation", "MessageStream"]


class MessageStream:
    """Iterate over a channel's messages (see :meth:`Channel.messages`).

    Attributes:
        dropped: messages dropped because the buffer was full.

    """

    def __init__(
        self,
        channel: Channel,
        *,
        events: Iterable[str] | None,
        timeout: float | None,
        maxsize: int,
        overflow: str,
    ) -> None:
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ConfigurationError("overflow must be 'drop_oldest' or 'drop_newest'")
        if maxsize < 1:
            raise ConfigurationError("maxsize must be >= 1")
        self._channel = channel
        self._timeout = timeout
        self._maxsize = maxsize
        self._overflow = overflow
        self._buffer: deque[Message] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._ended = False
        self.dropped = 0
        self._ref = channel.on_any(self._append, events=events)
        channel._watch_close(self._end)
        if channel._client.closed:
            self._end()

    def _append(self, event: str, payload: Any) -> None:
        message = Message(None, None, self._channel.topic, event, payload)
        with self._cond:
            if len(self._buffer) >= self._maxsize:
                self.dropped += 1
                if self._overflow == "drop_newest":
                    return
                self._buffer.popleft()
            self._buffer.append(message)
            self._cond.notify()

    def _end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        self._channel._engine.check_blocking_allowed()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._channel._engine.blocking_wait(), self._cond:
            while not self._buffer:
                if self._ended:
                    raise StopIteration
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StopIteration
                self._cond.wait(wait_slice(remaining))
            return self._buffer.popleft()

    def close(self) -> None:
        """Stop buffering and end the iteration."""
        self._channel.off_any(self._ref)
        self._channel._unwatch_close(self._end)
        self._end()

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class Expectation:
    """A one-shot wait for an event, armed before the action that triggers it (see :meth:`Channel.expect`)."""

    def __init__(
        self, channel: Channel, event: str, predicate: Callable[[Any], bool] | None, model: type | None
    ) -> None:
        self._channel = channel
        self._event_name = event
        self._predicate = predicate
        self._model = model
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._ref = channel.on(event, self._check)
        channel._watch_close(self._closed)

    def _check(self, payload: Any) -> None:
        if self._done.is_set():
            return
        try:
            if self._predicate is not None and not self._predicate(payload):
                return
            self._result = decode_versioned(self._model, payload) if self._model is not None else payload
        except ModelError as exc:
            self._error = exc
        self._done.set()

    def _closed(self) -> None:
        if not self._done.is_set():
            self._error = ChannelClosedError(
                f"channel {self._channel.topic!r} closed while waiting for {self._event_name!r}",
                topic=self._channel.topic,
            )
            self._done.set()

    def wait(self, timeout: float = 10.0) -> Any:
        """Block for the matching payload (decoded if a model was given).

        Raises:
            MaxsdkTimeoutError: nothing matching within ``timeout``.
            ChannelClosedError: the channel closed first.
            ModelError: the payload did not fit the model.

        """
        self._channel._engine.check_blocking_allowed()
        try:
            with self._channel._engine.blocking_wait():
                done = wait_interruptibly(self._done.wait, timeout)
            if not done:
                raise MaxsdkTimeoutError(f"no {self._event_name!r} on {self._channel.topic!r} within {timeout:g} s")
            if self._error is not None:
                raise self._error
            return self._result
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening."""
        self._channel.off(self._event_name, self._ref)
        self._channel._unwatch_close(self._closed)

    def __enter__(self) -> Expectation:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
