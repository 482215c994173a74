"""Deadlines of every client of a process, driven by one shared timer thread.

The core never sleeps; it only reports its earliest deadline. Each client
holds a :class:`Timer` (its entry in the process-wide schedule): the shared
thread (``maxsdk-timer``) sleeps until the earliest deadline of all entries,
then calls that client's ``tick(now)``, which acts on due deadlines
(heartbeats, push timeouts, rejoins, reconnect schedule) and returns the next
one. So a process with a thousand clients has one timer thread, not a thousand.

Rules:

* an entry is ticked by one thread at a time, never concurrently with itself;
* :meth:`Timer.poke` asks for a tick now; a poke during a tick makes the entry
  tick again right after (nothing set meanwhile is missed);
* :meth:`Timer.stop` removes the entry; :meth:`Timer.join` then waits for a
  tick in flight, so after ``close()`` no tick of that client runs;
* the thread runs while the schedule has entries: the entry that leaves last
  retires it (under the lock, so a new entry never joins a thread that is
  ending: the next entry starts a new one), and that entry's :meth:`Timer.join`
  joins it, so the last client's ``close()`` leaves no timer thread behind.
  Called on the timer thread itself (``close()`` in a tick), the join cannot
  wait for its own thread: the thread ends right after that tick returns;
* the thread sleeps at most :data:`MAX_SLEEP` at a time, so a far deadline
  (a heartbeat, a push timeout: one per push) is picked up at its next
  wake-up instead of waking it;
* a forked child starts with an empty schedule (the parent's thread does not
  exist there).

A tick should not block: while one client's tick runs, the others wait.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
from typing import Callable

from maxsdk._runtime.threads import start_thread

__all__ = ["Timer", "TimerService", "is_timer_thread", "shared_service"]

log = logging.getLogger(__name__)

THREAD_NAME = "maxsdk-timer"
#: The longest the thread sleeps at a time: a new deadline later than its wake-up
#: (a heartbeat, a 10 s push timeout) is then picked up without waking it.
MAX_SLEEP = 1.0


class Timer:
    """One client's entry in the shared timer's schedule.

    Args:
        tick: ``tick(now) -> next deadline or None``; runs due work.
        name: the client's name (for logs).
        service: the schedule to join (default: the process-wide one).

    """

    def __init__(
        self,
        tick: Callable[[float], float | None],
        *,
        name: str,
        service: TimerService | None = None,
    ) -> None:
        self.tick = tick
        self.name = name
        self._service = service
        #: The time the entry is due; ``inf`` while it is ticking or unscheduled, so that
        #: any deadline set meanwhile reaches :meth:`poke_if_earlier` (a lock-free check).
        self.target = math.inf
        self.generation = 0
        self.running = False
        self.dirty = False
        self.stopped = False
        self.started = False
        #: The thread start this entry retired by leaving last (joined by :meth:`join`).
        self.retired_run: _Run | None = None

    @property
    def service(self) -> TimerService:
        """The schedule this entry belongs to."""
        if self._service is None:
            self._service = shared_service()
        return self._service

    def start(self, when: float | None = -math.inf) -> None:
        """Join the schedule; tick at ``when`` (default: now; ``None``: once poked)."""
        self.service.add(self, when)

    def poke_if_earlier(self, deadline: float | None) -> None:
        """Tick at ``deadline`` if that is before the time the entry is due."""
        if deadline is not None and deadline < self.target:
            self.service.schedule(self, deadline)

    def poke(self) -> None:
        """Make the entry tick again now."""
        self.service.schedule(self, -math.inf)

    def stop(self) -> None:
        """Leave the schedule (call :meth:`join` to wait for a tick in flight).

        An entry stopped before it started never starts.
        """
        self.service.remove(self)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no tick of this entry runs; ``False`` on timeout (a no-op from the timer thread)."""
        if not self.started or is_timer_thread():
            return True
        return self.service.wait_idle(self, timeout)


class _Run:
    """One start of the timer thread: retired when the last entry leaves, never revived."""

    def __init__(self, lock: threading.Lock) -> None:
        self.wake = threading.Condition(lock)
        self.retired = False
        self.thread: threading.Thread | None = None


