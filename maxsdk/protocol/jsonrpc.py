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
* server subscriptions in the ``eth_subscribe`` pattern: a subscribe call
  returns a subscription id, updates arrive as notifications
  ``{"method": "<ns>_subscription", "params": {"subscription": id, "result": data}}``,
  an unsubscribe call ends it. Other server notifications are delivered by
  method name.

JSON-RPC has no ping message: liveness uses WebSocket pings unless a
``ping_method`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from maxsdk.errors import LocalProtocolError, RemoteProtocolError
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

__all__ = ["JsonRpcProtocol", "encode_json"]

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
            on every connection (success unless it answers with an error).
        ping_method: a method to call as a ping (its reply is the pong);
            ``None`` uses WebSocket pings.
        subscription_suffix: the ending of notification methods that carry
            subscription updates (``eth_subscription``).

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
        subscription_suffix: str = "_subscription",
    ) -> None:
        self.string_ids = string_ids
        self.auth_method = auth_method
        self.ping_method = ping_method
        self.subscription_suffix = subscription_suffix

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
        """One subscribe call per topic (``args`` = ``(method, params, unsubscribe_method)``), batched if several."""
        calls = [self._message(rid, ref.args[0], ref.args[1], True) for rid, ref in zip(request_ids, topics)]
        return calls[0] if len(calls) == 1 else "[" + ",".join(calls) + "]"

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        """One unsubscribe call per topic with its subscription id as the only param."""
        calls = [
            self._message(rid, ref.args[2], [ref.key], True)
            for rid, ref in zip(request_ids, topics)
            if ref.key is not None
        ]
        if not calls:
            return None
        return calls[0] if len(calls) == 1 else "[" + ",".join(calls) + "]"

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        """The result of a subscribe call is the subscription id."""
        if incoming.error is not None:
            return [SubscribeResult(False, None, incoming.error)]
        key = incoming.data
        if type(key) is not str and type(key) is not int:
            return [SubscribeResult(False, None, {"code": None, "message": f"not a subscription id: {key!r}"})]
        return [SubscribeResult(True, str(key))]

    def auth_message(self, request_id: RequestId, credentials: Any) -> Frame | None:
        """Call ``auth_method`` with the credentials, if configured."""
        if self.auth_method is None:
            return None
        return self._message(request_id, self.auth_method, credentials, True)

    def ping(self, request_id: RequestId) -> Frame | None:
        """Call ``ping_method`` if configured, else WebSocket pings."""
        if self.ping_method is None:
            return WEBSOCKET_PING
        return self._message(request_id, self.ping_method, None, True)

    def _message(self, request_id: RequestId | None, method: str, params: Any, with_id: bool) -> str:
        if type(method) is not str:
            raise LocalProtocolError(f"a JSON-RPC method must be a string, not {type(method).__name__}")
        if method.startswith("rpc."):
            raise LocalProtocolError(f"method names starting with 'rpc.' are reserved ({method!r})")
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
        if method.endswith(self.subscription_suffix) and type(params) is dict and "subscription" in params:
            return Incoming(_UPDATE, None, str(params["subscription"]), params.get("result"), None, message)
        # A request from the server (it has an id) is delivered like a notification.
        return Incoming(_NOTIFICATION, message.get("id"), method, params, None, message)


def _invalid(message: Any, request_id: Any, why: str) -> Incoming:
    error = RemoteProtocolError(f"invalid JSON-RPC response: {why}", frame=_excerpt(message))
    return Incoming(_INVALID, request_id, None, None, error, message)


def _excerpt(message: Any) -> str:
    try:
        return json.dumps(message)[:200]
    except (TypeError, ValueError):
        return repr(message)[:200]
