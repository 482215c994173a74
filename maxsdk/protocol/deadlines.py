"""A set of named deadlines: the pure replacement for phoenix.js's ``setTimeout`` calls.

The protocol core never sleeps. It sets deadlines by key (``("push", ref)``,
``("heartbeat",)``...), and the runtime's timer thread asks for the earliest
one, waits until then, and hands back the current time. Setting a key again
moves its deadline; cancelling it is O(1) (stale heap entries are skipped and
the heap is compacted when they pile up).
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, Hashable, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Deadlines keyed by hashable values, earliest first."""

    __slots__ = ("_heap", "_lowest_set", "_seq", "_when")

    def __init__(self) -> None:
        self._when: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._lowest_set = math.inf

    def set(self, key: K, when: float) -> None:
        """Set (or move) the deadline of ``key`` to the monotonic time ``when``."""
        self._when[key] = when
        if when < self._lowest_set:
            self._lowest_set = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._when):
            self._compact()

    def take_lowest_set(self) -> float:
        """The earliest deadline set since the last call (``inf`` if none); resets it.

        The runtime uses it to wake its timer thread only when a deadline
        earlier than the one it sleeps until appeared.
        """
        lowest, self._lowest_set = self._lowest_set, math.inf
        return lowest

    def cancel(self, key: K) -> None:
        """Forget ``key``; a no-op when it has no deadline."""
        self._when.pop(key, None)

    def get(self, key: K) -> float | None:
        """The deadline of ``key``, or ``None``."""
        return self._when.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._when

    def __len__(self) -> int:
        return len(self._when)

    def next(self) -> float | None:
        """The earliest deadline, or ``None`` when there is none."""
        heap = self._heap
        while heap:
            when, _, key = heap[0]
            if self._when.get(key) == when:
                return when
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[K]:
        """Remove and return the keys whose deadline is ``<= now``, earliest first."""
        heap = self._heap
        expired: list[K] = []
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._when.get(key) == when:
                del self._when[key]
                expired.append(key)
        return expired

    def clear(self) -> None:
        """Forget every deadline."""
        self._when.clear()
        self._heap.clear()

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if self._when.get(entry[2]) == entry[0]]
        heapq.heapify(self._heap)
