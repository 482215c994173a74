"""The durable outbox: sends that survive disconnects, restarts and crashes.

Enable it per client with a directory, then use :meth:`Channel.send`::

    client = maxsdk.Client(url, outbox="~/.myapp/outbox")
    room = client.join("room:orders")
    key = room.send("new_order", {"id": 42})   # on disk before it returns

Guarantees (see the "Reconnection and the durable outbox" docs page):

* **At least once.** A message stays on disk until the server answers its
  push with an ``ok`` reply. A timeout, a lost connection, a crash or
  ``kill -9`` return it to the queue; it is sent again when its channel is
  joined (by this process or the next one opening the same directory).
* **Deduplication by key.** Every message carries a stable idempotency key in
  its payload (field ``idempotency_key`` by default, see
  :class:`OutboxConfig`), so the server can drop duplicates.
* **Order.** Per topic, messages are first delivered in the order they were
  sent (within one priority class; a high-priority message goes ahead of
  waiting normal ones of *other* topics, never ahead of older messages of its
  own topic).
* **Nothing silently dropped.** An ``error`` reply moves the message to the
  dead letters (listable, retryable, purgeable) and emits
  ``outbox_dead_lettered``; a message whose TTL passes is removed and
  reported through ``outbox_expired``; a full outbox refuses new messages
  with :class:`~maxsdk.errors.OutboxFullError`; a disk error raises
  :class:`~maxsdk.errors.OutboxStorageError` at the call, and the message is
  not accepted.

A background thread (``maxsdk-N-outbox``) takes ready messages of the
channels that are joined and pushes them, many at a time per topic (TCP and the
channel process keep them in order), and settles their outcomes in batches.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maxsdk import signals
from maxsdk._runtime.outbox_store import OutboxMessage, OutboxRecord, OutboxStats, OutboxStore, Priority
from maxsdk._runtime.threads import start_thread, wait_slice
from maxsdk.config import check_seconds
from maxsdk.errors import ConfigurationError, MaxsdkError, OutboxClosedError
from maxsdk.models import to_payload
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.protocol.phoenix.events import Outcome

if TYPE_CHECKING:
    from maxsdk.channel import Channel
    from maxsdk.client import Client

__all__ = ["Outbox", "OutboxConfig", "OutboxRecord", "OutboxStats", "Priority"]

log = logging.getLogger("maxsdk.outbox")

_RETRY = ("timeout", "lost", "closed", "client_closed")


@dataclass(frozen=True)
class OutboxConfig:
    """Settings of a client's durable outbox.

    Attributes:
        path: a directory for the outbox files (created if missing; ``~`` expanded).
        max_messages: the most messages kept (waiting, in flight and dead).
        overflow: ``"refuse"`` (default: :class:`~maxsdk.errors.OutboxFullError`
            at once) or ``"block"`` (wait up to ``put_timeout`` for room).
        put_timeout: seconds :meth:`Channel.send` may wait for room with ``"block"``.
        idempotency_field: the payload field carrying the message's key.
        max_in_flight: messages of one topic pushed before the first is answered.
        reply_timeout: seconds to wait for each reply before sending it again.
        batch_size: messages taken from disk per round trip to the store.
        synchronous: ``"full"`` (default: each send is on disk even after a
            power loss) or ``"normal"`` (safe against a crash, faster).

    """

    path: str
    max_messages: int | None = 100_000
    overflow: str = "refuse"
    put_timeout: float | None = None
    idempotency_field: str = "idempotency_key"
    max_in_flight: int = 100
    reply_timeout: float = 10.0
    batch_size: int = 200
    synchronous: str = "full"

    @classmethod
    def coerce(cls, value: OutboxConfig | str | os.PathLike[str]) -> OutboxConfig:
        """A path becomes ``OutboxConfig(path)``."""
        if isinstance(value, OutboxConfig):
            return value
        if isinstance(value, (str, os.PathLike)):
            return cls(os.path.expanduser(os.fspath(value)))
        raise ConfigurationError(f"outbox must be a directory path or an OutboxConfig, got {value!r}")


class _Waiter:
    """Receives a durable push's outcome on the reader thread and hands it to the outbox."""

    __slots__ = ("created", "event", "key", "outbox", "settled", "topic")

    def __init__(self, outbox: Outbox, record: OutboxRecord) -> None:
        self.outbox = outbox
        self.key = record.idempotency_key
        self.topic = record.topic
        self.event = record.event
        self.created = time.monotonic()
        self.settled = False  # set under the outbox's lock: the first outcome wins

    def _complete(self, outcome: Outcome | BaseException) -> list[Any]:
        self.outbox._settle(self, outcome)
        return []


