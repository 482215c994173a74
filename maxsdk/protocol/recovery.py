"""Stream recovery: positions, exactly-once ordering and discontinuity detection (pure).

A recoverable stream numbers its events with a :class:`Position`: an
``offset`` that grows by one per event, inside an ``epoch`` (a name for one
unbroken history; a server that loses its history starts a new epoch). The
wire contract is in ``docs/recovery.md``; in short:

* the client joins with ``{"recover": {"epoch": E, "offset": N}}`` (or
  ``{"recover": {}}`` when it has no position yet);
* the join reply's response carries ``{"recovery": {...}}`` when the server
  speaks the contract;
* the channel then pushes the missed events (offsets ``N+1..H``, each payload
  stamped with ``"_pos": {"epoch", "offset"}``), then one
  ``stream_recovered`` push ``{"epoch", "offset": H, "oldest", "recovered",
  "reason"}``;
* live broadcasts, stamped the same way, may arrive interleaved with the
  replay (Phoenix fastlane broadcasts do not pass through the channel
  process), and may repeat replayed events.

:class:`StreamCursor` turns that interleaving into each position delivered
once, in order, or exactly one :class:`Discontinuity` where the gap cannot be
filled. It holds no lock and no clock: the caller serialises calls (the
channel's dispatch lane does).

Rules (one table; ``last`` = the last delivered position):

========== ========================= =============================================
mode       input                     effect
========== ========================= =============================================
awaiting   offset == last + 1        delivered at once, with the held events it
                                     makes contiguous
awaiting   other positioned event    held (bounded by ``max_buffer``)
awaiting   join without ``recovery``  live; the buffer is flushed as live events
awaiting   marker, recovered         buffer flushed in offset order, live
awaiting   marker, not recovered     one discontinuity; resumes at the marker head,
                                     or before the first event held (it came
                                     live, after the subscription); live
awaiting   buffer overflow           flushed in order (a gap = discontinuity), live
live       offset <= last.offset     duplicate: dropped
live       offset == last + 1        delivered
live       offset > last + 1         discontinuity ``gap``, then delivered
live       other epoch               discontinuity ``epoch_changed``, delivered
any        :meth:`rejoining`         awaiting
========== ========================= =============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, Union

__all__ = [
    "LIVE",
    "MARKER_EVENT",
    "POSITION_FIELD",
    "RECOVER_PARAM",
    "Discontinuity",
    "Position",
    "StreamCursor",
]

T = TypeVar("T")

#: Payload field holding an event's position (default of ``Recovery(field=...)``).
POSITION_FIELD = "_pos"
#: Join parameter carrying the last delivered position.
RECOVER_PARAM = "recover"
#: The push that ends a replay.
MARKER_EVENT = "stream_recovered"

_AWAITING = "awaiting"
_LIVE = "live"
#: The cursor's ``mode`` once a replay is over (for callers' fast paths).
LIVE = _LIVE


class Position(NamedTuple):
    """Where an event sits in a stream: ``offset`` within ``epoch``.

    A named tuple (immutable, hashable, cheap to build: one per event).

    Attributes:
        epoch: the name of one unbroken history (any string the server picks).
        offset: the event's number, 1 for the first event of the epoch.

    """

    epoch: str
    offset: int

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent in join params and history requests."""
        return {"epoch": self.epoch, "offset": self.offset}

    @classmethod
    def from_wire(cls, value: Any) -> Position:
        """Parse ``{"epoch": str, "offset": int >= 0}``.

        Raises:
            ValueError: the value is not a position.

        """
        if not isinstance(value, Mapping):
            raise ValueError(f"a position must be an object, got {type(value).__name__}")
        epoch, offset = value.get("epoch"), value.get("offset")
        if not isinstance(epoch, str) or type(offset) is not int or offset < 0:
            raise ValueError(f"a position needs a string epoch and an int offset >= 0, got {value!r}")
        return cls(epoch, offset)

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"


@dataclass(frozen=True)
class Discontinuity:
    """A gap the server could not fill: events between ``last`` and ``resumed`` are lost to handlers.

    Attributes:
        reason: ``"trimmed"`` (the server's history no longer reaches back to
            ``last``), ``"epoch_changed"`` (the server's history restarted),
            ``"gap"`` (positions skipped in the stream), ``"overflow"`` (the
            replay buffer overflowed) or a reason the server gave.
        last: the last position delivered before the gap (``None``: nothing yet).
        oldest: the server's oldest retained position, when it told us.
        resumed: the position the stream continues after (the next delivery
            is past it), when known.

    """

    reason: str
    last: Position | None
    oldest: Position | None = None
    resumed: Position | None = None


@dataclass(frozen=True)
class Deliver(Generic[T]):
    """Hand ``item`` (at ``position``) to the handlers."""

    item: T
    position: Position


Output = Union[Deliver[T], Discontinuity]


