"""The switchboard of scripted faults (state only; the actions live on the endpoint).

Every switch is thread-safe and stays set until turned off, across server
restarts. Replies are screened here on their way out (see ``outbox.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .router import topic_matches

HELD = -1.0
"""Returned by :meth:`Faults.screen_reply` when a reply was withheld."""

Release = Callable[[], None]


class Faults:
    """Current fault switches, read by sessions, outboxes and the handshake."""

    def __init__(self) -> None:
        """All switches off."""
        self._lock = threading.Lock()
        self._heartbeats_paused = False
        self._reply_delay = 0.0
        self._delay_heartbeats = False
        self._withholding = False
        self._withhold_heartbeats = False
        self._withheld: list[Release] = []
        self._join_refusals: list[tuple[str, str]] = []
        self._refuse_status: int | None = None
        self._refuse_transport: str | None = None

    # -- switches ------------------------------------------------------------

    def pause_heartbeats(self) -> None:
        """Stop answering heartbeats (they are received and recorded, never answered)."""
        with self._lock:
            self._heartbeats_paused = True

    def resume_heartbeats(self) -> None:
        """Answer heartbeats again (those ignored meanwhile stay unanswered)."""
        with self._lock:
            self._heartbeats_paused = False

    def delay_replies(self, seconds: float, *, heartbeats: bool = False) -> None:
        """Send every ``phx_reply`` ``seconds`` late (0 turns it off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._reply_delay = float(seconds)
            self._delay_heartbeats = heartbeats

    def withhold_replies(self, *, heartbeats: bool = False) -> None:
        """Keep every ``phx_reply`` back until :meth:`take_withheld`."""
        with self._lock:
            self._withholding = True
            self._withhold_heartbeats = heartbeats

    def take_withheld(self) -> list[Release]:
        """Stop withholding and hand over the senders of the replies kept back."""
        with self._lock:
            self._withholding = False
            withheld, self._withheld = self._withheld, []
            return withheld

    def refuse_joins(self, pattern: str = "*", reason: str = "join refused") -> None:
        """Answer joins of topics matching ``pattern`` with ``error {"reason": reason}``."""
        with self._lock:
            self._join_refusals.append((pattern, reason))

    def allow_joins(self, pattern: str | None = None) -> None:
        """Drop the join refusal for ``pattern`` (every refusal when ``None``)."""
        with self._lock:
            self._join_refusals = [(p, r) for p, r in self._join_refusals if pattern is not None and p != pattern]

    def refuse_connections(self, status: int = 503, *, transport: str | None = None) -> None:
        """Refuse every new connection with HTTP ``status``.

        Args:
            status: The HTTP status (400-599).
            transport: Refuse only ``"websocket"`` upgrades (a proxy that blocks
                WebSockets) or only ``"longpoll"`` sessions; ``None`` = both.

        """
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if transport not in (None, "websocket", "longpoll"):
            raise ValueError("transport must be 'websocket', 'longpoll' or None")
        with self._lock:
            self._refuse_status = status
            self._refuse_transport = transport

    def accept_connections(self) -> None:
        """Accept new connections again."""
        with self._lock:
            self._refuse_status = None
            self._refuse_transport = None

    def reset(self) -> list[Release]:
        """Turn every switch off; returns the withheld replies (not sent)."""
        with self._lock:
            withheld, self._withheld = self._withheld, []
            self._heartbeats_paused = False
            self._reply_delay = 0.0
            self._delay_heartbeats = False
            self._withholding = False
            self._withhold_heartbeats = False
            self._join_refusals = []
            self._refuse_status = None
            self._refuse_transport = None
        return withheld

    # -- queries -------------------------------------------------------------

    @property
    def heartbeats_paused(self) -> bool:
        """Whether heartbeats go unanswered."""
        with self._lock:
            return self._heartbeats_paused

    def screen_reply(self, heartbeat: bool, release: Release) -> float:
        """Decide the fate of one reply.

        Returns:
            ``0.0`` to send it now, a delay in seconds, or :data:`HELD` once
            ``release`` has been kept for :meth:`take_withheld`.

        """
        with self._lock:
            if self._withholding and (self._withhold_heartbeats or not heartbeat):
                self._withheld.append(release)
                return HELD
            if self._reply_delay and (self._delay_heartbeats or not heartbeat):
                return self._reply_delay
            return 0.0

    def join_refusal(self, topic: str) -> str | None:
        """The refusal reason for joining ``topic``, if a refusal matches."""
        with self._lock:
            for pattern, reason in self._join_refusals:
                if topic_matches(pattern, topic):
                    return reason
            return None

    @property
    def connection_refusal(self) -> int | None:
        """The HTTP status new connections get, or ``None`` when they are accepted."""
        with self._lock:
            return self._refuse_status

    def refusal_for(self, transport: str) -> int | None:
        """The HTTP status new connections of ``transport`` get, or ``None`` when they are accepted."""
        with self._lock:
            if self._refuse_transport not in (None, transport):
                return None
            return self._refuse_status
