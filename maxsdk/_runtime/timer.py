"""The timer thread: sleeps until the protocol core's next deadline, then ticks it.

The core never sleeps; it only reports its earliest deadline. This thread
waits until then (or until poked because an earlier deadline appeared) and
calls ``tick(now)``, which acts on due deadlines and returns the next one.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

__all__ = ["Timer"]


class Timer:
    """One thread driving every deadline of a client.

    Args:
        tick: ``tick(now) -> next deadline or None``; runs due work.
        name: the thread name.
        clock: the monotonic clock.

    """

    def __init__(
        self,
        tick: Callable[[float], float | None],
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tick = tick
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._dirty = False
        self._stopping = False
        #: The time the thread sleeps until; ``inf`` while it is ticking, so
        #: that any deadline set meanwhile pokes it (see :meth:`poke_if_earlier`).
        self.target = math.inf
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The timer thread."""
        return self._thread

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def poke_if_earlier(self, deadline: float | None) -> None:
        """Wake the thread if ``deadline`` is before the time it sleeps until."""
        if deadline is not None and deadline < self.target:
            self.poke()

    def poke(self) -> None:
        """Make the thread tick again now."""
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def stop(self) -> None:
        """End the thread (call :meth:`join` to wait for it)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (a no-op from the thread itself)."""
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        clock = self._clock
        while True:
            self.target = math.inf
            with self._cond:
                self._dirty = False
                if self._stopping:
                    return
            following = self._tick(clock())
            with self._cond:
                if self._stopping:
                    return
                if self._dirty:
                    continue
                self.target = math.inf if following is None else following
                delay = None if following is None else max(0.0, following - clock())
                if delay is None or delay > 0:
                    self._cond.wait(delay)