class StreamCursor(Generic[T]):
    """The client side of one recoverable stream (see the module docstring for the rules).

    Args:
        position: the last position delivered in an earlier life (from a store).
        max_buffer: events held while awaiting a replay's end before giving up.

    """

    def __init__(self, position: Position | None = None, *, max_buffer: int = 100_000) -> None:
        if type(max_buffer) is not int or max_buffer < 1:
            raise ValueError("max_buffer must be a positive int")
        self.position = position
        self.max_buffer = max_buffer
        self.mode = _AWAITING
        self._buffer: dict[tuple[str, int], T] = {}
        self.duplicates = 0
        self.discontinuities = 0

    @property
    def awaiting(self) -> bool:
        """Whether a replay is expected (events are being held)."""
        return self.mode == _AWAITING

    @property
    def buffered(self) -> int:
        """How many events are held."""
        return len(self._buffer)

    def join_param(self) -> dict[str, Any]:
        """The value of the ``recover`` join parameter: the last position, or ``{}``."""
        return {} if self.position is None else self.position.to_wire()

    def rejoining(self) -> None:
        """A (re)join starts: hold positioned events until the replay ends."""
        self.mode = _AWAITING

    def joined(self, supported: bool) -> list[Output[T]]:
        """The join succeeded; ``supported`` = its reply carried ``recovery``."""
        if supported or self.mode == _LIVE:
            return []
        return self._go_live(self._sorted_buffer())

    def receive(self, item: T, position: Position) -> list[Output[T]]:
        """One positioned event arrived (live or replayed)."""
        if self.mode == _AWAITING:
            last = self.position
            if last is not None and position.epoch == last.epoch:
                if position.offset <= last.offset:
                    self.duplicates += 1
                    return []
                if position.offset == last.offset + 1:
                    return self._next(item, position)
            self._buffer[(position.epoch, position.offset)] = item
            if len(self._buffer) > self.max_buffer:
                return self._overflow()
            return []
        return self._live(item, position)

    def marker(self, payload: Any) -> list[Output[T]]:
        """The ``stream_recovered`` push ended the replay.

        Raises:
            ValueError: the marker is malformed (the cursor is unchanged).

        """
        if not isinstance(payload, Mapping):
            raise ValueError("stream_recovered payload must be an object")
        head = Position.from_wire(payload)
        oldest_offset = payload.get("oldest")
        oldest = Position(head.epoch, oldest_offset) if type(oldest_offset) is int else None
        recovered = payload.get("recovered") is True
        reason = payload.get("reason")
        if self.mode == _LIVE:
            return []  # a repeated marker: nothing is held
        last = self.position
        held = self._sorted_buffer()
        if last is not None and recovered and last.epoch == head.epoch:
            return self._go_live(held)
        # No past to resume from: the stream starts at the head, or earlier with the
        # events that arrived live meanwhile (broadcast after the subscription, so real).
        held = [(position, item) for position, item in held if position.epoch == head.epoch]
        start = head if not held else Position(head.epoch, min(head.offset, held[0][0].offset - 1))
        out: list[Output[T]] = []
        if last is not None:
            why = reason if isinstance(reason, str) and reason and not recovered else "epoch_changed"
            out.append(self._discontinuity(why, last, oldest, start))
        self.position = start
        out.extend(self._go_live(held))
        return out

    # -- internals -------------------------------------------------------------

    def _next(self, item: T, position: Position) -> list[Output[T]]:
        """The very next position while awaiting: delivered now, with what it unblocks."""
        out: list[Output[T]] = [Deliver(item, position)]
        buffer = self._buffer
        key = (position.epoch, position.offset + 1)
        while key in buffer:
            out.append(Deliver(buffer.pop(key), Position(*key)))
            position = Position(*key)
            key = (position.epoch, position.offset + 1)
        self.position = position
        return out

    def _sorted_buffer(self) -> list[tuple[Position, T]]:
        items = sorted(self._buffer.items(), key=lambda kv: kv[0][1])
        self._buffer = {}
        return [(Position(epoch, offset), item) for (epoch, offset), item in items]

    def _go_live(self, held: list[tuple[Position, T]]) -> list[Output[T]]:
        self.mode = _LIVE
        out: list[Output[T]] = []
        for position, item in held:
            out.extend(self._live(item, position))
        return out

    def _overflow(self) -> list[Output[T]]:
        held = self._sorted_buffer()
        out: list[Output[T]] = []
        first = held[0][0]
        last = self.position
        if last is None or first.epoch != last.epoch or first.offset != last.offset + 1:
            out.append(self._discontinuity("overflow", last, None, Position(first.epoch, first.offset - 1)))
            self.position = Position(first.epoch, first.offset - 1)
        out.extend(self._go_live(held))
        return out

    def _live(self, item: T, position: Position) -> list[Output[T]]:
        last = self.position
        if last is not None and position.epoch == last.epoch:
            if position.offset <= last.offset:
                self.duplicates += 1
                return []
            if position.offset == last.offset + 1:
                self.position = position
                return [Deliver(item, position)]
            resumed = Position(position.epoch, position.offset - 1)
            self.position = position
            return [self._discontinuity("gap", last, None, resumed), Deliver(item, position)]
        self.position = position
        if last is None:
            return [Deliver(item, position)]
        resumed = Position(position.epoch, position.offset - 1)
        return [self._discontinuity("epoch_changed", last, None, resumed), Deliver(item, position)]

    def _discontinuity(
        self, reason: str, last: Position | None, oldest: Position | None, resumed: Position | None
    ) -> Discontinuity:
        self.discontinuities += 1
        return Discontinuity(reason, last, oldest, resumed)
