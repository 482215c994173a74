"""A channel's ordered inbox, run on the shared :class:`~.scheduler.Scheduler`.

Items are handled one at a time and in order, but never by a dedicated
thread: when the first item arrives the mailbox submits itself to the
scheduler, and it hands the worker back after a batch so that one busy
channel cannot monopolise a worker while others wait.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from .scheduler import Scheduler

T = TypeVar("T")

_BATCH = 64


class Mailbox(Generic[T]):
    """Serial executor of ``handle(item)`` for one channel."""

    def __init__(self, scheduler: Scheduler, handle: Callable[[T], None], *, active: bool = True) -> None:
        """Create a mailbox; an inactive one queues items until :meth:`activate`."""
        self._scheduler = scheduler
        self._handle = handle
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._active = active
        self._scheduled = False
        self._closed = False

    def put(self, item: T) -> bool:
        """Queue ``item``; returns ``False`` if the mailbox is closed."""
        with self._lock:
            if self._closed:
                return False
            self._items.append(item)
            if self._scheduled or not self._active:
                return True
            self._scheduled = True
        self._scheduler.submit(self._run)
        return True

    def activate(self) -> None:
        """Start handling items (those queued meanwhile run first, in order)."""
        with self._lock:
            self._active = True
            if self._scheduled or not self._items or self._closed:
                return
            self._scheduled = True
        self._scheduler.submit(self._run)

    def close(self) -> None:
        """Drop queued items and refuse new ones."""
        with self._lock:
            self._closed = True
            self._items.clear()

    def _run(self) -> None:
        for _ in range(_BATCH):
            with self._lock:
                if self._closed or not self._items:
                    self._scheduled = False
                    return
                item = self._items.popleft()
            self._handle(item)
        with self._lock:
            if self._closed or not self._items:
                self._scheduled = False
                return
        self._scheduler.submit(self._run)
