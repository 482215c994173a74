"""What the server saw, for tests: client messages and connection events.

Everything is appended under one condition variable, so tests can block on
"a message like this arrived" or "exactly n connections are open" with a
timeout instead of sleeping. Indexes are absolute (they keep counting when
old records fall off the bounded buffer), so ``since=`` cursors stay valid.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .message import Message, Ref

R = TypeVar("R")

EventKind = Literal["opened", "closed", "refused"]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One decoded client message.

    Attributes:
        index: Position in the record (0-based, absolute).
        connection_id: The connection it arrived on.
        join_ref: As sent (``None`` when null or absent).
        ref: As sent.
        topic: As sent.
        event: As sent.
        payload: Decoded JSON value, or ``bytes`` for a binary push.
        at: ``time.monotonic()`` when it was decoded.

    """

    index: int
    connection_id: int
    join_ref: Ref
    ref: Ref
    topic: str
    event: str
    payload: Any
    at: float


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A connection opened, closed, or was refused at the handshake.

    Attributes:
        index: Position in the record (0-based, absolute).
        kind: ``"opened"``, ``"closed"`` or ``"refused"``.
        connection_id: The connection (``None`` for a refusal).
        params: The connect params (query string, decoded).
        vsn: The serializer version, e.g. ``"2.0.0"`` (``None`` if refused before negotiation).
        socket_id: The socket id assigned at connect, if any.
        status: HTTP status of a refusal.
        code: Close code of a closed connection (1006 when dropped without a close frame).
        transport: ``"websocket"`` or ``"longpoll"``. A long-poll session's
            ``code`` is 1006 when dropped (or the server stopped abruptly),
            1001 when it expired, 1011 when a frame crashed it, else the code
            it was closed with (a graceful stop's code included).
        at: ``time.monotonic()`` of the event.

    """

    index: int
    kind: EventKind
    connection_id: int | None
    params: Mapping[str, Any] = field(default_factory=dict)
    vsn: str | None = None
    socket_id: str | None = None
    status: int | None = None
    code: int | None = None
    transport: str = "websocket"
    at: float = 0.0


class Recorder:
    """Thread-safe, bounded log of :class:`ReceivedMessage` and :class:`ConnectionEvent`."""

    def __init__(self, limit: int = 100_000) -> None:
        """Keep at most ``limit`` messages and ``limit`` events."""
        self._cond = threading.Condition(threading.Lock())
        self._messages: deque[ReceivedMessage] = deque(maxlen=limit)
        self._events: deque[ConnectionEvent] = deque(maxlen=limit)
        self._message_total = 0
        self._event_total = 0
        self._open: dict[int, ConnectionEvent] = {}

    # -- recording -----------------------------------------------------------

    def record_message(self, connection_id: int, message: Message) -> None:
        """Append one decoded client message."""
        with self._cond:
            self._messages.append(
                ReceivedMessage(
                    self._message_total,
                    connection_id,
                    message.join_ref,
                    message.ref,
                    message.topic,
                    message.event,
                    message.payload,
                    time.monotonic(),
                )
            )
            self._message_total += 1
            self._cond.notify_all()

    def record_event(self, kind: EventKind, connection_id: int | None, **details: Any) -> None:
        """Append a connection event (``details`` are :class:`ConnectionEvent` fields)."""
        with self._cond:
            event = ConnectionEvent(self._event_total, kind, connection_id, at=time.monotonic(), **details)
            self._events.append(event)
            self._event_total += 1
            if kind == "opened" and connection_id is not None:
                self._open[connection_id] = event
            elif kind == "closed" and connection_id is not None:
                self._open.pop(connection_id, None)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget recorded messages and events (indexes keep counting)."""
        with self._cond:
            self._messages.clear()
            self._events.clear()

    # -- reading -------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """How many messages were ever recorded (the next message's index)."""
        with self._cond:
            return self._message_total

    @property
    def event_count(self) -> int:
        """How many connection events were ever recorded."""
        with self._cond:
            return self._event_total

    def messages(self, since: int = 0) -> list[ReceivedMessage]:
        """Recorded messages with ``index >= since`` still in the buffer."""
        with self._cond:
            return [m for m in self._messages if m.index >= since]

    def events(self, since: int = 0) -> list[ConnectionEvent]:
        """Recorded connection events with ``index >= since``."""
        with self._cond:
            return [e for e in self._events if e.index >= since]

    def open_connections(self) -> list[ConnectionEvent]:
        """The ``opened`` events of the connections open right now."""
        with self._cond:
            return list(self._open.values())

    # -- waiting -------------------------------------------------------------

    def wait_for_message(
        self,
        predicate: Callable[[ReceivedMessage], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        topic: str | None = None,
        event: str | None = None,
    ) -> ReceivedMessage:
        """Block until a message with ``index >= since`` matches, and return it.

        Raises:
            TimeoutError: if none matches within ``timeout`` seconds.

        """

        def find() -> ReceivedMessage | None:
            for message in self._messages:
                if message.index < since:
                    continue
                if topic is not None and message.topic != topic:
                    continue
                if event is not None and message.event != event:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        what = f"a client message (topic={topic!r}, event={event!r}, since={since})"
        return self._wait(find, timeout, what)

    def wait_for_event(
        self,
        predicate: Callable[[ConnectionEvent], bool],
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> ConnectionEvent:
        """Block until a connection event with ``index >= since`` matches, and return it.

        Raises:
            TimeoutError: if none matches within ``timeout`` seconds.

        """

        def find() -> ConnectionEvent | None:
            for item in self._events:
                if item.index >= since and predicate(item):
                    return item
            return None

        return self._wait(find, timeout, f"a connection event (since={since})")

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until exactly ``count`` connections are open.

        Raises:
            TimeoutError: if the count is not reached within ``timeout`` seconds.

        """

        def reached() -> bool | None:
            return True if len(self._open) == count else None

        try:
            self._wait(reached, timeout, f"{count} open connection(s)")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc} ({len(self._open)} open)") from None

    def _wait(self, find: Callable[[], R | None], timeout: float, what: str) -> R:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = find()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self._cond.wait(remaining)
