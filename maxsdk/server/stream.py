"""Recoverable streams: a bounded per-topic history with epochs, replay on join, history requests.

The server half of ``docs/recovery.md``, built only from what a Phoenix
channel has (``join/3`` + ``send(self(), ...)``, ``handle_info/2``,
``push/3``, ``handle_in/3``, a broadcast), so that it is the same recipe as
the Elixir module of the docs::

    history = StreamHistory(limit=1000)
    server = PhoenixServer(Router([("stream:*", history.channel)]))
    history.publish(server.endpoint, "stream:prices", "tick", {"p": 1})

* :meth:`StreamHistory.publish` numbers the event (offset + 1 in the topic's
  epoch), stamps ``"_pos": {"epoch", "offset"}`` into the payload, keeps it
  (oldest dropped past ``limit``) and broadcasts it, all under one lock, so
  offsets are broadcast in order.
* A join with a ``recover`` param is answered ``ok({"recovery": {...}})``;
  once subscribed (``handle_info``, as Phoenix's ``:after_join``), the channel
  pushes every retained event after the client's position, then one
  ``stream_recovered`` push saying whether the gap was filled.
* ``history`` (``{"since": position | null, "limit": n}``) and ``publish``
  (``{"event", "payload"}``) are answered by ``handle_in``.

The history lives in the :class:`StreamHistory` object, not in the server:
keep the object across ``server.restart()`` (as a real deployment keeps it in
a database) and clients recover; call :meth:`StreamHistory.new_epoch` to
simulate a server that lost its history.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .channel import Channel
from .result import Reply, error, ok

if TYPE_CHECKING:
    from .channel_socket import ChannelSocket
    from .endpoint import Endpoint

__all__ = ["StreamChannel", "StreamHistory"]

POSITION_FIELD = "_pos"
RECOVER_PARAM = "recover"
MARKER_EVENT = "stream_recovered"
MAX_HISTORY_LIMIT = 1000


@dataclass
class _Stream:
    epoch: str
    head: int = 0
    events: deque[tuple[int, str, dict[str, Any]]] = field(default_factory=deque)

    @property
    def oldest(self) -> int:
        return self.events[0][0] if self.events else self.head + 1

    def info(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "offset": self.head, "oldest": self.oldest}


class StreamHistory:
    """Bounded, numbered history of every stream topic (thread-safe).

    Args:
        limit: events kept per topic (older ones are trimmed).

    """

    def __init__(self, limit: int = 1000) -> None:
        """Create an empty history."""
        if type(limit) is not int or limit < 1:
            raise ValueError("limit must be a positive int")
        self.limit = limit
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        #: Events replayed to rejoining clients so far (all topics).
        self.replayed = 0

    def channel(self) -> StreamChannel:
        """A channel factory for a :class:`~maxsdk.server.Router` route."""
        return StreamChannel(self)

    def _stream(self, topic: str) -> _Stream:
        stream = self._streams.get(topic)
        if stream is None:
            stream = self._streams[topic] = _Stream(secrets.token_hex(6), events=deque(maxlen=self.limit))
        return stream

    def publish(self, endpoint: Endpoint, topic: str, event: str, payload: Mapping[str, Any]) -> int:
        """Number, keep and broadcast one event; return its offset."""
        return self.publish_many(endpoint, topic, event, (payload,))

    def publish_many(self, endpoint: Endpoint | None, topic: str, event: str, payloads: Any) -> int:
        """Number, keep and broadcast several events of one kind; return the last offset.

        With ``endpoint=None`` the events are only numbered and kept (as if
        broadcast while nobody was subscribed).
        """
        with self._lock:
            stream = self._stream(topic)
            for payload in payloads:
                stream.head += 1
                stamped = {**payload, POSITION_FIELD: {"epoch": stream.epoch, "offset": stream.head}}
                stream.events.append((stream.head, event, stamped))
                if endpoint is not None:
                    endpoint.broadcast(topic, event, stamped)
            return stream.head

    def stamp_many(self, topic: str, event: str, payloads: Any) -> list[dict[str, Any]]:
        """Number and keep several events without broadcasting; return the stamped payloads."""
        with self._lock:
            stream = self._stream(topic)
            stamped = []
            for payload in payloads:
                stream.head += 1
                item = {**payload, POSITION_FIELD: {"epoch": stream.epoch, "offset": stream.head}}
                stream.events.append((stream.head, event, item))
                stamped.append(item)
            return stamped

    def info(self, topic: str) -> dict[str, Any]:
        """``{"epoch", "offset" (the head), "oldest"}`` of ``topic``."""
        with self._lock:
            return self._stream(topic).info()

    def trim(self, topic: str, keep: int) -> None:
        """Drop all but the newest ``keep`` events of ``topic`` (as a full buffer would)."""
        with self._lock:
            events = self._stream(topic).events
            while len(events) > max(0, keep):
                events.popleft()

    def new_epoch(self, topic: str) -> str:
        """Forget ``topic``'s history and start a new epoch (a server that lost its state)."""
        with self._lock:
            stream = self._streams[topic] = _Stream(secrets.token_hex(6), events=deque(maxlen=self.limit))
            return stream.epoch

    def recover(self, topic: str, since: Any) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
        """The events after ``since`` and the ``stream_recovered`` payload that ends them."""
        with self._lock:
            stream = self._stream(topic)
            marker: dict[str, Any] = {**stream.info(), "recovered": True, "reason": None, "replayed": 0}
            if not since:
                return [], marker
            reason = _refusal(stream, since)
            if reason is not None:
                return [], {**marker, "recovered": False, "reason": reason}
            events = [(event, payload) for offset, event, payload in stream.events if offset > since["offset"]]
            self.replayed += len(events)
            return events, {**marker, "replayed": len(events)}

    def since(self, topic: str, since: Any, limit: int) -> Reply:
        """The reply to a ``history`` request."""
        with self._lock:
            stream = self._stream(topic)
            info = stream.info()
            if since is None:
                after = stream.oldest - 1
            else:
                reason = _refusal(stream, since)
                if reason is not None:
                    return error({"reason": reason, **info})
                after = since["offset"]
            events = [(event, payload) for offset, event, payload in stream.events if offset > after]
        page = [{"event": event, "payload": payload} for event, payload in events[:limit]]
        return ok({"events": page, "more": len(events) > limit, **info})


