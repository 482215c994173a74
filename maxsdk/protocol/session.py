"""The contract between the runtime engine and a sans-I/O protocol session.

The engine (threads, sockets, timers) drives any object that follows
:class:`ProtocolSession`; Phoenix Channels (:class:`~maxsdk.protocol.phoenix.session.PhoenixSession`)
and the generic request/subscription protocols
(:class:`~maxsdk.protocol.handler_session.HandlerSession`) both do. The engine
serializes every call with one lock, passes the monotonic time in, and drains
the outputs after each call:

* ``outgoing`` — encoded frames to write, in order;
* ``completions`` — ``(waiter, outcome)`` pairs to hand to blocked callers;
* ``followups`` — work that must run *outside* the lock because it calls user
  code (e.g. evaluating a channel's join params before a rejoin); the
  protocol's runtime driver knows what to do with each item;
* events go to the ``emit`` callable given at construction (the dispatcher);
* ``close_request`` — set when the connection must be dropped (e.g. a missed
  heartbeat); the engine closes the transport and reconnects.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from maxsdk.errors import RemoteProtocolError

__all__ = ["ProtocolSession"]


class ProtocolSession(Protocol):
    """What the engine needs from a protocol's sans-I/O session."""

    outgoing: deque[str | bytes]
    close_request: str | None
    connected: bool
    emit_raw: bool
    heartbeat_timeout_suspended: bool
    #: Session counters; ``heartbeat_replies`` (answered heartbeats/pings) tells the
    #: engine a connection proved healthy (so do ``joins_ok``, where a protocol has joins).
    counters: dict[str, int]
    last_heartbeat_rtt: float | None

    @property
    def completions(self) -> Sequence[Any]:
        """``(waiter, outcome)`` pairs produced by the last calls (drained by :meth:`take_output`)."""

    @property
    def followups(self) -> Sequence[Any]:
        """Work for the driver to do outside the lock (drained by :meth:`take_output`)."""

    def connection_opened(self, now: float, *, heartbeats: bool = True) -> None:
        """The transport opened."""

    def connection_closed(self, now: float, reason: str = "connection_closed") -> None:
        """The transport closed; in-flight requests end, subscriptions wait for the next open."""

    def receive(self, message: Any, now: float) -> None:
        """Route one decoded incoming message."""

    def protocol_error(self, error: RemoteProtocolError) -> None:
        """Count and report a frame that could not be decoded."""

    def on_deadline(self, now: float) -> None:
        """Act on every deadline that has passed."""

    def next_deadline(self) -> float | None:
        """The earliest deadline, or ``None``."""

    def take_new_deadline(self) -> float:
        """The earliest deadline set since the last call (``inf`` if none)."""

    def take_output(self) -> tuple[Sequence[Any], Sequence[Any]]:
        """Return and clear ``(completions, followups)``."""

    def shutdown(self) -> None:
        """The client is closing for good: end every wait."""

    @property
    def pending_count(self) -> int:
        """Requests awaiting a reply."""
