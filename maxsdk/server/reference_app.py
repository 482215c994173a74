"""The reference app: the Phoenix test app behind ``tests/golden``, plus demo channels.

Routes (see ``tests/golden/README.md``):

* ``room:*`` — :class:`RoomChannel`. ``room:private`` needs ``{"password": "pw"}``,
  ``room:crash_on_join`` raises in ``join``. After joining, presence is tracked
  under the ``user_id`` connect param (``"anon"`` without one): the
  ``presence_diff`` broadcast comes first, then the ``presence_state`` push.
  Events: ``echo``, ``echo_error``, ``noreply``, ``slow`` (``{"ms": N}``),
  ``shout`` (broadcast), ``new_msg`` (broadcast and reply ok: the chat event of
  the README), ``crash``, ``binary_echo``, ``push_binary``, ``flood``
  (``{"n": N, "size": S}``), ``kick_me`` (socket-id disconnect), ``drop_me``
  (connection dropped without close frame), ``close_channel``,
  ``close_channel_reply``, ``presence_update`` (``update`` of the tracked
  meta); anything else gets ``error {"reason": "unknown event", "event": E}``.
* ``echo:*`` — :class:`EchoChannel`: join ok, every event replies ok with its payload.
* ``ticker:*`` — :class:`TickerChannel`: pushes ``tick`` every ``interval_ms``
  (join param, default 1000) until left; a demo of server-initiated pushes.
* ``state:*`` — :class:`~maxsdk.server.state.StateChannel`: a replicated,
  versioned document per topic (``docs/state.md``).

The connect handler (:func:`reference_connect`) accepts every connection
unless a token is configured, in which case ``params["token"]`` must match
(else 403). It assigns ``user_id`` and the socket id ``user_socket:<user_id>``.
"""

from __future__ import annotations

import time
from typing import Any

from .channel import Channel
from .channel_socket import ChannelSocket
from .connect import Accept, ConnectDecision, ConnectHandler, ConnectRequest, Refuse
from .result import Reply, Stop, error, ok
from .router import Router
from .state import StateChannel

_AFTER_JOIN = "after_join"
_KICK = "kick"
_DROP = "drop"
_TICK = "tick"

BINARY_PUSH = b"\x01\x02\x03\xff"
"""The payload of the ``bin`` push sent by ``push_binary``."""

DROP_DELAY = 0.1
"""Seconds between the ``drop_me`` reply and the dropped connection (as recorded)."""


def reference_connect(token: str | None = None) -> ConnectHandler:
    """The reference socket's ``connect/3`` + ``id/1``.

    Args:
        token: When set, ``params["token"]`` must equal it (else HTTP 403).

    """

    def connect(request: ConnectRequest) -> ConnectDecision:
        if token is not None and request.params.get("token") != token:
            return Refuse(403)
        user_id = request.params.get("user_id")
        user_id = user_id if isinstance(user_id, str) and user_id else "anon"
        return Accept(assigns={"user_id": user_id}, socket_id=f"user_socket:{user_id}")

    return connect


def reference_router() -> Router:
    """The default routes: ``room:*``, ``echo:*``, ``ticker:*``, ``state:*``."""
    return Router(
        [
            ("room:*", RoomChannel),
            ("echo:*", EchoChannel),
            ("ticker:*", TickerChannel),
            ("state:*", StateChannel),
        ]
    )