def _refusal(stream: _Stream, since: Mapping[str, Any]) -> str | None:
    if since.get("epoch") != stream.epoch:
        return "epoch_changed"
    if since["offset"] > stream.head:
        return "unknown_position"
    if since["offset"] < stream.oldest - 1:
        return "trimmed"
    return None


def _position(value: Any) -> dict[str, Any] | None:
    """A valid ``{"epoch", "offset"}``, ``{}`` for "no position yet", or None if invalid."""
    if isinstance(value, dict) and not value:
        return {}
    if (
        isinstance(value, dict)
        and isinstance(value.get("epoch"), str)
        and type(value.get("offset")) is int
        and value["offset"] >= 0
    ):
        return value
    return None


class StreamChannel(Channel):
    """A recoverable stream topic backed by a :class:`StreamHistory`."""

    def __init__(self, history: StreamHistory) -> None:
        """Serve one join from ``history``."""
        self.history = history

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        """Accept; with a ``recover`` param, schedule the replay for after the subscription."""
        if isinstance(payload, dict) and RECOVER_PARAM in payload:
            since = _position(payload[RECOVER_PARAM])
            if since is None:
                return error({"reason": "invalid_position"})
            socket.send_self(("recover", since))
        return ok({"recovery": self.history.info(topic)})

    def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        """Push the missed events, then ``stream_recovered``."""
        if isinstance(message, tuple) and message[0] == "recover":
            events, marker = self.history.recover(socket.topic, message[1])
            for event, run in groupby(events, key=itemgetter(0)):
                socket.push_many(event, (payload for _, payload in run))  # one encoder per run of one event
            socket.push(MARKER_EVENT, marker)

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        """``history`` and ``publish``."""
        body = payload if isinstance(payload, dict) else {}
        if event == "history":
            limit = body.get("limit", 100)
            since = body.get("since")
            if type(limit) is not int or limit < 1 or (since is not None and not _position(since)):
                return error({"reason": "bad_request"})
            return self.history.since(socket.topic, since, min(limit, MAX_HISTORY_LIMIT))
        if event == "publish" and isinstance(body.get("event"), str) and isinstance(body.get("payload"), dict):
            offset = self.history.publish(socket.endpoint, socket.topic, body["event"], body["payload"])
            return ok({"offset": offset})
        return error({"reason": "unknown event", "event": event})
