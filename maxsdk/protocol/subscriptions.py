"""Topic subscriptions shared by several subscribers, and resubscribed after reconnects.

One :class:`TopicSubscription` per topic, however many subscribers hold it:
the first subscriber makes the session send a subscribe message, the last
one to leave makes it send the unsubscribe. The server's key for the
subscription (a JSON-RPC subscription id, a Phoenix ``join_ref``) is kept
here too, since updates arrive under that key, and it changes with every
connection.

States (the whole table, one place):

========== =========================== ==========================================
state      meaning                     next
========== =========================== ==========================================
``new``    wanted, not sent on this    ``subscribing`` when sent (connected and
           connection                  ready); stays ``new`` while disconnected
``subscribing`` sent, awaiting the     ``active`` (confirmed), ``failed``
           server's answer             (refused or timed out on a resubscribe),
                                       removed (refused or timed out on the
                                       first subscribe), ``new`` (connection lost)
``active`` confirmed                   ``new`` (connection lost), removed (last
                                       subscriber left)
``failed`` a resubscribe was refused   ``subscribing`` on its retry deadline,
           or timed out                ``new`` (connection lost)
========== =========================== ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from maxsdk.protocol.handler import TopicRef

__all__ = ["ACTIVE", "FAILED", "NEW", "SUBSCRIBING", "SubscriptionTable", "TopicSubscription", "chunked"]

NEW = "new"
SUBSCRIBING = "subscribing"
ACTIVE = "active"
FAILED = "failed"


@dataclass(eq=False)
class TopicSubscription:
    """One server-side subscription and the subscribers sharing it.

    Attributes:
        topic: the client-side name (unique in the table).
        args: the protocol's subscribe arguments.
        subscribers: the subscribers, in the order they came (a tuple,
            replaced on change, so events can carry it without copying).
        state: see the module's table.
        key: the server's key on the current connection, once confirmed.
        confirmed_once: whether it was ever confirmed (a refusal before
            that ends it; after, it is retried).
        waiters: callers blocked until the first confirmation.
        attempt: resubscribe attempts since the last success.

    """

    topic: str
    args: Any = None
    subscribers: tuple[Any, ...] = ()
    state: str = NEW
    key: str | None = None
    confirmed_once: bool = False
    waiters: list[Any] = field(default_factory=list)
    attempt: int = 0

    def ref(self) -> TopicRef:
        """What a handler needs to build its messages."""
        return TopicRef(self.topic, self.args, self.key)


class SubscriptionTable:
    """Every wanted subscription, by topic and by server key."""

    __slots__ = ("_by_key", "_topics")

    def __init__(self) -> None:
        self._topics: dict[str, TopicSubscription] = {}
        self._by_key: dict[str, TopicSubscription] = {}

    def __len__(self) -> int:
        return len(self._topics)

    def __iter__(self) -> Iterator[TopicSubscription]:
        return iter(list(self._topics.values()))

    def __contains__(self, topic: object) -> bool:
        return topic in self._topics

    def get(self, topic: str) -> TopicSubscription | None:
        """The subscription of ``topic``, if wanted."""
        return self._topics.get(topic)

    def add(self, topic: str, args: Any, subscriber: Any) -> tuple[TopicSubscription, bool]:
        """Add ``subscriber`` to ``topic``; return ``(subscription, first)``.

        ``first`` is true when the topic was not wanted before: the caller
        sends the subscribe message.
        """
        sub = self._topics.get(topic)
        first = sub is None
        if sub is None:
            sub = self._topics[topic] = TopicSubscription(topic, args)
        sub.subscribers = (*sub.subscribers, subscriber)
        return sub, first

    def remove_subscriber(self, topic: str, subscriber: Any) -> TopicSubscription | None:
        """Take ``subscriber`` off ``topic``; return the subscription if that was the last one.

        The subscription is then forgotten (the caller sends the unsubscribe).
        """
        sub = self._topics.get(topic)
        if sub is None or subscriber not in sub.subscribers:
            return None
        sub.subscribers = tuple(s for s in sub.subscribers if s is not subscriber)
        if sub.subscribers:
            return None
        self.discard(sub)
        return sub

    def discard(self, sub: TopicSubscription) -> None:
        """Forget ``sub`` (and its key)."""
        if self._topics.get(sub.topic) is sub:
            del self._topics[sub.topic]
        if sub.key is not None and self._by_key.get(sub.key) is sub:
            del self._by_key[sub.key]

    def set_key(self, sub: TopicSubscription, key: str | None) -> None:
        """Record the server's key of ``sub`` (updates are routed by it)."""
        if sub.key is not None and self._by_key.get(sub.key) is sub:
            del self._by_key[sub.key]
        sub.key = key
        if key is not None:
            self._by_key[key] = sub

    def route(self, key: str) -> TopicSubscription | None:
        """The subscription that updates carrying ``key`` belong to (by key, then by topic)."""
        sub = self._by_key.get(key)
        if sub is None:
            sub = self._topics.get(key)
        return sub

    def connection_lost(self) -> None:
        """Every subscription must be made again on the next connection; keys are void."""
        self._by_key.clear()
        for sub in self._topics.values():
            sub.state = NEW
            sub.key = None

    def due(self) -> list[TopicSubscription]:
        """The subscriptions to (re)send, in the order they were first wanted."""
        return [sub for sub in self._topics.values() if sub.state == NEW]

    def clear(self) -> list[TopicSubscription]:
        """Forget everything; return what was wanted."""
        subs = list(self._topics.values())
        self._topics.clear()
        self._by_key.clear()
        return subs


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive chunks of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), max(1, size))]
