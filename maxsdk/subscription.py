"""A handle on one subscriber's topic subscription (JSON-RPC, JSON feeds, custom protocols).

Several :class:`Subscription` handles on one topic share a single server
subscription; each gets every update. Updates go to the handler given at
subscribe time (on the dispatcher thread, in order), or, without one, into
a bounded buffer read with :meth:`Subscription.get` / iteration.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

from maxsdk._runtime.threads import wait_slice
from maxsdk.errors import ClientClosedError, MaxsdkTimeoutError

if TYPE_CHECKING:
    from maxsdk.protocol_client import ProtocolClient

__all__ = ["Subscription"]

_END = object()


class Subscription:
    """One subscriber of a topic.

    Attributes:
        topic: the client-side name of the subscription.
        handler: called with each update's data (``None``: updates are buffered).

    """

    def __init__(
        self,
        client: ProtocolClient,
        topic: str,
        handler: Callable[[Any], Any] | None,
        *,
        buffer_size: int = 10_000,
    ) -> None:
        self._client = client
        self.topic = topic
        self.handler = handler
        self._cond = threading.Condition(threading.Lock())
        self._buffer: deque[Any] = deque(maxlen=buffer_size)
        self._ended = False
        #: Updates dropped because the buffer was full (no handler, nobody reading).
        self.dropped = 0

    @property
    def key(self) -> str | None:
        """The server's id of the subscription on the current connection (changes after a reconnect)."""
        return self._client._subscription_key(self.topic)

    @property
    def active(self) -> bool:
        """Whether the server confirmed the subscription on the current connection."""
        return self._client._subscription_state(self.topic) == "active"

    def unsubscribe(self, timeout: float | None = None) -> None:
        """Stop receiving; the last subscriber of a topic unsubscribes on the server. Idempotent."""
        if self._ended:
            return
        self._end()
        self._client._unsubscribe(self, timeout)

    def get(self, timeout: float | None = None) -> Any:
        """The next buffered update's data (subscriptions without a handler).

        Raises:
            MaxsdkTimeoutError: nothing arrived within ``timeout``.
            ClientClosedError: the subscription ended.

        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buffer:
                if self._ended:
                    raise ClientClosedError(f"subscription to {self.topic!r} ended")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise MaxsdkTimeoutError(f"no update on {self.topic!r} within {timeout:g} s")
                self._cond.wait(wait_slice(remaining))
            return self._buffer.popleft()

    def __iter__(self) -> Iterator[Any]:
        """Buffered updates until the subscription ends."""
        while True:
            try:
                yield self.get()
            except ClientClosedError:
                return

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.unsubscribe()

    def _deliver(self, data: Any) -> None:
        """Hand over one update (dispatcher thread)."""
        handler = self.handler
        if handler is not None:
            self._client._call_handler(handler, data, self.topic)
            return
        with self._cond:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append(data)
            self._cond.notify_all()

    def _end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"<Subscription {self.topic!r} key={self.key!r}>"
