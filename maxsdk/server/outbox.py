"""The write path of one connection: serialized, logged, with reply faults applied.

Every frame a session or channel sends goes through :class:`Outbox`. Its
re-entrant ``lock`` lets a session make several steps atomic with respect to
other writers (a join subscribes and writes its reply under it, so no
broadcast can overtake the join reply).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from .faults import HELD, Faults
from .message import Frame
from .redact import redact
from .timer import Timer
from .transport import Transport

logger = logging.getLogger(__name__)

_PREVIEW = 200


def preview(frame: Frame) -> str:
    """A short, printable, redacted form of a frame for DEBUG logs."""
    text = redact(frame) if isinstance(frame, str) else "<binary> " + frame[:64].hex(" ")
    return text if len(text) <= _PREVIEW else text[:_PREVIEW] + "..."


class Outbox:
    """Ordered writes to one transport."""

    def __init__(self, transport: Transport, *, faults: Faults, timer: Timer, connection_id: int) -> None:
        """Wrap ``transport``; ``faults`` decide the fate of replies."""
        self.transport = transport
        self.lock = threading.RLock()
        self._faults = faults
        self._timer = timer
        self._connection_id = connection_id

    def send(self, frame: Frame) -> bool:
        """Write one frame; ``False`` if the connection is gone."""
        return self.send_many((frame,))

    def send_many(self, frames: Sequence[Frame]) -> bool:
        """Write frames back to back (one lock, one socket write when possible)."""
        if logger.isEnabledFor(logging.DEBUG):
            for frame in frames:
                logger.debug("conn %d << %s", self._connection_id, preview(frame))
        with self.lock:
            return self.transport.write(frames)

    def send_reply(self, frame: Frame, *, heartbeat: bool = False) -> None:
        """Write a ``phx_reply``, unless a fault delays or withholds it."""
        delay = self._faults.screen_reply(heartbeat, lambda: self._send_late(frame))
        if delay == 0.0:
            self.send(frame)
        elif delay != HELD:
            self._timer.call_later(delay, lambda: self._send_late(frame))

    def _send_late(self, frame: Frame) -> None:
        if not self.send(frame):
            logger.debug("conn %d: late reply dropped, connection gone", self._connection_id)
