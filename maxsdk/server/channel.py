"""The base class of channel handlers, modelled on ``Phoenix.Channel``.

One handler instance serves one join (one incarnation of a topic on one
connection). Its callbacks run one at a time, in message order, on a worker
thread shared with other channels, so a slow callback delays only its own
channel. ``join`` runs on the connection's reader thread, as Phoenix runs it
inside the socket process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .result import Reply, Stop

if TYPE_CHECKING:
    from .channel_socket import ChannelSocket


class Channel:
    """Subclass and override the callbacks you need.

    Example::

        class RoomChannel(Channel):
            def join(self, topic, payload, socket):
                return ok({"joined": topic})

            def handle_in(self, event, payload, socket):
                if event == "ping":
                    return ok({"pong": True})
                return error({"reason": "unknown event"})
    """

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        """Accept or refuse a join.

        Returns:
            ``None`` or ``ok(response)`` to join; ``error(response)`` to refuse.
            Raising refuses with ``{"reason": "join crashed"}``.

        """
        return None

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        """Handle one client event; ``payload`` is a JSON value or ``bytes``.

        Returns:
            A :class:`Reply`, ``None`` for no reply, or :class:`Stop`. Raising
            crashes the channel (``phx_error``). The default raises, as a
            Phoenix channel without a matching ``handle_in`` clause does.

        """
        raise NotImplementedError(f"{type(self).__name__} has no handle_in for {event!r}")

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        """Handle a message sent with :meth:`ChannelSocket.send_self`."""
        return None

    def terminate(self, reason: str, socket: ChannelSocket) -> None:
        """Called when the channel stops, leaves or shuts down (not when killed)."""
