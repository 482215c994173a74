"""Stream recovery for channels: never miss an event across cuts, crashes and restarts.

Opt in per channel::

    feed = client.join("stream:prices", recover=True)

    @feed.on("tick")
    def tick(payload): ...              # every event once, in order

    @feed.on_discontinuity
    def lost(gap): refetch(gap.last)    # the server could not fill a gap

The server stamps each recoverable event with a :class:`Position`; the
channel sends the last delivered one in its (re)join params, the server
replays what was missed before new events, and duplicates are dropped by
position. The wire contract (for a Phoenix channel) is in ``docs/recovery.md``.

Threads: positions advance on the channel's dispatch lane; ``on_discontinuity``
handlers and the :data:`~maxsdk.signals.stream_discontinuity` signal run
there too, in order with the events.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from maxsdk import signals
from maxsdk.errors import ConfigurationError
from maxsdk.protocol.recovery import (
    LIVE,
    MARKER_EVENT,
    POSITION_FIELD,
    RECOVER_PARAM,
    Deliver,
    Discontinuity,
    Position,
    StreamCursor,
)

if TYPE_CHECKING:
    from maxsdk._runtime.position_store import PositionStore
    from maxsdk.channel import Channel

__all__ = ["Discontinuity", "Position", "Recovery", "StreamEvent"]

log = logging.getLogger("maxsdk.recovery")


@dataclass(frozen=True)
class Recovery:
    """How a channel recovers its stream (``recover=True`` means the defaults).

    Attributes:
        field: the payload field holding an event's position.
        param: the join parameter carrying the last delivered position.
        marker_event: the push that ends a replay.
        max_buffer: events held while a replay is awaited before giving up
            (a :class:`Discontinuity` with reason ``"overflow"``).
        store: a directory where positions survive the process (``None``: memory only).
        save_interval: with a store, seconds between position writes (``0``:
            after every event; each write is an fsync). A crash can replay
            the events of the last interval to the next process; positions are
            also saved when the channel errors, closes or leaves.

    """

    field: str = POSITION_FIELD
    param: str = RECOVER_PARAM
    marker_event: str = MARKER_EVENT
    max_buffer: int = 100_000
    store: str | os.PathLike[str] | None = None
    save_interval: float = 0.5

    def __post_init__(self) -> None:
        for name in ("field", "param", "marker_event"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigurationError(f"Recovery.{name} must be a non-empty string")
        if type(self.max_buffer) is not int or self.max_buffer < 1:
            raise ConfigurationError("Recovery.max_buffer must be a positive int")
        interval = self.save_interval
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
            raise ConfigurationError("Recovery.save_interval must be a number of seconds >= 0")

    @classmethod
    def coerce(cls, value: Any, store: str | os.PathLike[str] | None = None) -> Recovery | None:
        """``None``/``False`` → off, ``True`` → defaults, a :class:`Recovery` as is; ``store`` overrides.

        Raises:
            ConfigurationError: anything else.

        """
        if value is None or value is False:
            if store is not None:
                raise ConfigurationError("recover_store= needs recover=True (or a Recovery)")
            return None
        config: Recovery = cls() if value is True else value
        if not isinstance(config, cls):
            raise ConfigurationError(f"recover must be True, False, None or a Recovery, got {value!r}")
        if store is not None:
            from dataclasses import replace

            config = replace(config, store=store)
        return config


@dataclass(frozen=True)
class StreamEvent:
    """One event of a stream's history (see :meth:`Channel.history`)."""

    event: str
    payload: Any
    position: Position


