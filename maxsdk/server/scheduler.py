"""An elastic pool of worker threads that runs channel mailboxes.

Phoenix gives every channel its own process; a thread per channel would not
scale to thousands of joins, so channels are mailboxes (see ``mailbox.py``)
run by this pool instead. A worker is added whenever queued tasks outnumber
idle workers (up to ``max_workers``), so a callback that blocks keeps only
its own worker busy; workers that stay idle for ``idle_timeout`` exit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from maxsdk._runtime.threads import start_thread

logger = logging.getLogger(__name__)

Task = Callable[[], None]


class Scheduler:
    """Runs submitted tasks on a bounded, self-sizing set of worker threads."""

    def __init__(self, *, max_workers: int = 256, idle_timeout: float = 5.0, name: str = "maxsdk-server") -> None:
        """Create an empty pool; threads start on demand."""
        self._max_workers = max_workers
        self._idle_timeout = idle_timeout
        self._name = name
        self._tasks: deque[Task] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._spawned = 0
        self._stopping = False

    def submit(self, task: Task) -> None:
        """Queue ``task``; it runs soon on some worker. Dropped after :meth:`stop`."""
        with self._cond:
            if self._stopping:
                logger.debug("scheduler stopped; dropping task %r", task)
                return
            self._tasks.append(task)
            if len(self._tasks) > self._idle and len(self._threads) < self._max_workers:
                self._spawn()
            else:
                self._cond.notify()

    @property
    def thread_count(self) -> int:
        """How many worker threads exist right now."""
        with self._cond:
            return len(self._threads)

    def stop(self, timeout: float | None = None) -> bool:
        """Run what is queued, then end every worker and join it.

        Returns:
            ``True`` if every worker ended within ``timeout``.

        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            logger.warning("worker threads still busy after stop: %s", ", ".join(alive))
        return not alive

    def _spawn(self) -> None:
        self._spawned += 1
        thread = threading.Thread(target=self._work, name=f"{self._name}-worker-{self._spawned}", daemon=True)
        self._threads.add(thread)
        start_thread(thread, runs_user_code=True)  # it runs the channels' callbacks

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            task = self._next_task()
            if task is None:
                with self._cond:
                    self._threads.discard(me)
                return
            try:
                task()
            except Exception:
                logger.exception("unhandled error in a server task")

    def _next_task(self) -> Task | None:
        with self._cond:
            while not self._tasks:
                if self._stopping:
                    return None
                self._idle += 1
                try:
                    woke = self._cond.wait(self._idle_timeout)
                finally:
                    self._idle -= 1
                if not woke and not self._tasks and not self._stopping:
                    return None
            return self._tasks.popleft()
