"""What the Phoenix protocol core tells the runtime: events to dispatch and completions.

All are immutable records. The runtime turns events into user callbacks and
signals on its dispatcher thread, and completions into results for blocked
callers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from maxsdk.errors import RemoteProtocolError
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.protocol.phoenix.message import Message

__all__ = [
    "ChannelMessage",
    "ChannelStateChanged",
    "Completion",
    "HeartbeatReplied",
    "Outcome",
    "ProtocolErrorReceived",
    "RawMessage",
]


class ChannelMessage(NamedTuple):
    """A message for a channel's handlers (broadcast, server push, phx_error/phx_close).

    ``join_ref`` is the channel's join_ref when the message was routed (presence
    sync needs it: §6.3 buffers diffs per join).
    """

    owner: Any
    message: Message
    join_ref: str | None = None


class RawMessage(NamedTuple):
    """Every decoded message, for socket-level observers (only emitted when asked for)."""

    message: Message


class ChannelStateChanged(NamedTuple):
    """A channel moved from one state to another.

    Attributes:
        owner: the public channel object.
        topic: its topic.
        old: the previous state.
        new: the new state.
        reason: why, in a word (``"joined"``, ``"rejoined"``, ``"refused"``,
            ``"rejoin_refused"``, ``"timeout"``, ``"crashed"``,
            ``"connection_closed"``, ``"heartbeat_timeout"``, ``"left"``,
            ``"closed_by_server"``, ``"replaced"``).
        response: the server's payload when there is one (join reply, phx_error).
        join_ref: the join_ref of the incarnation concerned.

    """

    owner: Any
    topic: str
    old: ChannelState
    new: ChannelState
    reason: str
    response: Any
    join_ref: str | None


class HeartbeatReplied(NamedTuple):
    """A heartbeat reply arrived; ``rtt`` is its round trip in seconds."""

    ref: str
    rtt: float


class ProtocolErrorReceived(NamedTuple):
    """A frame could not be decoded or routed; the connection carries on."""

    error: RemoteProtocolError


class Outcome(NamedTuple):
    """How a push (or join, or leave) ended.

    Attributes:
        status: the reply status (``"ok"``, ``"error"`` or custom), or one of
            the local outcomes ``"timeout"``, ``"lost"`` (connection or channel
            dropped after sending) and ``"closed"`` (channel closed before
            sending).
        response: the reply's response, or ``None`` for local outcomes.
        topic: the channel topic.
        event: the pushed event.
        ref: the push's ref.

    """

    status: str
    response: Any
    topic: str
    event: str
    ref: str


class Completion(NamedTuple):
    """A waiter token and the outcome to hand it."""

    waiter: Any
    outcome: Outcome
