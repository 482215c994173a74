"""Protocol drivers: the runtime-side glue between the generic engine and one protocol.

A driver owns the protocol's sans-I/O session (see
:mod:`maxsdk.protocol.session`) and knows the few things the engine cannot know
generically: how to build the connection URL, how to decode a frame, what to
do with the session's followups (outside the engine lock), which dispatcher
events are its own, and what a graceful close means (Phoenix leaves its
channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from maxsdk.config import ClientConfig
from maxsdk.protocol.session import ProtocolSession
from maxsdk.status import ChannelSnapshot

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["ProtocolDriver"]


class ProtocolDriver(Protocol):
    """What the engine asks of a protocol (Phoenix, JSON-RPC, generic JSON...)."""

    #: The settings; with failover the engine sets it per attempt (``url`` is the chosen endpoint).
    config: ClientConfig

    @property
    def session(self) -> ProtocolSession:
        """The protocol's sans-I/O session."""

    def connect_url(self, params: Mapping[str, Any] | None) -> str:
        """The URL of one connection attempt, with freshly evaluated params."""

    def subprotocols(self, token: str | None) -> tuple[str, ...]:
        """``Sec-WebSocket-Protocol`` values for this attempt."""

    def decode_text(self, data: bytes | str) -> Any:
        """Decode a text frame; raise :class:`RemoteProtocolError` if malformed."""

    def decode_binary(self, data: bytes) -> Any:
        """Decode a binary frame; raise :class:`RemoteProtocolError` if malformed."""

    def run_followups(self, engine: Engine, followups: list[Any]) -> None:
        """Act on the session's followups, outside the engine lock."""

    def dispatch(self, engine: Engine, item: Any) -> bool:
        """Handle a protocol event on the dispatcher thread; ``False`` if not one of ours."""

    def droppable(self, item: Any) -> bool:
        """Whether the overflow policy may drop this event (messages yes, state changes no)."""

    def lane_of(self, item: Any) -> Any:
        """The dispatch lane of an event (a channel's), or ``None`` for the connection's lane."""

    def before_close(self, engine: Engine, deadline: float) -> None:
        """Graceful steps before the connection closes (e.g. leave channels)."""

    def snapshot(self) -> tuple[ChannelSnapshot, ...]:
        """Channels or subscriptions for diagnostics (called under the engine lock)."""
