"""The disk-backed store of the durable outbox, on persist-queue's ``SQLiteAckQueue``.

Messages live in one SQLite table managed by a ``SQLiteAckQueue`` subclass
(WAL journal, JSON serializer — never pickle — and ``multithreading=True``, so
any thread may call the store). persist-queue's row states carry the outbox's
meaning:

=================  ==========================================================
``inited/ready``   waiting to be sent
``unack``          handed out by :meth:`OutboxStore.take_batch`, not acked yet
``acked``          delivered; rows are deleted by ``clear_acked_data`` every
                   ``clear_acked_every`` acks and when the store opens or closes
``ack_failed``     a dead letter: kept with its reason until retried or purged
=================  ==========================================================

Crash safety: a process killed between ``take_batch`` and ``ack`` leaves rows
in ``unack``; opening the store again runs persist-queue's
``resume_unack_tasks``, which makes them ready again, in their original
order. Delivery is therefore *at least once*: the receiver drops duplicates by
the record's ``idempotency_key``.

Batching: persist-queue commits every single operation (about 2,000 get+ack
per second on a plain disk). ``SQLiteAckQueue`` does not support
``auto_commit=False`` (it warns and turns it back on), so the queue keeps
``auto_commit=True`` for its own few calls (``resume_unack_tasks``,
``clear_acked_data``) and every batch operation of this store — a
``put_many``, a ``take_batch``, an ``ack`` of many keys — runs as ONE explicit
transaction on the queue's connection: one commit, one fsync, whatever the
batch size. A failed transaction is rolled back whole (nothing half-written)
and the in-memory index is only updated after the commit succeeded. Measured
with ``bench/outbox_store.py`` on the 2-core development machine,
``synchronous="full"``, 50 topics: batches of 100 store 23,000-60,000
messages/s and take+ack 17,000-57,000/s (the disk's fsync time varies
between runs); batches of 10, about 16,000 and 13,000/s; one by one, about
3,000 and 2,000/s, like persist-queue's own ``put``/``get``+``ack``.

Ordering: an in-memory index (rebuilt from the table when the store opens; the
file lock guarantees nobody else writes it) keeps each topic's ready messages
in insertion order and a heap of the topics' first messages by ``(priority,
insertion order)``. A topic's message is never handed out while more than
``max_in_flight_per_topic - 1`` of its older messages are in flight (default
1: item k+1 waits for item k's ack, nack or dead letter), and never before an
older message of the same topic, whatever their priorities. Priorities order
the topics' first messages: high, then normal, then low.

Exclusive use: the store holds ``fcntl.flock`` on ``<path>/outbox.lock`` from
open to close; a second opener — in this process or another — gets
:class:`~maxsdk.errors.OutboxLockedError`. The kernel releases the lock when
the holder dies, even by SIGKILL.

Errors: every ``sqlite3`` and ``OSError`` failure maps, in :func:`_map_error`,
to :class:`~maxsdk.errors.OutboxError` subclasses: disk full or read-only
(:class:`~maxsdk.errors.OutboxStorageError` with ``reason``), corrupt file
(:class:`~maxsdk.errors.OutboxCorruptError`), locked
(:class:`~maxsdk.errors.OutboxLockedError`). A call that raises had no effect.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import logging
import os
import resource
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Literal, cast

import persistqueue.serializers.json as json_serializer
from persistqueue import SQLiteAckQueue
from persistqueue.sqlackqueue import AckStatus

from maxsdk._runtime.outbox_record import (
    OutboxMessage,
    OutboxRecord,
    Priority,
    decode_record,
    encode_message,
    new_key,
)
from maxsdk._runtime.threads import wait_slice
from maxsdk.errors import (
    ConfigurationError,
    OutboxClosedError,
    OutboxCorruptError,
    OutboxError,
    OutboxFullError,
    OutboxLockedError,
    OutboxStorageError,
)

__all__ = ["OutboxMessage", "OutboxRecord", "OutboxStats", "OutboxStore", "Priority"]

log = logging.getLogger("maxsdk.outbox")

DB_FILE = "outbox.db"
LOCK_FILE = "outbox.lock"
_READY, _UNACK, _ACKED, _DEAD = (
    int(s) for s in (AckStatus.ready, AckStatus.unack, AckStatus.acked, AckStatus.ack_failed)
)
#: Free bytes under which a failed write is reported as a full disk.
_LOW_SPACE = 1 << 20
#: A file this close to ``RLIMIT_FSIZE`` counts as having reached it (a write of a few pages failed).
_FSIZE_MARGIN = 64 << 10
#: SQLite's historical limit on bound parameters per statement.
_MAX_PARAMS = 900
Overflow = Literal["refuse", "block"]
Synchronous = Literal["full", "normal"]


class _OutboxQueue(SQLiteAckQueue):
    """persist-queue's ack queue with the outbox's columns next to its own ``_id, data, timestamp, status``."""

    _TABLE_NAME = "outbox"
    _SQL_CREATE = (
        "CREATE TABLE IF NOT EXISTS {table_name} ("
        "{key_column} INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB, timestamp FLOAT, status INTEGER, "
        "idem_key TEXT NOT NULL DEFAULT '', topic TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL DEFAULT 1, "
        "expires_at REAL, attempts INTEGER NOT NULL DEFAULT 0, dead_reason TEXT, dead_at REAL)"
    )


@dataclass(frozen=True)
class OutboxStats:
    """A snapshot of an :class:`OutboxStore`.

    Attributes:
        ready: messages waiting to be sent.
        in_flight: messages handed out and not yet acked, nacked or dead-lettered.
        dead: dead letters.
        bytes: serialized size of every stored message (ready, in flight, dead).
        max_messages: the bound on stored messages (``None`` = unbounded).
        max_bytes: the bound on stored bytes (``None`` = unbounded).
        put: messages accepted since open.
        acked: messages acked since open.
        nacked: messages returned by nack since open.
        dead_lettered: messages dead-lettered since open.
        expired: messages expired since open.
        refused: messages refused by the size bound since open.

    """

    ready: int
    in_flight: int
    dead: int
    bytes: int
    max_messages: int | None
    max_bytes: int | None
    put: int
    acked: int
    nacked: int
    dead_lettered: int
    expired: int
    refused: int


@dataclass
class _Entry:
    """The in-memory index entry of one stored message (no payload)."""

    rowid: int
    key: str
    topic: str
    priority: int
    created_at: float
    expires_at: float | None
    size: int
    state: int  # _READY, _UNACK or _DEAD
    in_lane: bool = False


class OutboxStore:
    """A durable, bounded, ordered message store for the outbox (see the module docstring).

    Args:
        path: a directory for ``outbox.db`` and ``outbox.lock`` (created if missing).
        max_messages: the most messages stored (ready, in flight and dead); ``None`` = no bound.
        max_bytes: the most serialized bytes stored; ``None`` = no bound.
        overflow: at a bound, ``"refuse"`` (default) raises
            :class:`~maxsdk.errors.OutboxFullError` at once; ``"block"`` waits
            up to the call's ``timeout`` for room, then raises it. Nothing is
            ever dropped to make room.
        max_in_flight_per_topic: messages of one topic handed out at once (1 =
            strict: the next one waits for the previous one's outcome).
        synchronous: ``"full"`` (default): a commit is on disk before it
            returns, even after a power loss; ``"normal"`` (WAL): safe when the
            process crashes, the last commits may be lost on a power loss, faster.
        clear_acked_every: acked rows are deleted after this many acks.
        clock: epoch clock for ``created_at`` and TTLs.
        busy_timeout: seconds SQLite waits for its own file locks.

    Raises:
        OutboxLockedError: another store holds the directory.
        OutboxCorruptError: the database file is not a valid outbox database.
        OutboxStorageError: the directory or file cannot be created or written.

    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_messages: int | None = 100_000,
        max_bytes: int | None = None,
        overflow: Overflow = "refuse",
        max_in_flight_per_topic: int = 1,
        synchronous: Synchronous = "full",
        clear_acked_every: int = 1000,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> None:
        _check_options(max_messages, max_bytes, overflow, max_in_flight_per_topic, synchronous, clear_acked_every)
        self.path = os.fspath(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.overflow = overflow
        self.max_in_flight_per_topic = max_in_flight_per_topic
        self.synchronous = synchronous
        self.clear_acked_every = clear_acked_every
        self._clock = clock
        self._lock = threading.Lock()
        self._ready_cond = threading.Condition(self._lock)
        self._space_cond = threading.Condition(self._lock)
        self._closed = False
        self._entries: dict[str, _Entry] = {}
        self._by_rowid: dict[int, _Entry] = {}
        self._lanes: dict[str, deque[_Entry]] = {}
        self._in_flight: dict[str, int] = {}
        self._heads: list[tuple[int, int, str]] = []
        self._ttl_heap: list[tuple[float, int]] = []
        self._counts = {_READY: 0, _UNACK: 0, _DEAD: 0}
        self._bytes = 0
        self._acked_since_clear = 0
        self._totals = dict.fromkeys(("put", "acked", "nacked", "dead_lettered", "expired", "refused"), 0)
        self._lock_fd = self._acquire_file_lock()
        try:
            self._queue, self._conn, self._table = self._open_queue(busy_timeout)
            self._load()
        except BaseException:
            self._release_file_lock()
            raise

    # -- opening --------------------------------------------------------------------------

    def _acquire_file_lock(self) -> int:
        try:
            os.makedirs(self.path, exist_ok=True)
            fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _map_error(exc, self.path, "create the outbox directory") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutboxLockedError(
                    f"the outbox at {self.path} is in use by another store{holder}", path=self.path, reason="locked"
                ) from None
            raise _map_error(exc, self.path, "lock the outbox") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd

    def _release_file_lock(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _open_queue(self, busy_timeout: float) -> tuple[Any, sqlite3.Connection, str]:
        try:
            queue = _OutboxQueue(
                self.path,
                db_file_name=DB_FILE,
                multithreading=True,
                auto_commit=True,  # the only mode SQLiteAckQueue supports; batches use explicit transactions
                serializer=json_serializer,
                timeout=busy_timeout,
                auto_resume=False,  # resumed below, after counting what was in flight
            )
        except sqlite3.Error as exc:
            raise _map_error(exc, self.path, "open the outbox") from exc
        try:
            conn = cast(sqlite3.Connection, queue._putter)
            table = queue._table_name
            for connection in (conn, cast(sqlite3.Connection, queue._getter)):
                connection.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(f"CREATE INDEX IF NOT EXISTS `{table.strip('`')}_status` ON {table} (status)")
            conn.commit()
            resumed = queue.unack_count()
            queue.resume_unack_tasks()  # persist-queue: unack rows (a crash mid-flight) become ready again
            queue.clear_acked_data(max_delete=0, keep_latest=0)
        except sqlite3.Error as exc:
            queue.close()
            raise _map_error(exc, self.path, "open the outbox") from exc
        if resumed:
            log.info("outbox %s: %d messages in flight when it was last closed are ready again", self.path, resumed)
        return queue, conn, table

    def _load(self) -> None:
        """Rebuild the in-memory index from the table (every row not acked, in insertion order)."""
        sql = (
            f"SELECT _id, idem_key, topic, priority, timestamp, expires_at, length(data), status "
            f"FROM {self._table} WHERE status != ? ORDER BY _id"
        )
        try:
            rows = self._conn.execute(sql, (_ACKED,)).fetchall()
        except sqlite3.Error as exc:
            raise _map_error(exc, self.path, "read the outbox") from exc
        for rowid, key, topic, priority, created, expires, size, status in rows:
            state = _DEAD if status == _DEAD else _READY
            entry = _Entry(rowid, key, topic, priority, created, expires, size or 0, state)
            self._index(entry)
            if state == _READY:
                self._lane_append(entry)
        log.debug("outbox %s opened: %s", self.path, self._summary())

    # -- putting ----------------------------------------------------------------------------

    def put(self, message: OutboxMessage, *, timeout: float | None = None) -> str:
        """Store one message durably and return its idempotency key.

        When the key is already stored (ready, in flight or dead), nothing is
        written and the key is returned: putting the same message twice is harmless.

        Args:
            message: the message.
            timeout: with ``overflow="block"``, the most seconds to wait for room.

        Raises:
            OutboxFullError: the store is at a bound (after ``timeout`` with ``"block"``).
            OutboxStorageError: the disk refused; the message was not stored.
            ConfigurationError: the message is invalid (e.g. its payload is not JSON).

        """
        return self.put_many([message], timeout=timeout)[0]

    def put_many(self, messages: Iterable[OutboxMessage], *, timeout: float | None = None) -> list[str]:
        """Store messages in one transaction: all of them, or (on an error) none.

        Returns:
            Their idempotency keys, in order.

        Raises:
            OutboxFullError: they do not all fit (nothing is stored).
            OutboxStorageError: the disk refused (nothing is stored).
            ConfigurationError: one of them is invalid (nothing is stored).

        """
        now = self._clock()
        rows: list[tuple[str, OutboxMessage, bytes, Priority, float | None]] = []
        keys: list[str] = []
        for message in messages:
            key = message.idempotency_key or new_key(now)
            data, priority, expires_at = encode_message(message, key, now)
            rows.append((key, message, data, priority, expires_at))
            keys.append(key)
        with self._lock:
            self._check_open()
            fresh = self._dedupe(rows)
            self._wait_for_room(len(fresh), sum(len(row[2]) for row in fresh), timeout)
            entries = self._insert(fresh, now)
            for entry in entries:
                self._index(entry)
                self._lane_append(entry)
            self._totals["put"] += len(entries)
            if entries:
                self._ready_cond.notify_all()
        return keys

    def _dedupe(
        self, rows: list[tuple[str, OutboxMessage, bytes, Priority, float | None]]
    ) -> list[tuple[str, OutboxMessage, bytes, Priority, float | None]]:
        seen: set[str] = set()
        fresh = []
        for row in rows:
            if row[0] in self._entries or row[0] in seen:
                continue
            seen.add(row[0])
            fresh.append(row)
        return fresh

    def _wait_for_room(self, count: int, size: int, timeout: float | None) -> None:
        """Return when ``count`` messages of ``size`` bytes fit; raise per the overflow policy."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            unit, limit = self._overflowing(count, size)
            if unit is None:
                return
            never_fits = (self.max_messages is not None and count > self.max_messages) or (
                self.max_bytes is not None and size > self.max_bytes
            )
            if self.overflow == "block" and not never_fits and (deadline is None or deadline > time.monotonic()):
                self._space_cond.wait(wait_slice(None if deadline is None else deadline - time.monotonic()))
                self._check_open()
                continue
            self._totals["refused"] += count
            log.warning("outbox %s full (%d %s): %d message(s) refused", self.path, limit, unit, count)
            raise OutboxFullError(
                f"the outbox at {self.path} is full ({limit} {unit}); the message was not accepted",
                limit=limit,
                unit=unit,
                path=self.path,
            )

    def _overflowing(self, count: int, size: int) -> tuple[str | None, int]:
        """``(unit, limit)`` of the bound that ``count`` more messages of ``size`` bytes would pass, if any."""
        stored = len(self._entries)
        if count and self.max_messages is not None and stored + count > self.max_messages:
            return "messages", self.max_messages
        if count and self.max_bytes is not None and self._bytes + size > self.max_bytes:
            return "bytes", self.max_bytes
        return None, 0

    def _insert(self, rows: list[tuple[str, OutboxMessage, bytes, Priority, float | None]], now: float) -> list[_Entry]:
        sql = (
            f"INSERT INTO {self._table} (data, timestamp, status, idem_key, topic, priority, expires_at, attempts) "
            f"VALUES (?, ?, {_READY}, ?, ?, ?, ?, 0)"
        )
        entries = []
        with self._transaction("store messages") as conn:
            for key, message, data, priority, expires_at in rows:
                cursor = conn.execute(sql, (data, now, key, message.topic, int(priority), expires_at))
                rowid = cast(int, cursor.lastrowid)
                entries.append(_Entry(rowid, key, message.topic, int(priority), now, expires_at, len(data), _READY))
        return entries

    # -- taking and settling ------------------------------------------------------------------

    def take_batch(
        self, n: int, *, now: float | None = None, topics: Container[str] | None = None
    ) -> list[OutboxRecord]:
        """Hand out up to ``n`` ready messages, marked in flight until ack, nack or dead letter.

        Order: by priority across topics, insertion order within a topic, and
        at most ``max_in_flight_per_topic`` of a topic in flight. Expired
        messages are skipped (and left for :meth:`expire` to report).
        ``topics`` limits the batch to those topics (e.g. the joined channels).

        Raises:
            OutboxStorageError: the disk refused; nothing was handed out.

        """
        if n < 1:
            return []
        now = self._clock() if now is None else now
        with self._lock:
            self._check_open()
            chosen = self._choose(n, now, topics)
            if not chosen:
                return []
            try:
                rows = self._mark_taken(chosen)
            except OutboxError:
                self._return_to_lanes(chosen)
                raise
        by_rowid = {row[0]: row for row in rows}
        return [decode_record(by_rowid[e.rowid][1], by_rowid[e.rowid][2]) for e in chosen]

    def _choose(self, n: int, now: float, topics: Container[str] | None = None) -> list[_Entry]:
        chosen: list[_Entry] = []
        skipped: list[tuple[int, int, str]] = []
        while self._heads and len(chosen) < n:
            head = heapq.heappop(self._heads)
            _, rowid, topic = head
            lane = self._lanes.get(topic)
            if not lane or lane[0].rowid != rowid or self._in_flight.get(topic, 0) >= self.max_in_flight_per_topic:
                continue  # stale heap entry
            if topics is not None and topic not in topics:
                skipped.append(head)  # not deliverable now; keep its place
                continue
            entry = lane.popleft()
            entry.in_lane = False
            if entry.expires_at is not None and entry.expires_at <= now:
                pass  # expired while waiting: out of its lane, still stored, reported by expire()
            else:
                entry.state = _UNACK
                self._counts[_READY] -= 1
                self._counts[_UNACK] += 1
                self._in_flight[topic] = self._in_flight.get(topic, 0) + 1
                chosen.append(entry)
            self._push_head(topic)
        for head in skipped:
            heapq.heappush(self._heads, head)
        return chosen

    def _mark_taken(self, chosen: list[_Entry]) -> list[tuple[int, bytes, int]]:
        rows: list[tuple[int, bytes, int]] = []
        with self._transaction("hand out messages") as conn:
            for chunk in _chunks([e.rowid for e in chosen]):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"UPDATE {self._table} SET status = {_UNACK} WHERE _id IN ({marks})", chunk)
                rows += conn.execute(f"SELECT _id, data, attempts FROM {self._table} WHERE _id IN ({marks})", chunk)
        return rows

    def ack(self, keys: Iterable[str]) -> int:
        """Mark messages delivered (one transaction); return how many were stored. Unknown keys are ignored.

        Raises:
            OutboxStorageError: the disk refused; nothing was acked.

        """
        with self._lock:
            self._check_open()
            entries = self._find(keys, (_UNACK, _READY))
            if not entries:
                return 0
            self._update(entries, f"status = {_ACKED}", (), "ack messages")
            self._drop_from_lanes(entries)
            for entry in entries:
                self._forget(entry)
            self._totals["acked"] += len(entries)
            self._acked_since_clear += len(entries)
            if self._acked_since_clear >= self.clear_acked_every:
                self._clear_acked()
            self._space_cond.notify_all()
            self._ready_cond.notify_all()
        return len(entries)

    def nack(self, keys: Iterable[str]) -> int:
        """Return in-flight messages to ready (lost connection, timeout), ``attempts`` + 1; return how many.

        They keep their place: each is again its topic's next message.

        Raises:
            OutboxStorageError: the disk refused; nothing changed.

        """
        with self._lock:
            self._check_open()
            entries = self._find(keys, (_UNACK,))
            if not entries:
                return 0
            self._update(entries, f"status = {_READY}, attempts = attempts + 1", (), "return messages")
            self._return_to_lanes(entries)
            self._totals["nacked"] += len(entries)
            self._ready_cond.notify_all()
        return len(entries)

    def dead_letter(self, keys: Iterable[str], reason: str) -> int:
        """Set messages aside (an error reply): kept with ``reason`` until retried or purged; return how many.

        The topic's next message becomes deliverable.

        Raises:
            OutboxStorageError: the disk refused; nothing changed.

        """
        now = self._clock()
        with self._lock:
            self._check_open()
            entries = self._find(keys, (_UNACK, _READY))
            if not entries:
                return 0
            self._update(entries, f"status = {_DEAD}, dead_reason = ?, dead_at = ?", (str(reason), now), "dead-letter")
            touched = set()
            for entry in entries:
                if entry.state == _UNACK:
                    self._in_flight[entry.topic] -= 1
                self._set_state(entry, _DEAD)
                touched.add(entry.topic)
            self._drop_from_lanes(entries)
            for topic in touched:
                self._push_head(topic)
            self._totals["dead_lettered"] += len(entries)
            self._ready_cond.notify_all()
        log.warning("outbox %s: %d message(s) dead-lettered: %s", self.path, len(entries), reason)
        return len(entries)

    def expire(self, now: float | None = None) -> list[OutboxRecord]:
        """Remove the waiting messages whose TTL has passed and return them, for the caller to report.

        In-flight messages are left to their ack or nack; dead letters never expire.

        Raises:
            OutboxStorageError: the disk refused; nothing was removed.

        """
        now = self._clock() if now is None else now
        with self._lock:
            self._check_open()
            found: dict[int, _Entry] = {}
            keep = []
            while self._ttl_heap and self._ttl_heap[0][0] <= now:
                item = heapq.heappop(self._ttl_heap)
                entry = self._by_rowid.get(item[1])
                if entry is not None and entry.state == _READY:
                    found[entry.rowid] = entry
                elif entry is not None and entry.state == _UNACK:
                    keep.append(item)  # decided when it comes back
            for item in keep:
                heapq.heappush(self._ttl_heap, item)
            due = list(found.values())
            if not due:
                return []
            try:
                records = self._delete(due, "expire messages")
            except OutboxError:
                for entry in due:
                    heapq.heappush(self._ttl_heap, (cast(float, entry.expires_at), entry.rowid))
                raise
            self._drop_from_lanes(due)
            for entry in due:
                self._forget(entry)
            self._totals["expired"] += len(due)
            self._space_cond.notify_all()
        log.warning("outbox %s: %d message(s) expired before delivery", self.path, len(records))
        return records

    # -- dead letters ----------------------------------------------------------------------------

    def list_dead(self, limit: int | None = None) -> list[OutboxRecord]:
        """The dead letters, oldest first, with ``dead_reason`` and ``dead_at``."""
        sql = f"SELECT data, attempts, dead_reason, dead_at FROM {self._table} WHERE status = ? ORDER BY _id"
        params: tuple[int, ...] = (_DEAD,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _map_error(exc, self.path, "list dead letters") from exc
        return [decode_record(data, attempts, reason, at) for data, attempts, reason, at in rows]

    def retry_dead(self, keys: Iterable[str] | None = None) -> int:
        """Make dead letters ready again, in their original place (``None`` = all); return how many."""
        with self._lock:
            self._check_open()
            entries = self._dead_entries(keys)
            if not entries:
                return 0
            self._update(entries, f"status = {_READY}, dead_reason = NULL, dead_at = NULL", (), "retry dead letters")
            for entry in entries:
                self._set_state(entry, _READY)
                self._lane_insert(entry)
                if entry.expires_at is not None:
                    heapq.heappush(self._ttl_heap, (entry.expires_at, entry.rowid))
            self._ready_cond.notify_all()
        return len(entries)

    def purge_dead(self, keys: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (``None`` = all); return how many."""
        with self._lock:
            self._check_open()
            entries = self._dead_entries(keys)
            if not entries:
                return 0
            self._delete(entries, "purge dead letters", decode=False)
            for entry in entries:
                self._forget(entry)
            self._space_cond.notify_all()
        log.info("outbox %s: %d dead letter(s) purged", self.path, len(entries))
        return len(entries)

    # -- observation -----------------------------------------------------------------------------

    def depth(self) -> int:
        """Messages waiting or in flight (dead letters not included)."""
        with self._lock:
            return self._counts[_READY] + self._counts[_UNACK]

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds since the oldest waiting or in-flight message was stored; ``None`` when there is none."""
        now = self._clock() if now is None else now
        with self._lock:
            for entry in self._entries.values():  # insertion order: the first live one is the oldest
                if entry.state != _DEAD:
                    return max(0.0, now - entry.created_at)
        return None

    def stats(self) -> OutboxStats:
        """Counts, sizes, bounds and totals since open."""
        with self._lock:
            return OutboxStats(
                ready=self._counts[_READY],
                in_flight=self._counts[_UNACK],
                dead=self._counts[_DEAD],
                bytes=self._bytes,
                max_messages=self.max_messages,
                max_bytes=self.max_bytes,
                **self._totals,
            )

    def wait_ready(self, timeout: float | None = None, *, topics: Container[str] | None = None) -> bool:
        """Block until a message may be taken (or the store closes); ``False`` on timeout.

        It may return ``True`` and :meth:`take_batch` still return nothing
        (the message expired meanwhile, or another thread took it).

        Args:
            timeout: seconds; ``None`` = no limit.
            topics: only messages of these topics count (as in :meth:`take_batch`).
                The store cannot see this container change: call :meth:`wake`
                after changing it.

        """
        with self._ready_cond:
            return self._ready_cond.wait_for(lambda: self._closed or self._has_head(topics), timeout)

    def wake(self) -> None:
        """Make :meth:`wait_ready` callers check again (e.g. the deliverable topics changed)."""
        with self._ready_cond:
            self._ready_cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- closing -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Clear acked rows, close the database and release the file lock (safe to call twice).

        In-flight messages stay stored and are ready again at the next open.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._clear_acked()
            except OutboxError as exc:
                log.warning("outbox %s: could not clear acked rows on close: %s", self.path, exc)
            self._queue.close()
            self._release_file_lock()
            self._ready_cond.notify_all()
            self._space_cond.notify_all()
        log.debug("outbox %s closed", self.path)

    def __enter__(self) -> OutboxStore:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._summary()
        return f"<OutboxStore {self.path} {state}>"

    # -- the in-memory index -------------------------------------------------------------------------

    def _summary(self) -> str:
        return f"ready={self._counts[_READY]} in_flight={self._counts[_UNACK]} dead={self._counts[_DEAD]}"

    def _index(self, entry: _Entry) -> None:
        self._entries[entry.key] = entry
        self._by_rowid[entry.rowid] = entry
        self._counts[entry.state] += 1
        self._bytes += entry.size
        if entry.expires_at is not None and entry.state != _DEAD:
            heapq.heappush(self._ttl_heap, (entry.expires_at, entry.rowid))

    def _forget(self, entry: _Entry) -> None:
        del self._entries[entry.key]
        del self._by_rowid[entry.rowid]
        self._counts[entry.state] -= 1
        self._bytes -= entry.size
        if entry.state == _UNACK:
            self._in_flight[entry.topic] -= 1
            self._push_head(entry.topic)

    def _set_state(self, entry: _Entry, state: int) -> None:
        self._counts[entry.state] -= 1
        self._counts[state] += 1
        entry.state = state

    def _lane_append(self, entry: _Entry) -> None:
        lane = self._lanes.setdefault(entry.topic, deque())
        lane.append(entry)
        entry.in_lane = True
        if len(lane) == 1:
            self._push_head(entry.topic)

    def _lane_insert(self, entry: _Entry) -> None:
        """Put ``entry`` back in its topic's lane at its insertion-order place."""
        lane = self._lanes.setdefault(entry.topic, deque())
        index = 0
        while index < len(lane) and lane[index].rowid < entry.rowid:
            index += 1  # returned messages are old: the scan stops near the front
        lane.insert(index, entry)
        entry.in_lane = True
        if index == 0:
            self._push_head(entry.topic)

    def _return_to_lanes(self, entries: Sequence[_Entry]) -> None:
        for entry in sorted(entries, key=lambda e: e.rowid, reverse=True):
            self._in_flight[entry.topic] -= 1
            self._set_state(entry, _READY)
            self._lane_insert(entry)
        for topic in {e.topic for e in entries}:
            self._push_head(topic)

    def _drop_from_lanes(self, entries: Iterable[_Entry]) -> None:
        gone = {id(e) for e in entries if e.in_lane}
        for topic in {e.topic for e in entries if e.in_lane}:
            lane = self._lanes[topic]
            self._lanes[topic] = deque(e for e in lane if id(e) not in gone)
            self._push_head(topic)
        for entry in entries:
            entry.in_lane = False

    def _push_head(self, topic: str) -> None:
        """Offer ``topic``'s first ready message to the heap if the topic may send one more."""
        lane = self._lanes.get(topic)
        if not lane:
            self._lanes.pop(topic, None)
            return
        if self._in_flight.get(topic, 0) < self.max_in_flight_per_topic:
            head = lane[0]
            heapq.heappush(self._heads, (head.priority, head.rowid, topic))

    def _has_head(self, topics: Container[str] | None = None) -> bool:
        """Whether a message may be taken now (of one of ``topics``, if given); drops stale heap tops."""
        while self._heads and not self._deliverable(self._heads[0]):
            heapq.heappop(self._heads)
        if topics is None or not self._heads:
            return bool(self._heads)
        return any(head[2] in topics and self._deliverable(head) for head in self._heads)

    def _deliverable(self, head: tuple[int, int, str]) -> bool:
        _, rowid, topic = head
        lane = self._lanes.get(topic)
        if not lane or lane[0].rowid != rowid:
            return False  # a stale heap entry
        return self._in_flight.get(topic, 0) < self.max_in_flight_per_topic

    def _find(self, keys: Iterable[str], states: tuple[int, ...]) -> list[_Entry]:
        found: dict[str, _Entry] = {}
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry.state in states:
                found[key] = entry
        return list(found.values())

    def _dead_entries(self, keys: Iterable[str] | None) -> list[_Entry]:
        if keys is None:
            return [e for e in self._entries.values() if e.state == _DEAD]
        return self._find(keys, (_DEAD,))

    # -- SQL ------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxClosedError(f"the outbox at {self.path} is closed", path=self.path, reason="closed")

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One transaction on the queue's connection: committed on success, rolled back on any error."""
        try:
            with self._queue.tran_lock, self._conn:
                yield self._conn
        except sqlite3.Error as exc:
            raise _map_error(exc, self.path, action) from exc

    def _update(self, entries: list[_Entry], assignments: str, params: tuple[Any, ...], action: str) -> None:
        with self._transaction(action) as conn:
            for chunk in _chunks([e.rowid for e in entries]):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"UPDATE {self._table} SET {assignments} WHERE _id IN ({marks})", (*params, *chunk))

    def _delete(self, entries: list[_Entry], action: str, *, decode: bool = True) -> list[OutboxRecord]:
        records: list[OutboxRecord] = []
        with self._transaction(action) as conn:
            for chunk in _chunks([e.rowid for e in entries]):
                marks = ",".join("?" * len(chunk))
                if decode:
                    rows = conn.execute(f"SELECT data, attempts FROM {self._table} WHERE _id IN ({marks})", chunk)
                    records += [decode_record(data, attempts) for data, attempts in rows]
                conn.execute(f"DELETE FROM {self._table} WHERE _id IN ({marks})", chunk)
        return records

    def _clear_acked(self) -> None:
        try:
            self._queue.clear_acked_data(max_delete=0, keep_latest=0)  # persist-queue: delete every acked row
        except sqlite3.Error as exc:
            raise _map_error(exc, self.path, "clear acked rows") from exc
        self._acked_since_clear = 0


def _check_options(
    max_messages: int | None,
    max_bytes: int | None,
    overflow: str,
    per_topic: int,
    synchronous: str,
    clear_every: int,
) -> None:
    for name, value in (("max_messages", max_messages), ("max_bytes", max_bytes)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigurationError(f"{name} must be a positive int or None")
    if overflow not in ("refuse", "block"):
        raise ConfigurationError("overflow must be 'refuse' or 'block'")
    if not isinstance(per_topic, int) or per_topic < 1:
        raise ConfigurationError("max_in_flight_per_topic must be a positive int")
    if synchronous not in ("full", "normal"):
        raise ConfigurationError("synchronous must be 'full' or 'normal'")
    if not isinstance(clear_every, int) or clear_every < 1:
        raise ConfigurationError("clear_acked_every must be a positive int")


def _chunks(rowids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(rowids), _MAX_PARAMS):
        yield rowids[start : start + _MAX_PARAMS]


def _read_pid(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


_SQLITE_REASONS = (
    # (sqlite_errorname prefix, message fragment, reason)
    ("SQLITE_FULL", "database or disk is full", "disk_full"),
    ("SQLITE_READONLY", "readonly database", "read_only"),
    ("SQLITE_CORRUPT", "malformed", "corrupt"),
    ("SQLITE_NOTADB", "file is not a database", "corrupt"),
    ("SQLITE_BUSY", "database is locked", "locked"),
    ("SQLITE_LOCKED", "table is locked", "locked"),
    ("SQLITE_CANTOPEN", "unable to open database", "cannot_open"),
    ("SQLITE_IOERR", "disk i/o error", "io"),
)
_ERRNO_REASONS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EFBIG: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "read_only",
    errno.EPERM: "read_only",
}


def _out_of_space(path: str) -> bool:
    """Whether the disk holding ``path`` is (nearly) full, or a file there reached ``RLIMIT_FSIZE``."""
    try:
        fs = os.statvfs(path)
        if fs.f_bavail * fs.f_frsize < _LOW_SPACE:
            return True
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit == resource.RLIM_INFINITY:
            return False
        sizes = (os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
        return any(size + _FSIZE_MARGIN >= limit for size in sizes)
    except OSError:
        return False


def _map_error(exc: BaseException, path: str, action: str) -> OutboxError:
    """The one place that turns ``sqlite3`` and ``OSError`` failures into :class:`OutboxError` subclasses."""
    reason = "error"
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        for prefix, fragment, candidate in _SQLITE_REASONS:
            if name.startswith(prefix) or fragment in text:
                reason = candidate
                break
    elif isinstance(exc, OSError):
        reason = _ERRNO_REASONS.get(exc.errno or 0, "io")
    if reason == "io" and _out_of_space(path):
        reason = "disk_full"  # a write refused for lack of room (EFBIG, quotas) reaches SQLite as an I/O error
    message = f"cannot {action} at {path}: {reason.replace('_', ' ')} ({exc})"
    if reason == "corrupt":
        return OutboxCorruptError(message, path=path, reason=reason)
    if reason == "locked":
        return OutboxLockedError(message, path=path, reason=reason)
    return OutboxStorageError(message, path=path, reason=reason)
