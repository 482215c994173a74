"""Phoenix.Presence-like tracking (reference §6.1).

Every tracked entry gets a unique ``phx_ref``; an update replaces the entry
with a new ``phx_ref`` and records the old one as ``phx_ref_prev``. Each
change is broadcast to the topic as ``presence_diff``
(``{"joins": {...}, "leaves": {...}}``, state-shaped). ``state(topic)`` is the
``presence_state`` payload.

Diffs are broadcast while the tracker lock is held, so every subscriber sees
the diffs of a topic in the order the changes happened.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PresenceState = dict[str, dict[str, list[dict[str, Any]]]]
"""``{key: {"metas": [meta, ...]}}``"""

Broadcast = Callable[[str, str, Mapping[str, Any]], object]

_counter = itertools.count(1)


def new_phx_ref() -> str:
    """A unique 16-character ref shaped like Phoenix's (random part + counter)."""
    raw = os.urandom(6) + (next(_counter) % (1 << 48)).to_bytes(6, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii")


@dataclass
class _Entry:
    owner: object
    key: str
    meta: dict[str, Any]


class Presence:
    """Tracks ``(owner, topic, key) -> meta`` and broadcasts the diffs."""

    def __init__(self, broadcast: Broadcast) -> None:
        """Create a tracker that publishes diffs through ``broadcast(topic, event, payload)``."""
        self._broadcast = broadcast
        self._lock = threading.RLock()
        self._topics: dict[str, list[_Entry]] = {}
        self._owner_topics: dict[int, set[str]] = {}

    def track(self, owner: object, topic: str, key: str, meta: Mapping[str, Any]) -> str:
        """Track ``owner`` under ``key`` on ``topic``; returns the new ``phx_ref``.

        Raises:
            ValueError: if this owner already tracks ``key`` on ``topic``.

        """
        with self._lock:
            if self._find(owner, topic, key) is not None:
                raise ValueError(f"{key!r} is already tracked on {topic!r}")
            ref = new_phx_ref()
            entry = _Entry(owner, key, {**meta, "phx_ref": ref})
            self._topics.setdefault(topic, []).append(entry)
            self._owner_topics.setdefault(id(owner), set()).add(topic)
            self._publish(topic, joins=[entry], leaves=[])
            return ref

    def update(self, owner: object, topic: str, key: str, meta: Mapping[str, Any]) -> str:
        """Replace the meta of a tracked key; returns the new ``phx_ref``.

        Raises:
            KeyError: if the key is not tracked by this owner on ``topic``.

        """
        with self._lock:
            old = self._find(owner, topic, key)
            if old is None:
                raise KeyError(f"{key!r} is not tracked on {topic!r}")
            ref = new_phx_ref()
            new = _Entry(owner, key, {**meta, "phx_ref": ref, "phx_ref_prev": old.meta["phx_ref"]})
            entries = self._topics[topic]
            entries[entries.index(old)] = new
            self._publish(topic, joins=[new], leaves=[old])
            return ref

    def untrack(self, owner: object, topic: str, key: str | None = None) -> None:
        """Stop tracking ``key`` (every key when ``None``) of ``owner`` on ``topic``."""
        with self._lock:
            entries = self._topics.get(topic, [])
            gone = [e for e in entries if e.owner is owner and (key is None or e.key == key)]
            if not gone:
                return
            kept = [e for e in entries if not any(e is g for g in gone)]
            if kept:
                self._topics[topic] = kept
            else:
                self._topics.pop(topic, None)
            if not any(e.owner is owner for e in kept):
                topics = self._owner_topics.get(id(owner), set())
                topics.discard(topic)
                if not topics:
                    self._owner_topics.pop(id(owner), None)
            self._publish(topic, joins=[], leaves=gone)

    def untrack_all(self, owner: object) -> None:
        """Stop tracking everything ``owner`` tracks (its channel ended)."""
        with self._lock:
            for topic in sorted(self._owner_topics.get(id(owner), set())):
                self.untrack(owner, topic)

    def state(self, topic: str) -> PresenceState:
        """The current state of ``topic``: ``{key: {"metas": [...]}}`` (copies)."""
        with self._lock:
            return _group(self._topics.get(topic, []))

    def topics(self) -> list[str]:
        """Topics with at least one tracked entry."""
        with self._lock:
            return list(self._topics)

    def _find(self, owner: object, topic: str, key: str) -> _Entry | None:
        for entry in self._topics.get(topic, []):
            if entry.owner is owner and entry.key == key:
                return entry
        return None

    def _publish(self, topic: str, *, joins: list[_Entry], leaves: list[_Entry]) -> None:
        diff = {"joins": _group(joins), "leaves": _group(leaves)}
        self._broadcast(topic, "presence_diff", diff)


def _group(entries: Iterable[_Entry]) -> PresenceState:
    state: PresenceState = {}
    for entry in entries:
        state.setdefault(entry.key, {"metas": []})["metas"].append(dict(entry.meta))
    return state
