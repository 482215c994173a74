"""The channel state machine: every transition in one table (reference §5.2).

Rules, in words:

* A channel starts ``closed``. ``join`` moves it to ``joining``; an ``ok``
  reply to the join moves it to ``joined``.
* A refused or timed-out *first* join (the one a caller is blocked on) ends
  ``closed``: the caller gets the error, and we do not retry a refusal the
  caller has already seen (phoenix.js would retry forever, reference §7).
  A refused or timed-out *rejoin* moves to ``errored`` and follows the rejoin
  schedule (1, 2, 5, then 10 s by default).
* A server ``phx_error`` (channel crash) or a lost connection moves a joining or
  joined channel to ``errored``; it rejoins with a new join_ref as soon as the
  connection is open again (or after the rejoin delay if it still is).
* A server ``phx_close`` for the current join_ref closes it for good.
* ``leave`` moves to ``leaving``; the leave reply (or its timeout) closes it.
  An explicit leave is never undone by a reconnect.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from maxsdk.errors import LocalProtocolError

__all__ = ["TRANSITIONS", "ChannelCore", "ChannelState", "Trigger", "transition"]


class ChannelState(str, enum.Enum):
    """Where a channel is in its lifecycle."""

    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    ERRORED = "errored"

    def __str__(self) -> str:
        return self.value


class Trigger(str, enum.Enum):
    """What can happen to a channel."""

    JOIN = "join"
    JOIN_OK = "join_ok"
    JOIN_FAILED = "join_failed"  # first join refused or timed out: the caller sees it
    REJOIN_FAILED = "rejoin_failed"  # a rejoin refused or timed out: retried on schedule
    SERVER_ERROR = "server_error"  # phx_error for the current join_ref
    CONNECTION_LOST = "connection_lost"
    REJOIN = "rejoin"
    SERVER_CLOSE = "server_close"  # phx_close for the current join_ref
    LEAVE = "leave"
    LEAVE_DONE = "leave_done"

    def __str__(self) -> str:
        return self.value


S, T = ChannelState, Trigger

#: ``(state, trigger) -> new state``. Anything missing is illegal.
TRANSITIONS: dict[tuple[ChannelState, Trigger], ChannelState] = {
    (S.CLOSED, T.JOIN): S.JOINING,
    (S.JOINING, T.JOIN_OK): S.JOINED,
    (S.JOINING, T.JOIN_FAILED): S.CLOSED,
    (S.JOINING, T.REJOIN_FAILED): S.ERRORED,
    (S.JOINING, T.SERVER_ERROR): S.ERRORED,
    (S.JOINED, T.SERVER_ERROR): S.ERRORED,
    (S.JOINING, T.CONNECTION_LOST): S.ERRORED,
    (S.JOINED, T.CONNECTION_LOST): S.ERRORED,
    (S.ERRORED, T.CONNECTION_LOST): S.ERRORED,
    (S.ERRORED, T.REJOIN): S.JOINING,
    (S.ERRORED, T.JOIN_FAILED): S.CLOSED,
    (S.JOINING, T.SERVER_CLOSE): S.CLOSED,
    (S.JOINED, T.SERVER_CLOSE): S.CLOSED,
    (S.ERRORED, T.SERVER_CLOSE): S.CLOSED,
    (S.LEAVING, T.SERVER_CLOSE): S.CLOSED,
    (S.JOINING, T.LEAVE): S.LEAVING,
    (S.JOINED, T.LEAVE): S.LEAVING,
    (S.ERRORED, T.LEAVE): S.LEAVING,
    (S.LEAVING, T.LEAVE_DONE): S.CLOSED,
    (S.LEAVING, T.CONNECTION_LOST): S.CLOSED,
}


def transition(state: ChannelState, trigger: Trigger) -> ChannelState:
    """Return the state after ``trigger``.

    Raises:
        LocalProtocolError: the transition is not in :data:`TRANSITIONS`.

    """
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise LocalProtocolError(f"channel cannot go from {state} on {trigger}") from None


@dataclass(eq=False)
class ChannelCore:
    """The protocol state of one channel object (no threads, no I/O).

    Attributes:
        topic: the channel topic.
        owner: the public object this core belongs to (opaque to the core;
            carried on the events so the runtime can route them).
        timeout: default timeout of this channel's pushes, in seconds.
        state: the current :class:`ChannelState`.
        join_ref: the join_ref of the current incarnation, or ``None``.
        join_sent: whether the current incarnation's ``phx_join`` went out.
        joined_once: whether any join of this object succeeded (a later
            refusal is then a *rejoin* failure).
        join_waiter: the token of a caller blocked in ``join()``, if any.
        rejoin_attempt: rejoin retries since the last success (1-based).
        buffer: refs of pushes waiting for the join to complete, in order.
        last_join_response: the response of the last join reply.
        leave_reason: why the channel is leaving (``"left"``, ``"replaced"``).

    """

    topic: str
    owner: Any
    timeout: float
    state: ChannelState = ChannelState.CLOSED
    join_ref: str | None = None
    join_sent: bool = False
    joined_once: bool = False
    join_waiter: Any = None
    rejoin_attempt: int = 0
    buffer: deque[str] = field(default_factory=deque)
    last_join_response: Any = None
    leave_reason: str = "left"

    def apply(self, trigger: Trigger) -> ChannelState:
        """Apply ``trigger``; return the previous state."""
        previous = self.state
        self.state = transition(previous, trigger)
        return previous

    @property
    def is_active(self) -> bool:
        """Joining, joined or errored: the channel wants to be joined."""
        return self.state in (ChannelState.JOINING, ChannelState.JOINED, ChannelState.ERRORED)

    def __repr__(self) -> str:
        return f"<ChannelCore {self.topic!r} {self.state} join_ref={self.join_ref!r}>"
