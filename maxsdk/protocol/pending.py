"""Requests awaiting replies: unique sortable ids and a bounded table with deadlines.

:class:`RequestIds` hands out ids from one counter that never restarts, so an
id is never reused within a connection (nor across connections of one
client): a late reply can never be taken for the answer to a newer request.
Integers sort naturally; string ids are zero-padded to sort the same way.

:class:`PendingTable` maps each id to its entry (a waiter and whatever the
session needs to finish it) and to its own deadline. It refuses new entries
beyond ``max_pending`` (:class:`~maxsdk.errors.CapacityError`); the session
asks it for the entries whose deadline passed (:meth:`PendingTable.expire`)
when the earliest one is due, and for everything in flight when the
connection drops (:meth:`PendingTable.connection_lost`: durable entries are
kept to be sent again, the rest are handed back to be failed).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from maxsdk.errors import CapacityError
from maxsdk.protocol.deadlines import Deadlines
from maxsdk.protocol.handler import Frame, RequestId

__all__ = ["PendingRequest", "PendingTable", "RequestIds"]


class RequestIds:
    """Unique, increasing request ids from one counter.

    Args:
        strings: produce ``"000000000001"``-style strings (they sort as
            the numbers do) instead of integers.
        prefix: prepended to string ids (e.g. a per-client tag).
        start: the first id.

    """

    __slots__ = ("_counter", "_prefix", "_strings")

    def __init__(self, *, strings: bool = False, prefix: str = "", start: int = 1) -> None:
        self._counter = itertools.count(start)
        self._strings = strings
        self._prefix = prefix

    def next(self) -> RequestId:
        """The next id."""
        number = next(self._counter)
        if self._strings:
            return f"{self._prefix}{number:012d}"
        return number

    def __iter__(self) -> Iterator[RequestId]:
        while True:
            yield self.next()


@dataclass(eq=False)
class PendingRequest:
    """One request in flight (or waiting to be sent).

    Attributes:
        request_id: its id.
        kind: what it is for the session (``"call"``, ``"subscribe"``,
            ``"unsubscribe"``, ``"auth"``, ``"ping"``).
        method: the method or operation (for error messages).
        waiter: who gets the outcome (``None``: nobody waits).
        deadline: the monotonic time at which it times out.
        frame: the encoded frame, kept to send it (again) later.
        durable: send it again after a reconnect instead of failing it.
        sent: whether it went out on the current connection.
        topic: the topic it belongs to, if any.
        context: anything else the session needs to finish it.

    """

    request_id: RequestId
    kind: str
    method: str
    waiter: Any
    deadline: float
    frame: Frame | None = None
    durable: bool = False
    sent: bool = False
    topic: str | None = None
    context: Any = field(default=None)


class PendingTable:
    """Requests by id, each with its own deadline, bounded by ``max_pending``."""

    __slots__ = ("_deadlines", "_entries", "max_pending")

    def __init__(self, max_pending: int | None = None) -> None:
        self.max_pending = max_pending
        self._entries: dict[RequestId, PendingRequest] = {}
        self._deadlines: Deadlines[RequestId] = Deadlines()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._entries

    def check_capacity(self, count: int = 1) -> None:
        """Raise :class:`CapacityError` unless ``count`` more entries fit."""
        limit = self.max_pending
        if limit is not None and len(self._entries) + count > limit:
            raise CapacityError(f"{limit} requests are already awaiting replies (max_pending_requests)")

    def add(self, entry: PendingRequest, *, check: bool = True) -> None:
        """Register ``entry`` under its id, with its deadline.

        Raises:
            CapacityError: the table is full (unless ``check=False``, for
                the session's own bookkeeping requests).
            ValueError: the id is already in use (a bug in the id source).

        """
        if check:
            self.check_capacity()
        if entry.request_id in self._entries:
            raise ValueError(f"request id {entry.request_id!r} is already in use")
        self._entries[entry.request_id] = entry
        self._deadlines.set(entry.request_id, entry.deadline)

    def get(self, request_id: RequestId) -> PendingRequest | None:
        """The entry of ``request_id``, if still pending."""
        return self._entries.get(request_id)

    def pop(self, request_id: Any) -> PendingRequest | None:
        """Remove and return the entry of ``request_id`` (``None`` if unknown or finished)."""
        entry = self._entries.pop(request_id, None)
        if entry is not None:
            self._deadlines.cancel(request_id)
        return entry

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending entry, or ``None``."""
        return self._deadlines.next()

    def take_lowest_set(self) -> float:
        """The earliest deadline added since the last call (``inf`` if none)."""
        return self._deadlines.take_lowest_set()

    def expire(self, now: float) -> list[PendingRequest]:
        """Remove and return every entry whose deadline is ``<= now``, earliest first."""
        entries = self._entries
        return [entries.pop(request_id) for request_id in self._deadlines.due(now) if request_id in entries]

    def connection_lost(self) -> tuple[list[PendingRequest], list[PendingRequest]]:
        """The connection dropped: split what was sent into ``(lost, kept)``.

        Lost entries (sent, not durable) are removed; durable ones stay,
        marked unsent, to go out again on the next connection. Entries that
        were never sent are untouched.
        """
        lost: list[PendingRequest] = []
        kept: list[PendingRequest] = []
        for entry in list(self._entries.values()):
            if not entry.sent:
                continue
            if entry.durable:
                entry.sent = False
                kept.append(entry)
            else:
                self.pop(entry.request_id)
                lost.append(entry)
        return lost, kept

    def unsent(self) -> list[PendingRequest]:
        """Entries waiting to be sent, oldest first."""
        return [entry for entry in self._entries.values() if not entry.sent]

    def clear(self) -> list[PendingRequest]:
        """Remove and return every entry."""
        entries = list(self._entries.values())
        self._entries.clear()
        self._deadlines.clear()
        return entries

    def values(self) -> list[PendingRequest]:
        """Every pending entry, oldest first."""
        return list(self._entries.values())
