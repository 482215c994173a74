"""JSON-RPC 2.0 over WebSocket as a :class:`~maxsdk.protocol.handler.ProtocolHandler`.

The client side of the JSON-RPC 2.0 specification (https://www.jsonrpc.org/specification):

* requests ``{"jsonrpc": "2.0", "method": ..., "params": ..., "id": ...}``
  (``params`` omitted when ``None``, else an array or an object), notifications
  without ``id``, batches as arrays;
* responses carry exactly one of ``result`` and ``error``; an ``error`` is an
  object with an integer ``code`` and a string ``message`` (``data``
  optional). A response with ``"id": null`` answers a request the server
  could not read (parse error, invalid request): it matches no request and is
  reported as such. Anything else malformed is a protocol error: counted and
  reported, and the request it names (if any) fails at once;
* ids are strings or integers, unique and increasing;
* server subscriptions, in two styles:

  - **subscription ids** (the ``eth_subscribe`` pattern): a subscribe call
    returns a subscription id, updates arrive as notifications carrying it,
    ``{"method": "eth_subscription", "params": {"subscription": id, "result": data}}``,
    and an unsubscribe call with the id ends it. An update reaches the live
    subscription its id names *whatever the notification's method* (servers
    use ``eth_subscription``, ``subscription``, ``<ns>_subscription``...);
    one that names no live subscription is counted (``unroutable``) and
    delivered as a notification under its method;
  - **named events** (the rpc-websockets pattern): ``rpc.on`` with
    ``[event]`` subscribes (the result maps each event to ``"ok"``), the
    server sends ``{"notification": event, "params": ...}`` (no ``jsonrpc``
    member), ``rpc.off`` ends it.

  Other server notifications are delivered by method name. Method names
  starting with ``rpc.`` are reserved by the specification *for extensions*
  (``rpc.on``, ``rpc.login``, ``rpc.discover``...) and are sent like any other.

JSON-RPC has no ping message: liveness uses WebSocket pings unless a
``ping_method`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from maxsdk.errors import ConfigurationError, LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.handler import (
    WEBSOCKET_PING,
    Frame,
    FrameKind,
    Incoming,
    ProtocolHandler,
    RequestId,
    SubscribeResult,
    TopicRef,
)

__all__ = ["EVENT_KEY_PREFIX", "JsonRpcProtocol", "encode_json"]

#: The subscription key of a named-event subscription is this prefix plus the event name.
EVENT_KEY_PREFIX = "event:"
#: rpc-websockets answers these for an event it subscribed (or had already subscribed).
_EVENT_OK = ("ok", "socket has already been subscribed to event")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

_REPLY = FrameKind.REPLY
_UPDATE = FrameKind.UPDATE
_NOTIFICATION = FrameKind.NOTIFICATION
_INVALID = FrameKind.INVALID


def encode_json(value: Any) -> str:
    """Compact JSON text that can travel in a UTF-8 text frame.

    Raises:
        LocalProtocolError: not JSON-serializable (NaN and Infinity included),
            or a string holds a lone surrogate.

    """
    try:
        text: str = _dumps(value)
        if not text.isascii():
            text.encode()
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise LocalProtocolError(f"not JSON-serializable: {exc}") from exc
    return text


def _encode_id(request_id: RequestId | None) -> str:
    if request_id is None:
        return "null"
    if type(request_id) is int:
        return str(request_id)
    return encode_json(request_id)


class JsonRpcProtocol(ProtocolHandler):
    """JSON-RPC 2.0 messages (client side).

    Args:
        string_ids: send string ids (``"000000000001"``...) instead of integers.
        auth_method: with credentials, call this method with them as params
            on every connection (e.g. ``"auth.login"``, rpc-websockets'
            ``"rpc.login"``); the login is refused when the server answers
            with an error or with the result ``false``.
        ping_method: a method to call as a ping (its reply is the pong);
            ``None`` uses WebSocket pings.
        update_methods: the methods of the notifications that carry
            subscription updates (default ``("eth_subscription",)``). Updates
            are routed by the subscription id they carry, whatever their
            method; these names only make an update that matches no live
            subscription count as ``unroutable`` even when its params are not
            the usual ``{"subscription": ..., "result": ...}`` object.
        subscription_suffix: notifications whose method ends with it are
            update methods too (``parity_subscription``...).

    """

    name = "jsonrpc"
    request_id_per_topic = True
    subscription_confirmation = "reply"

    def __init__(
        self,
        *,
        string_ids: bool = False,
        auth_method: str | None = None,
        ping_method: str | None = None,
        update_methods: Sequence[str] = ("eth_subscription",),
        subscription_suffix: str = "_subscription",
    ) -> None:
        for name, value in (("auth_method", auth_method), ("ping_method", ping_method)):
            if value is not None and (type(value) is not str or not value):
                raise ConfigurationError(f"{name} must be a non-empty string or None")
        if isinstance(update_methods, str) or not all(type(m) is str and m for m in update_methods):
            raise ConfigurationError("update_methods must be a sequence of method names")
        if type(subscription_suffix) is not str:
            raise ConfigurationError("subscription_suffix must be a string")
        self.string_ids = bool(string_ids)
        self.auth_method = auth_method
        self.ping_method = ping_method
        self.update_methods = frozenset(update_methods)
        self.subscription_suffix = subscription_suffix

    def add_update_method(self, method: str) -> None:
        """Treat ``method`` as an update notification too (see ``update_methods``)."""
        self.update_methods = self.update_methods | {method}

    def is_update_method(self, method: str) -> bool:
        """Whether notifications named ``method`` carry subscription updates."""
        suffix = self.subscription_suffix
        return method in self.update_methods or (bool(suffix) and method.endswith(suffix))

    # -- outgoing --------------------------------------------------------------------------

    def request(self, request_id: RequestId, method: str, params: Any, *, scope: TopicRef | None = None) -> Frame:
        """``{"jsonrpc":"2.0","method":...,"params":...,"id":...}``."""
        return self._message(request_id, method, params, True)

    def notification(self, method: str, params: Any) -> Frame:
        """A request without ``id``: the server sends nothing back."""
        return self._message(None, method, params, False)

    def batch(self, items: Sequence[tuple[RequestId | None, str, Any]]) -> Frame | None:
        """An array of requests and notifications (never empty: the spec calls ``[]`` invalid)."""
        if not items:
            raise LocalProtocolError("a JSON-RPC batch cannot be empty")
        messages = [self._message(rid, method, params, rid is not None) for rid, method, params in items]
        return "[" + ",".join(messages) + "]"

    def subscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame:
        """One subscribe call per topic, batched if several.

        A topic's ``args`` are ``(method, params, unsubscribe_method)`` for a
        subscription-id subscription, with a fourth item ``"event"`` for a
        named-event one.
        """
        calls = [self._message(rid, ref.args[0], ref.args[1], True) for rid, ref in zip(request_ids, topics)]
        return calls[0] if len(calls) == 1 else "[" + ",".join(calls) + "]"

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        """One unsubscribe call per topic: the subscription id as the only param, or the event names."""
        calls = [
            self._message(rid, ref.args[2], ref.args[1] if _is_event(ref) else [ref.key], True)
            for rid, ref in zip(request_ids, topics)
            if ref.key is not None
        ]
        if not calls:
            return None
        return calls[0] if len(calls) == 1 else "[" + ",".join(calls) + "]"

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        """The result of a subscribe call: the subscription id, or ``{event: "ok"}`` for an event."""
        if incoming.error is not None:
            return [SubscribeResult(False, None, incoming.error)]
        if topics and _is_event(topics[0]):
            return [_event_result(topics[0], incoming.data)]
        key = incoming.data
        if type(key) is not str and type(key) is not int:
            return [SubscribeResult(False, None, {"code": None, "message": f"not a subscription id: {key!r}"})]
        return [SubscribeResult(True, str(key))]

    def auth_message(self, request_id: RequestId, credentials: Any) -> Frame | None:
        """Call ``auth_method`` with the credentials, if configured."""
        if self.auth_method is None:
            return None
        return self._message(request_id, self.auth_method, credentials, True)

    def auth_result(self, incoming: Incoming, request_id: RequestId) -> bool | None:
        """The reply to the auth call: refused if it is an error or the result ``false``."""
        if incoming.kind is _REPLY and incoming.request_id == request_id:
            return incoming.error is None and incoming.data is not False
        return None

    def ping(self, request_id: RequestId) -> Frame | None:
        """Call ``ping_method`` if configured, else WebSocket pings."""
        if self.ping_method is None:
            return WEBSOCKET_PING
        return self._message(request_id, self.ping_method, None, True)

    def _message(self, request_id: RequestId | None, method: str, params: Any, with_id: bool) -> str:
        if type(method) is not str:
            raise LocalProtocolError(f"a JSON-RPC method must be a string, not {type(method).__name__}")
        if not method:
            raise LocalProtocolError("a JSON-RPC method name cannot be empty")
        head = f'{{"jsonrpc":"2.0","method":{encode_json(method)}'
        if params is not None:
            if not isinstance(params, (list, tuple, dict)):
                raise LocalProtocolError("JSON-RPC params must be an array (list/tuple) or an object (dict)")
            head += f',"params":{encode_json(params)}'
        if with_id:
            return f'{head},"id":{_encode_id(request_id)}}}'
        return head + "}"

    # -- incoming --------------------------------------------------------------------------

    def classify(self, message: Any) -> Incoming:
        """A response (reply), a subscription update, a notification, or a batch of them."""
        if type(message) is dict:
            return self._classify_object(message)
        if type(message) is list:
            if not message:
                raise RemoteProtocolError("empty JSON-RPC batch response", frame="[]")
            return Incoming(FrameKind.BATCH, message=message, parts=tuple(self._classify_part(m) for m in message))
        raise RemoteProtocolError("a JSON-RPC message must be an object or an array", frame=repr(message))

    def _classify_part(self, message: Any) -> Incoming:
        if type(message) is not dict:
            error = RemoteProtocolError("a JSON-RPC batch element must be an object", frame=repr(message))
            return Incoming(_INVALID, error=error, message=message)
        return self._classify_object(message)

    def _classify_object(self, message: dict[str, Any]) -> Incoming:
        request_id = message.get("id")
        if type(request_id) is not str and type(request_id) is not int and request_id is not None:
            return _invalid(message, None, f"invalid id {request_id!r} (must be a string, an integer or null)")
        if message.get("jsonrpc") != "2.0":
            if "notification" in message and "id" not in message:
                return self._classify_event(message)
            return _invalid(message, request_id, 'missing or wrong "jsonrpc" member (must be "2.0")')
        if "method" in message:
            return self._classify_server_message(message)
        if "result" in message:
            if "error" in message:
                return _invalid(message, request_id, "a response has both result and error")
            if request_id is None:
                return _invalid(message, None, "a successful response with a null id")
            return Incoming(_REPLY, request_id, None, message["result"], None, message)
        if "error" not in message:
            return _invalid(message, request_id, "a response has neither result nor error")
        error = message["error"]
        if type(error) is not dict or type(error.get("code")) is not int or type(error.get("message")) is not str:
            return _invalid(message, request_id, "an error must be an object with an integer code and a string message")
        if "id" not in message:
            return _invalid(message, None, "an error response without an id member")
        return Incoming(_REPLY, request_id, None, None, error, message)

    def _classify_server_message(self, message: dict[str, Any]) -> Incoming:
        method = message["method"]
        if type(method) is not str:
            return _invalid(message, None, "a notification method must be a string")
        params = message.get("params")
        if type(params) is dict and "subscription" in params and "id" not in message:
            key = params["subscription"]
            if type(key) is str or type(key) is int:
                # Routed by its id whatever the method; the session falls back to the name.
                return Incoming(_UPDATE, None, str(key), params.get("result"), None, message, name=method)
        if self.is_update_method(method):
            # An update method without a usable subscription id: it can reach no subscription.
            return Incoming(_UPDATE, None, None, params, None, message, name=method)
        # A request from the server (it has an id) is delivered like a notification.
        return Incoming(_NOTIFICATION, message.get("id"), method, params, None, message)

    def _classify_event(self, message: dict[str, Any]) -> Incoming:
        """An rpc-websockets event: ``{"notification": name, "params": ...}``."""
        name = message["notification"]
        if type(name) is not str or not name:
            return _invalid(message, None, "an event notification must name its event with a string")
        return Incoming(_UPDATE, None, EVENT_KEY_PREFIX + name, message.get("params"), None, message, name=name)


def _is_event(ref: TopicRef) -> bool:
    args = ref.args
    return type(args) is tuple and len(args) > 3 and args[3] == "event"


def _event_result(ref: TopicRef, data: Any) -> SubscribeResult:
    """rpc-websockets' ``rpc.on`` answer: ``{event: "ok" | reason}`` for each event asked for."""
    events = ref.args[1]
    if type(data) is not dict:
        return SubscribeResult(False, None, {"code": None, "message": f"unexpected rpc.on result: {data!r}"[:200]})
    for event in events:
        answer = data.get(event)
        if answer not in _EVENT_OK:
            return SubscribeResult(False, None, {"code": None, "message": f"event {event!r}: {answer!r}"[:200]})
    return SubscribeResult(True, EVENT_KEY_PREFIX + events[0])


def _invalid(message: Any, request_id: Any, why: str) -> Incoming:
    error = RemoteProtocolError(f"invalid JSON-RPC response: {why}", frame=_excerpt(message))
    return Incoming(_INVALID, request_id, None, None, error, message)


def _excerpt(message: Any) -> str:
    try:
        return json.dumps(message)[:200]
    except (TypeError, ValueError):
        return repr(message)[:200]