class RoomChannel(Channel):
    """The recorded test app's ``room:*`` channel."""

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        """Refuse ``room:private`` without the password; crash on ``room:crash_on_join``."""
        if topic == "room:crash_on_join":
            raise RuntimeError("crash on join (requested)")
        if topic == "room:private" and _get(payload, "password") != "pw":
            return error({"reason": "unauthorized"})
        socket.send_self(_AFTER_JOIN)
        return ok({"joined": topic})

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        """Track presence after the join; carry out kicks and drops after their reply."""
        if message == _AFTER_JOIN:
            socket.track(_user_id(socket), {"online_at": str(int(time.time()))})
            socket.push("presence_state", socket.presence_state())
        elif message == _KICK and socket.socket_id is not None:
            socket.endpoint.disconnect(socket.socket_id)
        elif message == _DROP:
            socket.kill_transport()
        return None

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        """Dispatch the recorded app's events."""
        handler = getattr(self, f"_on_{event}", None)
        if handler is None:
            return error({"reason": "unknown event", "event": event})
        result: Reply | Stop | None = handler(payload, socket)
        return result

    def _on_echo(self, payload: Any, socket: ChannelSocket) -> Reply:
        return ok(payload)

    def _on_echo_error(self, payload: Any, socket: ChannelSocket) -> Reply:
        return error(payload)

    def _on_noreply(self, payload: Any, socket: ChannelSocket) -> None:
        return None

    def _on_slow(self, payload: Any, socket: ChannelSocket) -> Reply:
        ms = _get(payload, "ms", 0)
        # Wait on the server's stop event so that stopping never waits for a sleeper.
        socket.endpoint.stopping.wait(max(0, ms) / 1000)
        return ok({"slept": ms})

    def _on_shout(self, payload: Any, socket: ChannelSocket) -> Reply:
        socket.broadcast("shout", payload)
        return ok()

    def _on_new_msg(self, payload: Any, socket: ChannelSocket) -> Reply:
        # The chat event of Phoenix's channel guide (and of our README): broadcast to the
        # topic, the sender included; the reply lets a blocking push() return.
        if not isinstance(payload, dict):
            return error({"reason": "payload must be an object"})
        socket.broadcast("new_msg", payload)
        return ok()

    def _on_crash(self, payload: Any, socket: ChannelSocket) -> Reply:
        raise RuntimeError("crash (requested)")

    def _on_binary_echo(self, payload: Any, socket: ChannelSocket) -> Reply:
        return ok(payload)

    def _on_push_binary(self, payload: Any, socket: ChannelSocket) -> Reply:
        socket.push("bin", BINARY_PUSH)
        return ok()

    def _on_flood(self, payload: Any, socket: ChannelSocket) -> Reply:
        count = int(_get(payload, "n", 0))
        data = "x" * int(_get(payload, "size", 0))
        sent = socket.push_many("flood_msg", ({"data": data, "i": i} for i in range(1, count + 1)))
        return ok({"sent": sent})

    def _on_kick_me(self, payload: Any, socket: ChannelSocket) -> Reply:
        socket.send_self(_KICK)
        return ok()

    def _on_drop_me(self, payload: Any, socket: ChannelSocket) -> Reply:
        socket.send_self(_DROP, delay=DROP_DELAY)
        return ok()

    def _on_close_channel(self, payload: Any, socket: ChannelSocket) -> Stop:
        return Stop("normal")

    def _on_close_channel_reply(self, payload: Any, socket: ChannelSocket) -> Stop:
        return Stop("normal", reply=ok({"closing": True}))

    def _on_presence_update(self, payload: Any, socket: ChannelSocket) -> Reply:
        meta = payload if isinstance(payload, dict) else {}
        phx_ref = socket.update(_user_id(socket), {"online_at": str(int(time.time())), **meta})
        return ok({"phx_ref": phx_ref})


class EchoChannel(Channel):
    """``echo:*``: join ok, every event replies ok with its payload."""

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        """Reply ok with the payload (bytes come back as a binary reply)."""
        return ok(payload)


class TickerChannel(Channel):
    """``ticker:*``: pushes ``{"n": i}`` as ``tick`` every ``interval_ms``."""

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        """Start ticking."""
        interval = _get(payload, "interval_ms", 1000)
        socket.assigns["interval"] = max(10, int(interval)) / 1000
        socket.assigns["n"] = 0
        socket.send_self(_TICK, delay=socket.assigns["interval"])
        return ok({"interval_ms": int(socket.assigns["interval"] * 1000)})

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        """Push one tick and schedule the next."""
        if message == _TICK:
            socket.assigns["n"] += 1
            socket.push("tick", {"n": socket.assigns["n"]})
            socket.send_self(_TICK, delay=socket.assigns["interval"])
        return None

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        """Answer ``count`` with the ticks pushed so far."""
        return ok({"n": socket.assigns["n"]})


def _get(payload: Any, key: str, default: Any = None) -> Any:
    return payload.get(key, default) if isinstance(payload, dict) else default


def _user_id(socket: ChannelSocket) -> str:
    user_id = socket.assigns.get("user_id")
    return user_id if isinstance(user_id, str) else "anon"
