"""What channel callbacks return (the Python shape of Phoenix.Channel's tuples).

==============================================  =========================================
Phoenix                                          here
==============================================  =========================================
``{:ok, socket}`` / ``{:ok, reply, socket}``     ``None`` / ``ok(reply)`` from ``join``
``{:error, reply}``                              ``error(reply)`` from ``join``
``{:reply, {status, payload}, socket}``          ``Reply(status, payload)``, ``ok(..)``, ``error(..)``
``{:noreply, socket}``                           ``None``
``{:stop, reason, socket}``                      ``Stop(reason)``
``{:stop, reason, reply, socket}``               ``Stop(reason, reply=ok(..))``
==============================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .message import OutPayload

GRACEFUL_REASONS = frozenset({"normal", "shutdown"})
"""Stop reasons that end a channel with ``phx_close``; others end it with ``phx_error``."""


@dataclass(frozen=True)
class Reply:
    """A ``phx_reply``: any status string and a JSON object (or bytes, sent as binary).

    Attributes:
        status: ``"ok"``, ``"error"`` or any custom status.
        response: The reply body; ``bytes`` become a binary kind 1 frame on V2.

    """

    status: str
    response: OutPayload = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    """Stop the channel, optionally replying first.

    Attributes:
        reason: ``"normal"``, ``"shutdown"`` or ``"shutdown:<why>"`` end the
            channel with ``phx_close``; any other reason counts as a crash and
            ends it with ``phx_error``.
        reply: A reply sent before the channel stops.

    """

    reason: str = "normal"
    reply: Reply | None = None

    @property
    def graceful(self) -> bool:
        """Whether the reason ends the channel with ``phx_close``."""
        return is_graceful(self.reason)


def is_graceful(reason: str) -> bool:
    """Whether a stop reason is ``normal``, ``shutdown`` or ``shutdown:<why>``."""
    return reason in GRACEFUL_REASONS or reason.startswith("shutdown:")


def ok(response: OutPayload | None = None) -> Reply:
    """An ``ok`` reply (``{}`` when no response is given)."""
    return Reply("ok", _body(response))


def error(response: OutPayload | None = None) -> Reply:
    """An ``error`` reply (``{}`` when no response is given)."""
    return Reply("error", _body(response))


def _body(response: OutPayload | None) -> OutPayload:
    if response is None:
        empty: Mapping[str, Any] = {}
        return empty
    return response
