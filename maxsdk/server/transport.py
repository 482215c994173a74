"""The seam between the Phoenix socket logic and the connection carrying it.

A :class:`~.session.Session` only needs to write frames and end its
connection; the WebSocket transport (``ws_connection.py``) and the LongPoll
transport (``longpoll.py``, reference §1.8) implement it without touching
sessions, channels, presence or faults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .message import Frame


class Transport(Protocol):
    """One client connection, as seen by its session."""

    name: str
    """``"websocket"`` or ``"longpoll"``."""

    def write(self, frames: Sequence[Frame]) -> bool:
        """Write ``frames`` in order; ``False`` (not an exception) if the connection is gone."""
        ...

    def close(self, code: int, reason: str = "") -> None:
        """End the connection gracefully (WebSocket: close frame with ``code``)."""
        ...

    def abort(self) -> None:
        """End the connection abruptly (WebSocket: no close frame)."""
        ...
