"""What the durable outbox stores: messages in, records out, priorities and idempotency keys.

An :class:`OutboxMessage` is what a producer hands the outbox; the store gives
it an idempotency key and a creation time, and hands it back to the sender as
an :class:`OutboxRecord`. Records are serialized as JSON (never pickle), with
binary payloads base64-encoded, so the file stays readable by any tool and
cannot execute code when loaded.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from maxsdk.errors import ConfigurationError

__all__ = ["OutboxMessage", "OutboxRecord", "Priority", "decode_record", "encode_message", "new_key"]


class Priority(IntEnum):
    """Delivery priority: lower values go first (across topics; never ahead of an older message of the same topic)."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @classmethod
    def coerce(cls, value: Priority | str | int) -> Priority:
        """``Priority.HIGH``, ``"high"`` or ``0`` → ``Priority.HIGH``.

        Raises:
            ConfigurationError: not a known priority.

        """
        if isinstance(value, Priority):
            return value
        try:
            return cls[value.upper()] if isinstance(value, str) else cls(value)
        except (KeyError, ValueError):
            raise ConfigurationError(f"priority must be high, normal or low, got {value!r}") from None


@dataclass(frozen=True)
class OutboxMessage:
    """A message to store: what a producer passes to :meth:`OutboxStore.put`.

    Attributes:
        topic: the channel topic.
        event: the event to push.
        payload: JSON-serializable data, or ``bytes`` (a binary push).
        priority: :class:`Priority` (or ``"high"``/``"normal"``/``"low"``).
        ttl: seconds the message stays deliverable; ``None`` = no expiry.
        idempotency_key: a caller-chosen key; ``None`` = one is generated.

    """

    topic: str
    event: str
    payload: Any = None
    priority: Priority | str | int = Priority.NORMAL
    ttl: float | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class OutboxRecord:
    """A stored message, as the store hands it back.

    Attributes:
        idempotency_key: stable, unique and sortable by creation time; the
            receiver uses it to drop a redelivered duplicate.
        topic: the channel topic.
        event: the event to push.
        payload: the payload (``bytes`` for a binary push).
        priority: its :class:`Priority`.
        created_at: epoch seconds when it was stored.
        expires_at: epoch seconds after which it is not delivered, or ``None``.
        attempts: how many times it was handed out and came back (:meth:`OutboxStore.nack`).
        dead_reason: why it was dead-lettered, for dead letters.
        dead_at: epoch seconds when it was dead-lettered, for dead letters.

    """

    idempotency_key: str
    topic: str
    event: str
    payload: Any
    priority: Priority
    created_at: float
    expires_at: float | None
    attempts: int = 0
    dead_reason: str | None = None
    dead_at: float | None = None

    def age(self, now: float | None = None) -> float:
        """Seconds since the message was stored."""
        return (time.time() if now is None else now) - self.created_at

    def __repr__(self) -> str:
        # Payloads may be large or sensitive: never in the repr.
        return (
            f"OutboxRecord({self.idempotency_key!r}, topic={self.topic!r}, event={self.event!r}, "
            f"priority={self.priority.name.lower()}, attempts={self.attempts})"
        )


def encode_message(message: OutboxMessage, key: str, created_at: float) -> tuple[bytes, Priority, float | None]:
    """Validate and serialize ``message``; return ``(JSON bytes, priority, expires_at)``.

    Raises:
        ConfigurationError: a bad topic, event, priority or TTL, or a payload
            that is not JSON-serializable.

    """
    if not isinstance(message.topic, str) or not message.topic:
        raise ConfigurationError("an outbox message needs a non-empty string topic")
    if not isinstance(message.event, str) or not message.event:
        raise ConfigurationError("an outbox message needs a non-empty string event")
    if message.ttl is not None and not message.ttl > 0:
        raise ConfigurationError("ttl must be a positive number of seconds or None")
    priority = Priority.coerce(message.priority)
    expires_at = None if message.ttl is None else created_at + message.ttl
    document: dict[str, Any] = {
        "idempotency_key": key,
        "topic": message.topic,
        "event": message.event,
        "priority": int(priority),
        "created_at": created_at,
        "expires_at": expires_at,
    }
    if isinstance(message.payload, (bytes, bytearray, memoryview)):
        document["payload_b64"] = base64.b64encode(bytes(message.payload)).decode("ascii")
    else:
        document["payload"] = message.payload
    try:
        data = json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the payload of {message.event!r} cannot be stored as JSON: {exc}") from None
    except RecursionError:
        raise ConfigurationError(f"the payload of {message.event!r} is nested too deeply to store") from None
    return data, priority, expires_at


def decode_record(
    data: bytes | str, attempts: int, dead_reason: str | None = None, dead_at: float | None = None
) -> OutboxRecord:
    """The :class:`OutboxRecord` stored as ``data`` (see :func:`encode_message`)."""
    document = json.loads(data)
    payload = base64.b64decode(document["payload_b64"]) if "payload_b64" in document else document.get("payload")
    return OutboxRecord(
        idempotency_key=document["idempotency_key"],
        topic=document["topic"],
        event=document["event"],
        payload=payload,
        priority=Priority(document["priority"]),
        created_at=document["created_at"],
        expires_at=document["expires_at"],
        attempts=attempts,
        dead_reason=dead_reason,
        dead_at=dead_at,
    )


# -- idempotency keys ----------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_key_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def new_key(now: float | None = None) -> str:
    """A new ULID: 26 characters, sortable by creation time, unique across processes.

    48 bits of milliseconds then 80 random bits; within one millisecond of one
    process the random part is incremented, so keys made by one process sort
    in the order they were made.
    """
    global _last_ms, _last_random
    ms = int((time.time() if now is None else now) * 1000)
    with _key_lock:
        if ms <= _last_ms:
            ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_ms = ms
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        value = (ms << 80) | _last_random
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
