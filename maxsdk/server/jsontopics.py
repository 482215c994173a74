"""An embedded JSON topic-feed server (the exchange/IoT shape), for tests, examples and benchmarks.

The wire (the defaults of :class:`maxsdk.JsonFormat`)::

    >> {"op": "subscribe", "args": ["t1", "t2"], "id": 7}
    << {"id": 7, "result": {"subscribed": ["t1", "t2"]}}
       or, when one of them is refused (the whole message fails, as most exchanges do):
    << {"id": 7, "error": {"code": 403, "message": "subscription refused", "topics": ["t2"]}}
    >> {"op": "unsubscribe", "args": ["t1"], "id": 8}   << {"id": 8, "result": {"unsubscribed": ["t1"]}}
    << {"topic": "t1", "data": {...}}                    (server.publish("t1", {...}))
    >> {"op": "ping"}                                    << {"op": "pong"}
    << {"op": "ping"}  (server.ping_clients())           >> {"op": "pong"}
    << {"op": "reconnect"}  (server.request_reconnect())
    >> {"op": "auth", "args": {"token": "..."}, "id": 1} << {"id": 1, "result": {"authenticated": true}}
    >> {"op": "<name>", "args": ..., "id": 9}            << {"id": 9, "result": ...} (operations)

With ``confirmations="control"`` a subscribe gets no reply by id but one
message per topic: ``{"event": "subscribed", "topic": t}`` or ``{"event":
"error", "topic": t, "message": "subscription refused"}`` (use
``JsonFormat(subscription_confirmation="control", subscribed={"event":
"subscribed"}, subscribe_error={"event": "error"})``).

Built-in operations: ``echo`` (its args), ``time`` (server monotonic time),
``sleep`` (``[seconds, result]``, answered later). Register more with
``server.operation(name)(fn)`` (``fn(args)`` returns the result or raises
:class:`FeedError`). Unknown operations get ``{"code": 404, "message":
"unknown op"}``. With ``token=...`` everything but ``auth`` and ``ping`` is
refused (``{"code": 401}``) until authenticated.

Faults and observability: see :mod:`maxsdk.server.json_base`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .json_base import JsonConnection, JsonServerBase

__all__ = ["FeedError", "JsonTopicServer"]

Operation = Callable[[Any], Any]


class FeedError(Exception):
    """Raise from an operation to answer with ``{"code": code, "message": message}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JsonTopicServer(JsonServerBase):
    """A threaded JSON topic-feed WebSocket server.

    Args:
        operations: extra operations ``{name: fn(args) -> result}``.
        token: require ``{"op": "auth", "args": {"token": token}}`` first.
        confirmations: ``"reply"`` (by id) or ``"control"`` (per-topic messages).
        host, port, path: where to listen (127.0.0.1, a free port, ``/``).

    """

    kind = "jsontopics"

    def __init__(
        self,
        operations: dict[str, Operation] | None = None,
        *,
        token: str | None = None,
        confirmations: str = "reply",
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
    ) -> None:
        super().__init__(host=host, port=port, path=path)
        if confirmations not in ("reply", "control"):
            raise ValueError("confirmations must be 'reply' or 'control'")
        self.token = token
        self.confirmations = confirmations
        self.operations: dict[str, Operation] = {
            "echo": lambda args: args,
            "time": lambda args: time.monotonic(),
        }
        self.operations.update(operations or {})

    def operation(self, name: str) -> Callable[[Operation], Operation]:
        """Register ``fn(args)`` as operation ``name`` (a decorator)."""

        def register(fn: Operation) -> Operation:
            self.operations[name] = fn
            return fn

        return register

    # -- server-side actions ------------------------------------------------------------------------

    def publish(self, topic: str, data: Any) -> int:
        """Send ``{"topic": topic, "data": data}`` to every subscriber; returns how many got it."""
        targets = [c.connection_id for c in self._open_connections() if topic in c.data.get("topics", ())]
        return self.broadcast_json({"topic": topic, "data": data}, targets) if targets else 0

    def subscribers(self, topic: str) -> list[int]:
        """The connections subscribed to ``topic``."""
        return [c.connection_id for c in self._open_connections() if topic in c.data.get("topics", ())]

    def topics(self, connection_id: int | None = None) -> set[str]:
        """The topics subscribed on one connection, or on all."""
        found: set[str] = set()
        for connection in self._open_connections():
            if connection_id is None or connection.connection_id == connection_id:
                found |= connection.data.get("topics", set())
        return found

    def ping_clients(self) -> int:
        """Send ``{"op": "ping"}`` to every connection (clients answer ``{"op": "pong"}``)."""
        return self.broadcast_json({"op": "ping"})

    def request_reconnect(self) -> int:
        """Send ``{"op": "reconnect"}`` to every connection (a maintenance notice)."""
        return self.broadcast_json({"op": "reconnect"})

    # -- protocol ---------------------------------------------------------------------------------

    def on_open(self, connection: JsonConnection) -> None:
        """Every connection starts with no topics."""
        connection.data["topics"] = set()

    def handle_text(self, connection: JsonConnection, frame: str | bytes, message: Any) -> None:
        """Answer one client message."""
        if not isinstance(message, dict):
            self.reply(connection, {"error": {"code": 400, "message": "not a JSON object"}})
            return
        op = message.get("op")
        request_id = message.get("id")
        args: Any = message.get("args")
        if op == "ping":
            if not self.pings_paused:
                connection.send_json({"op": "pong"})
            return
        if op == "pong":
            return
        if op == "auth":
            self._auth(connection, request_id, args)
            return
        if self.token is not None and not connection.data.get("authenticated"):
            self._answer(connection, request_id, None, {"code": 401, "message": "not authenticated"})
            return
        if op == "subscribe":
            self._subscribe(connection, request_id, args)
        elif op == "unsubscribe":
            topics = _topic_list(args)
            connection.data["topics"].difference_update(topics)
            self._answer(connection, request_id, {"unsubscribed": topics}, None)
        elif op == "sleep":
            delay, result = args
            self.call_later(float(delay), lambda: self._answer(connection, request_id, result, None))
        else:
            self._operation(connection, request_id, op, args)

    def _auth(self, connection: JsonConnection, request_id: Any, args: Any) -> None:
        if self.token is not None and (not isinstance(args, dict) or args.get("token") != self.token):
            self._answer(connection, request_id, None, {"code": 401, "message": "invalid credentials"})
            return
        connection.data["authenticated"] = True
        self._answer(connection, request_id, {"authenticated": True}, None)

    def _subscribe(self, connection: JsonConnection, request_id: Any, args: Any) -> None:
        topics = _topic_list(args)
        if self.confirmations == "control":
            # One control message per topic; a refusal affects that topic only.
            for topic in topics:
                if self.subscription_refused(topic):
                    self.reply(connection, {"event": "error", "topic": topic, "message": "subscription refused"})
                else:
                    connection.data["topics"].add(topic)
                    self.reply(connection, {"event": "subscribed", "topic": topic})
            return
        refused = [topic for topic in topics if self.subscription_refused(topic)]
        if refused:
            self._answer(
                connection, request_id, None, {"code": 403, "message": "subscription refused", "topics": refused}
            )
            return
        connection.data["topics"].update(topics)
        self._answer(connection, request_id, {"subscribed": topics}, None)

    def _operation(self, connection: JsonConnection, request_id: Any, op: Any, args: Any) -> None:
        fn = self.operations.get(op) if isinstance(op, str) else None
        if fn is None:
            self._answer(connection, request_id, None, {"code": 404, "message": "unknown op"})
            return
        try:
            result = fn(args)
        except FeedError as exc:
            self._answer(connection, request_id, None, {"code": exc.code, "message": exc.message})
            return
        except Exception as exc:  # noqa: BLE001 - a crashing operation is answered, not fatal
            self._answer(connection, request_id, None, {"code": 500, "message": f"operation failed: {exc}"})
            return
        self._answer(connection, request_id, result, None)

    def _answer(self, connection: JsonConnection, request_id: Any, result: Any, error: Any) -> None:
        if request_id is None:
            return  # fire-and-forget messages get no reply
        if error is not None:
            self.reply(connection, {"id": request_id, "error": error})
        else:
            self.reply(connection, {"id": request_id, "result": result})


def _topic_list(args: Any) -> list[str]:
    if isinstance(args, str):
        return [args]
    if isinstance(args, list):
        return [str(topic) for topic in args]
    return []