class ChannelRecovery:
    """A channel's recovery state (internal; reached through the channel's methods)."""

    def __init__(self, channel: Channel, config: Recovery) -> None:
        self.config = config
        self._channel = channel
        self._store: PositionStore | None = None
        position = None
        if config.store is not None:
            from maxsdk._runtime.position_store import PositionStore

            self._store = PositionStore(config.store)
            position = self._store.load(channel.topic)
        self.cursor: StreamCursor[tuple[Any, str | None]] = StreamCursor(position, max_buffer=config.max_buffer)
        self._lock = threading.Lock()  # the cursor is fed on the lane, read by joins on other threads
        self._handlers: tuple[Callable[[Discontinuity], Any], ...] = ()
        self._saved: Position | None = position
        self._saved_at = 0.0
        self._field = config.field
        self._deliver_now = channel._deliver_now

    @property
    def position(self) -> Position | None:
        """The last delivered position."""
        return self.cursor.position

    def on_discontinuity(self, handler: Callable[[Discontinuity], Any]) -> None:
        """Add a handler."""
        with self._lock:
            self._handlers = (*self._handlers, handler)

    def join_param(self) -> dict[str, Any]:
        """A (re)join starts: hold events until the replay ends; return the ``recover`` param."""
        with self._lock:
            self.cursor.rejoining()
            return self.cursor.join_param()

    def joined(self, response: Any) -> None:
        """The join reply arrived (on the lane)."""
        supported = isinstance(response, Mapping) and "recovery" in response
        if not supported:
            log.warning("%s: the join reply has no 'recovery': the server does not replay", self._channel.topic)
        with self._lock:
            out = self.cursor.joined(supported)
        self._emit(out)

    def deliver(self, message: Any, join_ref: str | None = None) -> None:
        """The channel's ``_deliver`` for a recoverable channel (dispatch lane)."""
        payload = message.payload
        if type(payload) is dict:
            raw = payload.get(self._field)
            # Fast path (every live event in order): no lock, one allocation. The cursor's
            # position is one attribute, replaced atomically, so a join built meanwhile on
            # another thread reads either the old or the new position.
            if type(raw) is dict:
                cursor = self.cursor
                last = cursor.position
                offset = raw.get("offset")
                if cursor.mode == LIVE and last is not None and type(offset) is int and offset == last.offset + 1:
                    epoch = raw.get("epoch")
                    if epoch == last.epoch:
                        cursor.position = Position(last.epoch, offset)
                        self._deliver_now(message, join_ref)
                        if self._store is not None:
                            self.save(force=False)
                        return
        if not self.intercept(message, join_ref):
            self._deliver_now(message, join_ref)

    def intercept(self, message: Any, join_ref: str | None) -> bool:
        """Route a positioned event or the marker through the cursor; ``False`` = deliver as usual."""
        payload = message.payload
        if message.event == self.config.marker_event:
            try:
                with self._lock:
                    out = self.cursor.marker(payload)
            except ValueError as exc:
                log.warning("%s: malformed %s ignored: %s", self._channel.topic, message.event, exc)
                return True
            self._emit(out)
            return True
        if type(payload) is not dict:
            return False
        raw = payload.get(self.config.field)
        if raw is None:
            return False
        try:
            position = Position.from_wire(raw)
        except ValueError as exc:
            log.warning("%s %s: bad position, delivered without recovery: %s", self._channel.topic, message.event, exc)
            return False
        with self._lock:
            out = self.cursor.receive((message, join_ref), position)
        self._emit(out)
        return True

    def _emit(self, out: list[Any]) -> None:
        for item in out:
            if type(item) is Deliver:
                message, join_ref = item.item
                self._deliver_now(message, join_ref)
            else:
                self._discontinuity(item)
        if out:
            self.save(force=False)

    def _discontinuity(self, gap: Discontinuity) -> None:
        channel = self._channel
        log.warning("%s: stream discontinuity (%s) after %s", channel.topic, gap.reason, gap.last)
        engine = channel._engine
        for handler in self._handlers:
            engine.guarded(handler, (gap,), f"on_discontinuity for {channel.topic}")
        engine.send_signal(signals.stream_discontinuity, channel=channel, discontinuity=gap)

    def save(self, *, force: bool) -> None:
        """Write the position to the store when due (``force``: now, if it changed)."""
        store = self._store
        position = self.cursor.position
        if store is None or position is None or position == self._saved:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < self.config.save_interval:
            return
        try:
            store.save(self._channel.topic, position)
        except OSError as exc:
            log.error("%s: cannot save the stream position: %s", self._channel.topic, exc)
            return
        self._saved, self._saved_at = position, now
