"""The dispatcher thread: runs user handlers and signal receivers, in order, off the reader.

The reader appends events to a deque (cheap, lock-free in CPython) and wakes
the dispatcher only when it is idle, so a burst of frames costs one wake-up,
not one per frame (a ``queue.Queue`` hand-off per message halves the receive
rate — see the performance notes).

The queue is bounded. When it is full, what happens to the next *message*
depends on the overflow policy (control events — connection and channel state
changes — are never dropped):

* ``"block"`` (default): nothing is dropped; the reader stops reading until
  the handlers catch up (TCP backpressure to the server). Heartbeat replies
  then wait in the socket too, so the client suspends its heartbeat timeout
  while the reader is blocked this way. While a handler is itself blocked in
  a maxsdk call (a ``push()`` waiting for its reply, ``wait_for()``...), the
  reader keeps reading past the bound — otherwise that reply could never be
  read — so the queue can exceed its size for as long as such a call lasts;
* ``"drop_oldest"``: the oldest queued message is dropped;
* ``"drop_newest"``: the incoming message is dropped.

Drops are counted and reported through the ``messages_dropped`` signal.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from typing import Any, Callable, Literal

__all__ = ["Dispatcher", "OverflowPolicy"]

log = logging.getLogger("maxsdk.dispatcher")

OverflowPolicy = Literal["drop_oldest", "drop_newest", "block"]


class Dispatcher:
    """A single consumer thread over a bounded deque of events.

    Args:
        handle: called with each event on the dispatcher thread; must not raise
            (the client's handler isolates user errors itself).
        maxsize: the most queued events before the overflow policy applies.
        overflow: the overflow policy.
        droppable: tells messages (droppable) from control events.
        name: the thread name.

    """

    def __init__(
        self,
        handle: Callable[[Any], None],
        *,
        maxsize: int,
        overflow: OverflowPolicy,
        droppable: Callable[[Any], bool],
        name: str,
    ) -> None:
        self._handle = handle
        self._maxsize = maxsize
        self._overflow = overflow
        self._droppable = droppable
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._room = threading.Condition(threading.Lock())
        self._idle = True
        self._stopping = False
        self.dropped_total = 0
        self.dropped_unreported = 0
        self.reader_blocked = False
        self.handled = 0
        #: Handler calls blocked in a maxsdk wait right now (the reader must not block then).
        self.handler_waiting = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The dispatcher thread."""
        return self._thread

    @property
    def depth(self) -> int:
        """Events waiting to be handled."""
        return len(self._queue)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, item: Any) -> None:
        """Queue an event; never blocks (the ``block`` policy waits in :meth:`wait_for_room`)."""
        queue = self._queue
        if len(queue) >= self._maxsize and self._overflow != "block" and self._droppable(item):
            if self._overflow == "drop_newest" or not self._drop_oldest_message():
                self._count_drop()
                return
            self._count_drop()
        queue.append(item)
        if self._idle:
            self._idle = False
            self._wake.set()

    def _drop_oldest_message(self) -> bool:
        """Remove the oldest droppable event (skipping control events); False if none."""
        queue = self._queue
        try:
            if self._droppable(queue[0]):
                queue.popleft()
                return True
            for queued in itertools.islice(queue, 256):
                if self._droppable(queued):
                    # By value, not index: the dispatcher may pop from the left meanwhile.
                    queue.remove(queued)
                    return True
        except (IndexError, ValueError, RuntimeError):  # the dispatcher popped meanwhile: room was made
            return True
        return False

    def wait_for_room(self, stop: threading.Event) -> None:
        """With the ``block`` policy, block the calling (reader) thread while the queue is full."""
        if self._overflow != "block" or len(self._queue) < self._maxsize or self.handler_waiting:
            return
        with self._room:
            self.reader_blocked = True
            try:
                while (
                    len(self._queue) >= self._maxsize
                    and not self.handler_waiting
                    and not self._stopping
                    and not stop.is_set()
                ):
                    self._room.wait(0.5)
            finally:
                self.reader_blocked = False

    def enter_wait(self) -> None:
        """A handler (on this thread) starts a blocking maxsdk call: let the reader read on."""
        with self._room:
            self.handler_waiting += 1
            self._room.notify_all()

    def exit_wait(self) -> None:
        """The blocking call of :meth:`enter_wait` returned."""
        with self._room:
            self.handler_waiting -= 1

    def stop(self) -> None:
        """Handle what is queued, then end the thread (call :meth:`join` to wait)."""
        self._stopping = True
        self._wake.set()
        with self._room:
            self._room.notify_all()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (a no-op when called from the thread itself)."""
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _count_drop(self) -> None:
        self.dropped_total += 1
        self.dropped_unreported += 1

    def _run(self) -> None:
        queue, handle, wake = self._queue, self._handle, self._wake
        low_water = self._maxsize // 2
        while True:
            while queue:
                item = queue.popleft()
                try:
                    handle(item)
                except Exception:
                    log.exception("internal error while dispatching %r", type(item).__name__)
                self.handled += 1
                if self.reader_blocked and len(queue) <= low_water:
                    with self._room:
                        self._room.notify_all()
            if self._stopping:
                return
            self._idle = True
            if queue:
                self._idle = False
                continue
            wake.wait()
            wake.clear()
