"""Who reads the connection: the reader thread, or the caller waiting for its reply.

A caller blocked in ``push()`` normally waits for the reader thread to read its
reply and wake it: two thread wake-ups per round trip where a single-threaded
client has one. So right after the reader completed a reply for a blocked
caller whose previous blocked wait was the last one it completed too (one
caller pushing request after request, not callers taking turns), and nothing
else is in flight, the reader *lends* the connection: it
stops reading and waits. The caller's next wait then reads the socket itself
(it is woken by the kernel when its reply arrives, like a single-threaded
client) and routes every frame exactly as the reader would: events still go to
the dispatch lanes in order, other replies still wake their callers.

States (:class:`ReadBaton`):

* ``READER``: the reader thread reads (the normal state).
* ``LENT``: nobody reads; a waiting caller may take the connection. If none
  does within :data:`IDLE` seconds, the reader takes it back (so a frame the
  server sends meanwhile waits at most that long).
* ``CALLER``: a caller reads. It hands the connection back when its own wait
  ends: to the reader at once if anything else is in flight or the connection
  ended (with what ended it), else as ``LENT`` again.

Only the thread holding the baton touches the transport's read side, so frames
are read and routed in order by one thread at a time. The baton is a state, not
a lock: no user code runs while anything of ours is held.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["CALLER", "IDLE", "LENT", "NOT_YET", "READER", "ReadBaton"]

READER, LENT, CALLER = 0, 1, 2
#: Seconds a lent connection stays unread before the reader takes it back.
IDLE = 0.001
_monotonic = time.monotonic
#: What an impatient :meth:`ReadBaton.wait_turn` returns while a caller still reads.
NOT_YET: Any = object()


class ReadBaton:
    """The read side of one connection, passed between the reader and waiting callers."""

    __slots__ = ("_cond", "_idle_since", "end", "lends", "state", "takes")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        #: ``READER``, ``LENT`` or ``CALLER`` (read without the lock for a cheap first check).
        self.state = READER
        self._idle_since = 0.0
        #: What a caller saw end the connection: ``(code, reason)`` or an exception for the reader.
        self.end: Any = None
        #: How often the reader lent the connection, and how often a caller took it.
        self.lends = 0
        self.takes = 0

    def lend(self) -> None:
        """Reader: stop reading; a waiting caller may read until it hands back (only from ``READER``)."""
        with self._cond:
            if self.state != READER:
                return
            self.state = LENT
            self._idle_since = _monotonic()
            self.lends += 1

    def wait_turn(self, *, patient: bool = True) -> Any:
        """Reader: block until the connection is the reader's again; return ``end`` (usually ``None``).

        A lent connection nobody took for :data:`IDLE` seconds is taken back.
        While a caller reads, the reader looks every :data:`IDLE` seconds; if
        not ``patient``, it returns :data:`NOT_YET` after the first look (it
        has something to do meanwhile, and then waits again).
        """
        cond = self._cond
        with cond:
            while self.state != READER:
                if self.state == LENT:
                    left = self._idle_since + IDLE - _monotonic()
                    if left <= 0:
                        self.state = READER
                        break
                    cond.wait(left)
                else:
                    cond.wait(IDLE)
                    if not patient and self.state == CALLER:
                        return NOT_YET
            end, self.end = self.end, None
        return end

    def take(self) -> bool:
        """Caller: take a lent connection; ``False`` if it is not lent."""
        if self.state != LENT:
            return False
        with self._cond:
            if self.state != LENT:
                return False
            self.state = CALLER
            self.takes += 1
            return True

    def hand_back(self, *, to_reader: bool, end: Any = None) -> None:
        """Caller: stop reading; to the reader at once (``to_reader`` or an ``end``), else lent again."""
        with self._cond:
            if end is not None or to_reader:
                if end is not None:
                    self.end = end
                self.state = READER
                self._cond.notify()
            else:
                self.state = LENT
                self._idle_since = _monotonic()

    def recall(self) -> None:
        """Anyone: a lent connection goes back to the reader now (a wait that cannot read itself)."""
        if self.state != LENT:
            return
        with self._cond:
            if self.state == LENT:
                self.state = READER
                self._cond.notify()

    def reset(self) -> None:
        """Reader: a new connection starts with the reader reading."""
        with self._cond:
            self.state = READER
            self.end = None
