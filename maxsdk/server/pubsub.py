"""Topic subscriptions of joined channels (the fastlane of Phoenix.PubSub)."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class PubSub(Generic[T]):
    """Thread-safe ``topic -> subscribers`` map; iteration order is subscription order."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._lock = threading.Lock()
        self._topics: dict[str, dict[int, T]] = {}

    def subscribe(self, topic: str, subscriber: T) -> None:
        """Add ``subscriber`` to ``topic`` (idempotent)."""
        with self._lock:
            self._topics.setdefault(topic, {})[id(subscriber)] = subscriber

    def unsubscribe(self, topic: str, subscriber: T) -> None:
        """Remove ``subscriber`` from ``topic`` (no error if absent)."""
        with self._lock:
            subscribers = self._topics.get(topic)
            if subscribers is None:
                return
            subscribers.pop(id(subscriber), None)
            if not subscribers:
                del self._topics[topic]

    def subscribers(self, topic: str) -> tuple[T, ...]:
        """A snapshot of the subscribers of ``topic``."""
        with self._lock:
            subscribers = self._topics.get(topic)
            return tuple(subscribers.values()) if subscribers else ()

    def topics(self) -> list[str]:
        """Topics with at least one subscriber."""
        with self._lock:
            return list(self._topics)
