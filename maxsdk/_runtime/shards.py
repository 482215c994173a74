"""Sharding: several sockets to one endpoint behind one client, past the server's channel cap.

A Phoenix server refuses the 101st join on one socket (``{"reason": "too many
channels joined"}``, its default per-socket cap). A :class:`ShardSet` places
every join on a socket that has room: the client's own (the *primary*) first,
then further sockets to the same endpoint, created on demand and closed once
their last channel is left. Each is a full :class:`~maxsdk._runtime.engine.Engine`
with its own reader, heartbeat, rejoin and backoff.

Room is counted as the channels registered on a socket (joining, joined,
errored or leaving) against ``max_channels_per_socket``. A server that refuses
a join with "too many channels joined" caps that socket at what it holds then
(the server knows best: its cap may be lower than ours), and the join is
placed again.

Locking: ``_lock`` covers placement and the registration of the join on the
chosen socket (so two threads joining at once cannot both take the last place);
user code never runs under it, and no socket is closed under it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["TOO_MANY_CHANNELS", "ShardSet", "aggregate", "is_cap_refusal"]

log = logging.getLogger("maxsdk.client")

#: The reason a Phoenix server gives when a socket holds its most channels.
TOO_MANY_CHANNELS = "too many channels joined"


def is_cap_refusal(response: Any) -> bool:
    """Whether a join refusal is the server's per-socket channel cap."""
    return isinstance(response, dict) and response.get("reason") == TOO_MANY_CHANNELS


class ShardSet:
    """The sockets of one client: the primary, and extra ones made on demand.

    Args:
        primary: the client's own engine (never closed by the set).
        make_engine: builds the engine of the ``n``-th extra socket (n >= 2).
        max_channels: channels per socket (``None``: no sharding).

    """

    def __init__(self, primary: Engine, make_engine: Callable[[int], Engine], max_channels: int | None) -> None:
        self.primary = primary
        self._make_engine = make_engine
        self.max_channels = max_channels
        self.lock = threading.RLock()
        self._engines: list[Engine] = [primary]
        #: Per engine id: the most channels the server accepted there (after a refusal).
        self._caps: dict[int, int] = {}
        self._made = 1
        self.started = False

    @property
    def engines(self) -> list[Engine]:
        """Every socket's engine, the primary first."""
        with self.lock:
            return list(self._engines)

    def extra(self) -> list[Engine]:
        """The extra sockets' engines."""
        with self.lock:
            return self._engines[1:]

    def place(self) -> Engine:
        """The engine a new join goes to (under :attr:`lock`, held by the caller)."""
        for engine in self._engines:
            if self._has_room(engine):
                return engine
        self._made += 1
        engine = self._make_engine(self._made)
        self._engines.append(engine)
        log.info("%s: socket %d opened for more channels", self.primary.name, len(self._engines))
        if self.started:
            engine.start()
        return engine

    def _has_room(self, engine: Engine) -> bool:
        limit = self.max_channels
        cap = self._caps.get(engine.id)
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
        return limit is None or channel_count(engine) < limit

    def refused(self, engine: Engine) -> None:
        """The server refused a join on ``engine`` for its channel cap: no more joins there for now."""
        with self.lock:
            count = channel_count(engine)
            self._caps[engine.id] = count
        log.info("%s: the server caps a socket at %d channels; placing further joins elsewhere", engine.name, count)

    def retire_if_idle(self, engine: Engine) -> None:
        """Close an extra socket whose last channel was left."""
        with self.lock:
            if engine is self.primary or engine not in self._engines or channel_count(engine):
                return
            self._engines.remove(engine)
            self._caps.pop(engine.id, None)
        log.info("%s: socket closed (no channel left on it)", engine.name)
        engine.close()

    def start_all(self) -> None:
        """Start every extra socket (the caller starts the primary)."""
        with self.lock:
            self.started = True
            engines = self._engines[1:]
        for engine in engines:
            engine.start()

    def close_all(self, timeout: float | None = None) -> None:
        """Close and forget every extra socket (the caller closes the primary)."""
        with self.lock:
            self.started = False
            engines, self._engines = self._engines[1:], [self.primary]
            self._caps.clear()
        for engine in engines:
            engine.close(timeout)

    def disconnect_all(self, timeout: float | None = None) -> None:
        """Disconnect every extra socket; a later :meth:`start_all` reconnects them."""
        with self.lock:
            self.started = False
            engines = self._engines[1:]
        for engine in engines:
            engine.disconnect(timeout)


def channel_count(engine: Engine) -> int:
    """Channels registered on an engine's socket (joining, joined, errored or leaving)."""
    return int(engine.run(_count))


def _count(session: Any, now: float) -> int:
    return len(session.channels())


# -- aggregation over sockets ----------------------------------------------------------------

#: Fields of a snapshot that describe one socket, not a quantity: the first socket's are kept.
_KEEP = frozenset({"url", "state", "status", "window", "transport", "last_error", "heartbeat_rtt_smoothed"})
#: Gauges where the worst socket speaks for the client.
_WORST = frozenset(
    {
        "push_latency_p50",
        "push_latency_p95",
        "push_latency_p99",
        "push_latency_max",
        "heartbeat_rtt",
        "last_heartbeat_rtt",
    }
)


T = TypeVar("T")


def aggregate(first: T, others: list[T]) -> T:
    """Combine per-socket snapshots (:class:`Diagnostics` or :class:`Stats`) into one.

    Counters and rates are summed, mappings merged (summing their values),
    channels concatenated, latencies the worst socket's; the rest (URL,
    state...) is the first socket's.
    """
    head: Any = first
    changes: dict[str, Any] = {}
    values: list[Any] = []
    for spec in dataclasses.fields(head):
        name = spec.name
        values = [getattr(snapshot, name) for snapshot in (first, *others)]
        if name in _KEEP:
            continue
        if name in _WORST:
            present = [v for v in values if v is not None]
            changes[name] = max(present) if present else None
        elif isinstance(values[0], bool):
            changes[name] = any(values)
        elif isinstance(values[0], (int, float)):
            changes[name] = sum(v for v in values if v is not None)
        elif isinstance(values[0], tuple):
            changes[name] = tuple(item for value in values for item in value)
        elif isinstance(values[0], dict):
            changes[name] = _merge(values)
    changes["sockets"] = 1 + len(others)
    result: T = dataclasses.replace(head, **changes)
    return result


def _merge(mappings: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            if isinstance(value, dict):
                merged[key] = _merge([merged.get(key, {}), value])
            elif isinstance(value, (int, float)):
                merged[key] = merged.get(key, 0) + value
            else:
                merged.setdefault(key, value)
    return merged
