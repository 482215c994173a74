"""One thread that fires delayed actions (delayed replies, ``send_self(delay=)``).

Due actions are handed to a runner (the scheduler's ``submit``) so that a
slow action never delays the next deadline.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from maxsdk._runtime.threads import start_thread

logger = logging.getLogger(__name__)

Action = Callable[[], None]


class TimerHandle:
    """A scheduled action that can still be cancelled."""

    __slots__ = ("action", "cancelled")

    def __init__(self, action: Action) -> None:
        """Wrap ``action``."""
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the action (no effect once it has been handed over)."""
        self.cancelled = True


class Timer:
    """A deadline heap served by one lazily started thread."""

    def __init__(self, run: Callable[[Action], None], *, name: str = "maxsdk-server-timer") -> None:
        """Create a timer whose due actions are passed to ``run``."""
        self._run = run
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False

    def call_later(self, delay: float, action: Action) -> TimerHandle:
        """Run ``action`` after ``delay`` seconds (dropped if the timer is stopped)."""
        handle = TimerHandle(action)
        with self._cond:
            if self._stopped:
                handle.cancelled = True
                return handle
            deadline = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                start_thread(self._thread)
            self._cond.notify()
        return handle

    def stop(self) -> None:
        """Drop pending actions and join the thread."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, handle = heapq.heappop(self._heap)
                        break
                    timeout = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(timeout)
            if not handle.cancelled:
                self._run(handle.action)