class Outbox:
    """A client's durable outbox (``client.outbox``); thread-safe.

    Created by :class:`~maxsdk.Client` when it is given ``outbox=``.
    """

    def __init__(self, client: Client, config: OutboxConfig) -> None:
        self._client = client
        self.config = config
        self._store = OutboxStore(
            config.path,
            max_messages=config.max_messages,
            overflow=config.overflow,  # type: ignore[arg-type]
            max_in_flight_per_topic=config.max_in_flight,
            synchronous=config.synchronous,  # type: ignore[arg-type]
        )
        self._cond = threading.Condition(threading.Lock())
        self._settled: list[tuple[_Waiter, Outcome | BaseException]] = []
        self._in_flight = 0
        # Per topic: messages pushed and not settled; topics held back after a failure
        # until everything they had in flight came back (so a retry never overtakes).
        self._topic_in_flight: dict[str, int] = {}
        self._held: set[str] = set()
        # The channel incarnation (join_ref) a topic's in-flight messages went out on: after a
        # rejoin, nothing new goes out until the old incarnation's messages all came back.
        self._topic_join_ref: dict[str, str | None] = {}
        self._wake = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- producing ------------------------------------------------------------------

    def put(
        self,
        topic: str,
        event: str,
        payload: Any = None,
        *,
        priority: Priority | str | int = Priority.NORMAL,
        ttl: float | None = None,
        key: str | None = None,
    ) -> str:
        """Store a message durably (before returning) and return its idempotency key.

        Raises:
            ConfigurationError: the payload is not a JSON object (the key must go in it).
            OutboxFullError: the outbox is full.
            OutboxStorageError: the disk refused; the message was not accepted.
            OutboxClosedError: the client was closed.

        """
        return self.put_many(
            topic, [(event, payload)], priority=priority, ttl=ttl, keys=None if key is None else [key]
        )[0]

    def put_many(
        self,
        topic: str,
        messages: Iterable[tuple[str, Any]],
        *,
        priority: Priority | str | int = Priority.NORMAL,
        ttl: float | None = None,
        keys: Iterable[str] | None = None,
    ) -> list[str]:
        """Store several ``(event, payload)`` messages in one transaction (all or none); return their keys.

        One disk flush for the whole batch: the way to produce thousands of
        durable messages per second from one thread.
        """
        if ttl is not None:
            ttl = check_seconds("ttl", ttl)
        given = list(keys) if keys is not None else None
        if given is not None:
            for given_key in given:
                if not isinstance(given_key, str) or not given_key or len(given_key) > 256:
                    raise ConfigurationError(
                        f"key must be a non-empty string of at most 256 characters, got {given_key!r:.80}"
                    )
        batch = []
        for index, message in enumerate(messages):
            if not isinstance(message, (tuple, list)) or len(message) != 2:
                raise ConfigurationError(f"messages must be (event, payload) pairs, got {type(message).__name__}")
            event, payload = message
            payload = to_payload({} if payload is None else payload)
            if not isinstance(payload, Mapping):
                raise ConfigurationError("durable sends need a JSON object payload (the idempotency key goes in it)")
            key = given[index] if given is not None else None
            batch.append(OutboxMessage(topic, event, dict(payload), priority=priority, ttl=ttl, idempotency_key=key))
        stored = self._store.put_many(batch, timeout=self.config.put_timeout)
        self.wake()
        return stored

    # -- inspecting -------------------------------------------------------------------

    def depth(self) -> int:
        """Messages waiting or in flight (dead letters excluded)."""
        return self._store.depth()

    def oldest_age(self) -> float | None:
        """Seconds since the oldest waiting message was stored (``None`` when empty)."""
        return self._store.oldest_age()

    def stats(self) -> OutboxStats:
        """Counts (ready, in flight, dead), bytes, bounds and totals."""
        return self._store.stats()

    def dead_letters(self, limit: int | None = None) -> list[OutboxRecord]:
        """Messages that got an error reply, oldest first (with ``dead_reason``)."""
        return self._store.list_dead(limit)

    def retry(self, keys: Iterable[str] | None = None) -> int:
        """Queue dead letters again (all when ``keys`` is None); return how many."""
        count = self._store.retry_dead(keys)
        self.wake()
        return count

    def purge(self, keys: Iterable[str] | None = None) -> int:
        """Delete dead letters for good (all when ``keys`` is None); return how many."""
        return self._store.purge_dead(keys)

    def wait_drained(self, timeout: float) -> bool:
        """Block until nothing is waiting or in flight; return whether that happened in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._store.depth() == 0 and self._in_flight == 0 and not self._settled:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(wait_slice(min(remaining, 0.5)))

    # -- the delivery thread ---------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"{self._client._engine.name}-outbox", daemon=True)
            start_thread(self._thread)

    def wake(self) -> None:
        """Ask the delivery thread to look for work (a message, a joined channel, an outcome)."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Settle what came back, stop the thread and close the store (in-flight messages stay queued)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._settle_pending()
        self._store.close()

    @property
    def thread(self) -> threading.Thread | None:
        """The delivery thread, once started."""
        return self._thread

    def _settle(self, waiter: _Waiter, outcome: Outcome | BaseException) -> None:
        with self._cond:
            if waiter.settled:
                return  # settled already (a push that failed here, then was completed by the session)
            waiter.settled = True
            self._settled.append((waiter, outcome))
            self._wake = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._wake and not self._stopping:
                    self._cond.wait(1.0)  # also the TTL sweep period
                self._wake = False
                stopping = self._stopping
            try:
                self._settle_pending()
                self._expire()
                if stopping:
                    return
                self._deliver()
            except OutboxClosedError:
                return
            except MaxsdkError as exc:
                log.error("outbox %s: %s (will retry)", self.config.path, exc)
            except Exception:
                log.exception("outbox %s: internal error", self.config.path)

    def _settle_pending(self) -> None:
        with self._cond:
            settled, self._settled = self._settled, []
        if not settled:
            return
        acked, retried = [], []
        engine = self._client._engine
        for waiter, outcome in settled:
            status = getattr(outcome, "status", "client_closed")
            response = getattr(outcome, "response", None)
            self._topic_in_flight[waiter.topic] -= 1
            if status in _RETRY:
                retried.append(waiter.key)
                self._held.add(waiter.topic)
            elif status == "error":
                self._store.dead_letter([waiter.key], reason=_describe(response))
                if signals.outbox_dead_lettered.receivers:
                    engine.notify(
                        signals.outbox_dead_lettered,
                        key=waiter.key,
                        topic=waiter.topic,
                        event=waiter.event,
                        response=response,
                    )
            else:
                acked.append(waiter.key)
                if signals.outbox_delivered.receivers:
                    engine.notify(
                        signals.outbox_delivered,
                        key=waiter.key,
                        topic=waiter.topic,
                        event=waiter.event,
                        response=response,
                    )
        if acked:
            self._store.ack(acked)
        if retried:
            self._store.nack(retried)
        for topic in [t for t in self._held if not self._topic_in_flight.get(t)]:
            self._held.discard(topic)
        with self._cond:
            self._in_flight -= len(settled)
            self._wake = True
            self._cond.notify_all()

    def _expire(self) -> None:
        for record in self._store.expire():
            self._client._engine.notify(
                signals.outbox_expired,
                key=record.idempotency_key,
                topic=record.topic,
                event=record.event,
                age=record.age(),
            )

    def _deliver(self) -> None:
        joined = self._client._joined_channels()
        for topic in list(joined):
            if topic in self._held or (
                self._topic_in_flight.get(topic) and self._topic_join_ref.get(topic) != joined[topic].join_ref
            ):
                del joined[topic]
        if not joined:
            return
        records = self._store.take_batch(self.config.batch_size, topics=joined)
        if not records:
            return
        serializer = self._client._engine.driver.serializer  # type: ignore[attr-defined]
        field = self.config.idempotency_field
        with self._cond:
            self._in_flight += len(records)
        failed: set[str] = set()  # a topic whose push failed: its later records wait (order)
        for record in records:
            channel: Channel = joined[record.topic]
            waiter = _Waiter(self, record)
            self._topic_in_flight[record.topic] = self._topic_in_flight.get(record.topic, 0) + 1
            self._topic_join_ref[record.topic] = channel.join_ref
            if record.topic in failed:
                self._settle(waiter, Outcome("closed", None, record.topic, record.event, ""))
                continue
            try:
                payload = serializer.encode_payload({**record.payload, field: record.idempotency_key})
                # Never buffered by the channel: a message that cannot go out now comes back
                # here, so the outbox alone decides the order of retries.
                channel._engine.push(
                    channel._core, record.event, payload, self.config.reply_timeout, waiter, buffer=False
                )
            except MaxsdkError as exc:  # the channel closed meanwhile, capacity...
                log.debug("outbox: %s not pushed now (%s)", record.idempotency_key, exc)
                failed.add(record.topic)
                self._settle(waiter, Outcome("closed", None, record.topic, record.event, ""))
            except Exception:
                # Never leave a taken record in flight: it comes back and is retried in order.
                log.exception("outbox: internal error pushing %s; it will be retried", record.idempotency_key)
                failed.add(record.topic)
                self._settle(waiter, Outcome("closed", None, record.topic, record.event, ""))
        if len(records) == self.config.batch_size:
            self.wake()  # there may be more


def _describe(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("reason"), str):
        return str(response["reason"])
    text = repr(response)
    return text if len(text) <= 200 else text[:200] + "..."


def joined_topics(channels: Iterable[Channel]) -> dict[str, Channel]:
    """The joined channels by topic (the last one wins)."""
    return {c.topic: c for c in channels if c.state is ChannelState.JOINED}