class TimerService:
    """A heap of entries and the thread that ticks them when due.

    Args:
        clock: the monotonic clock.

    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, int, Timer]] = []
        self._seq = 0
        self._entries = 0
        #: The deadline the current thread sleeps until (``-inf`` while it works).
        self._sleeping_until = -math.inf
        #: The current start of the thread (``None`` while the schedule is empty).
        self._run: _Run | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The timer thread, if running."""
        run = self._run
        return None if run is None else run.thread

    @property
    def entries(self) -> int:
        """Entries in the schedule."""
        return self._entries

    def add(self, timer: Timer, when: float | None = -math.inf) -> None:
        """Add ``timer`` to the schedule, due at ``when`` (``None``: not before a poke)."""
        with self._lock:
            if timer.started or timer.stopped:
                return
            timer.started = True
            self._entries += 1
            if self._run is None:  # the first entry (again): a new thread, never the retiring one
                run = self._run = _Run(self._lock)
                self._sleeping_until = -math.inf
                run.thread = threading.Thread(target=self._serve_run, args=(run,), name=THREAD_NAME, daemon=True)
                start_thread(run.thread)
            if when is not None:
                self._push(timer, when)

    def remove(self, timer: Timer) -> None:
        """Take ``timer`` out of the schedule (idempotent); the last entry out retires the thread."""
        with self._lock:
            if timer.stopped or not timer.started:
                timer.stopped = True  # one that never started cannot start any more
                return
            timer.stopped = True
            timer.generation += 1  # its heap entries go stale
            timer.target = -math.inf  # nothing pokes a stopped entry
            self._entries -= 1
            run = self._run
            if not self._entries and run is not None:
                run.retired = True  # it ends after its tick in flight, if any; join() waits for it
                self._run = None
                self._heap.clear()
                timer.retired_run = run
                run.wake.notify_all()

    def schedule(self, timer: Timer, when: float) -> None:
        """Tick ``timer`` at ``when`` (or right after its tick in flight)."""
        with self._lock:
            if timer.stopped or not timer.started:
                return
            if timer.running:
                timer.dirty = True
                return
            if when < timer.target:
                self._push(timer, when)

    def wait_idle(self, timer: Timer, timeout: float | None) -> bool:
        """Wait until ``timer`` is not being ticked; if it was the last entry, join the thread it retired."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._lock:
            while timer.running:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
            run = timer.retired_run
        ending = None if run is None else run.thread
        if ending is not None and ending is not threading.current_thread():
            ending.join(None if deadline is None else max(0.0, deadline - self._clock()))
            return not ending.is_alive()
        return True

    def _push(self, timer: Timer, when: float) -> None:
        """Schedule under the lock; wake the thread if this is now the earliest deadline."""
        timer.generation += 1
        timer.target = when
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer.generation, timer))
        run = self._run
        if run is not None and when < self._sleeping_until:
            run.wake.notify()

    def _next_due(self, run: _Run) -> tuple[Timer, float] | None:
        """Under the lock: wait for the next due entry; ``None`` once ``run`` is retired."""
        heap = self._heap
        clock = self._clock
        wake = run.wake
        while True:
            if run.retired:  # checked first: a retired thread touches no shared state
                return None
            if not heap:
                now = clock()
                self._sleeping_until = now + MAX_SLEEP
                wake.wait(MAX_SLEEP)
                continue
            when, _, generation, timer = heap[0]
            if generation != timer.generation:
                heapq.heappop(heap)
                continue
            now = clock()
            if when > now:
                self._sleeping_until = until = min(when, now + MAX_SLEEP)
                wake.wait(until - now)
                continue
            heapq.heappop(heap)
            self._sleeping_until = -math.inf
            timer.running = True
            timer.dirty = False
            timer.target = math.inf
            return timer, now

    def _serve_run(self, run: _Run) -> None:
        ident = threading.get_ident()
        TIMER_IDENTS.add(ident)
        try:
            self._serve(run)
        finally:
            TIMER_IDENTS.discard(ident)

    def _serve(self, run: _Run) -> None:
        lock = self._lock
        while True:
            with lock:
                due = self._next_due(run)
            if due is None:
                return
            timer, now = due
            following: float | None = None
            try:
                following = timer.tick(now)
            except Exception:  # one client's bug must not end the thread of all
                log.exception("internal error in the timer tick of %s", timer.name)
                following = now + 1.0
            with lock:
                timer.running = False
                self._idle.notify_all()
                if timer.stopped:
                    continue
                timer.target = math.inf
                if timer.dirty:
                    timer.dirty = False
                    self._push(timer, -math.inf)
                elif following is not None:
                    self._push(timer, following)


#: The thread idents of the running timer threads (a cheap check on every blocking call).
TIMER_IDENTS: set[int] = set()
_shared: TimerService | None = None
_shared_lock = threading.Lock()


def shared_service() -> TimerService:
    """The process-wide schedule (created on first use, and anew in a forked child)."""
    global _shared
    service = _shared
    if service is None:
        with _shared_lock:
            if _shared is None:
                _shared = TimerService()
            service = _shared
    return service


def is_timer_thread() -> bool:
    """Whether the calling thread is a timer thread (blocking there would stall every client)."""
    return threading.get_ident() in TIMER_IDENTS


def _forget_service_in_child() -> None:
    global _shared, _shared_lock
    _shared = None  # the parent's timer thread does not exist in the child
    _shared_lock = threading.Lock()
    TIMER_IDENTS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_service_in_child)
