"""An embedded JSON-RPC 2.0 server over WebSocket, for tests, examples and benchmarks.

It implements the server side of the JSON-RPC 2.0 specification faithfully
(its own code: it never imports the client's ``maxsdk.protocol``), so that
the specification's examples can be replayed against it byte for byte:

* a frame that is not JSON → ``{"jsonrpc": "2.0", "error": {"code": -32700,
  "message": "Parse error"}, "id": null}``; a request that is not a valid
  Request object → ``-32600 "Invalid Request"`` (``id`` null unless it could be
  read); an unknown method → ``-32601 "Method not found"``; a method that
  rejects its params → ``-32602 "Invalid params"``; one that crashes →
  ``-32603 "Internal error"``;
* notifications (no ``id``) get no response, even when they fail;
* a batch gets an array of the responses (``[]`` → one ``Invalid Request``
  error; only notifications → nothing at all).

Built-in methods (``JsonRpcServer.reference_methods``): ``subtract``
(positional or ``minuend``/``subtrahend``), ``sum``, ``get_data`` (→
``["hello", 5]``), ``echo`` (its params), ``sleep`` (``[seconds, result]``:
answers later without blocking the connection), ``fail`` (``[code, message,
data]``: answers with that error), ``notify_me`` (``[method, params]``: the
server sends that notification back), and the subscription pair
``eth_subscribe`` (``[topic, ...]`` → a ``"0x…"`` id) / ``eth_unsubscribe``
(``[id]`` → ``true``/``false``); ``publish(topic, data)`` sends
``eth_subscription`` notifications to every subscription of ``topic``.
Register more with ``server.method(name)(fn)`` (``fn(params)`` returns the
result or raises :class:`RpcFault`). With ``token=...`` the method
``auth`` (``{"token": ...}``) must succeed before anything else.

Faults and observability: see :mod:`maxsdk.server.json_base`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from .json_base import JsonConnection, JsonServerBase

__all__ = ["JsonRpcServer", "RpcFault"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}

Method = Callable[[Any], Any]


class RpcFault(Exception):  # noqa: N818 - the JSON-RPC name for what a method raises
    """Raise from a method to answer with an error object."""

    def __init__(self, code: int, message: str | None = None, data: Any = None) -> None:
        super().__init__(message or _MESSAGES.get(code, "Server error"))
        self.code = code
        self.message = message or _MESSAGES.get(code, "Server error")
        self.data = data

    def error(self) -> dict[str, Any]:
        """The JSON-RPC error object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class _Deferred:
    """A result that the method will send later (``sleep``)."""

    def __init__(self, delay: float, result: Any) -> None:
        self.delay = delay
        self.result = result


class JsonRpcServer(JsonServerBase):
    """A threaded JSON-RPC 2.0 WebSocket server.

    Args:
        methods: extra methods ``{name: fn(params) -> result}``.
        token: require ``auth`` with ``{"token": token}`` first.
        host, port, path: where to listen (127.0.0.1, a free port, ``/``).

    """

    kind = "jsonrpc"

    def __init__(
        self,
        methods: dict[str, Method] | None = None,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
    ) -> None:
        super().__init__(host=host, port=port, path=path)
        self.token = token
        self.methods: dict[str, Method] = self.reference_methods()
        self.methods.update(methods or {})
        self._subscription_ids = itertools.count(0x1000)
        self._subscriptions: dict[str, tuple[int, str]] = {}  # id -> (connection id, topic)
        self._subs_lock = threading.Lock()

    def reference_methods(self) -> dict[str, Method]:
        """The built-in methods (see the module docstring)."""
        return {
            "subtract": _subtract,
            "sum": _sum,
            "get_data": lambda params: ["hello", 5],
            "echo": lambda params: params,
            "sleep": _sleep,
            "fail": _fail,
        }

    def method(self, name: str) -> Callable[[Method], Method]:
        """Register ``fn(params)`` as method ``name`` (a decorator)."""

        def register(fn: Method) -> Method:
            self.methods[name] = fn
            return fn

        return register

    # -- server-side actions ------------------------------------------------------------------------

    def publish(self, topic: str, data: Any) -> int:
        """Send ``data`` to every subscription of ``topic``; returns how many got it."""
        with self._subs_lock:
            targets = [(sid, cid) for sid, (cid, t) in self._subscriptions.items() if t == topic]
        count = 0
        for subscription_id, connection_id in targets:
            connection = self.connection(connection_id)
            if connection is not None:
                count += connection.send_json(
                    {
                        "jsonrpc": "2.0",
                        "method": "eth_subscription",
                        "params": {"subscription": subscription_id, "result": data},
                    }
                )
        return count

    def notify_clients(self, method: str, params: Any = None) -> int:
        """Send a notification to every connection; returns how many got it."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        return self.broadcast_json(message)

    def subscriptions(self, topic: str | None = None) -> list[str]:
        """The live subscription ids (of ``topic``)."""
        with self._subs_lock:
            return [sid for sid, (_, t) in self._subscriptions.items() if topic is None or t == topic]

    # -- protocol -------------------------------------------------------------------------------

    def on_close(self, connection: JsonConnection) -> None:
        """Subscriptions die with their connection."""
        with self._subs_lock:
            for sid in [s for s, (cid, _) in self._subscriptions.items() if cid == connection.connection_id]:
                del self._subscriptions[sid]

    def handle_text(self, connection: JsonConnection, frame: str | bytes, message: Any) -> None:
        """Answer one frame per the specification."""
        if message is None and frame.strip() != "null":
            self.reply(connection, _error(None, PARSE_ERROR))
            return
        if isinstance(message, list):
            if not message:
                self.reply(connection, _error(None, INVALID_REQUEST))
                return
            responses = [r for r in (self._call(connection, item) for item in message) if r is not None]
            self._send_batch(connection, responses)
            return
        response = self._call(connection, message)
        if response is None:
            return
        if isinstance(response, _Deferred):
            deferred = response
            self.call_later(deferred.delay, lambda: self.reply(connection, deferred.result))
            return
        self.reply(connection, response)

    def _send_batch(self, connection: JsonConnection, responses: list[Any]) -> None:
        ready = [r for r in responses if not isinstance(r, _Deferred)]
        later = [r for r in responses if isinstance(r, _Deferred)]
        if later:
            # The batch is answered when its slowest call is done (one array, as the spec wants).
            delay = max(d.delay for d in later)
            whole = ready + [d.result for d in later]
            self.call_later(delay, lambda: self.reply(connection, whole))
        elif ready:
            self.reply(connection, ready)

    def _call(self, connection: JsonConnection, request: Any) -> Any:
        """The response to one request object (``None`` for a notification)."""
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST)
        has_id = "id" in request
        request_id = request.get("id")
        if (has_id and not (request_id is None or isinstance(request_id, (str, int, float)))) or isinstance(
            request_id, bool
        ):
            return _error(None, INVALID_REQUEST)
        method = request.get("method")
        params = request.get("params")
        if (
            request.get("jsonrpc") != "2.0"
            or not isinstance(method, str)
            or ("params" in request and not isinstance(params, (list, dict)))
        ):
            return _error(request_id if has_id else None, INVALID_REQUEST)
        try:
            result = self._invoke(connection, method, params)
        except RpcFault as fault:
            return _response_error(request_id, fault.error()) if has_id else None
        except Exception:  # noqa: BLE001 - a crashing method is a -32603, as the spec says
            return _error(request_id, INTERNAL_ERROR) if has_id else None
        if not has_id:
            return None
        if isinstance(result, _Deferred):
            result.result = {"jsonrpc": "2.0", "result": result.result, "id": request_id}
            return result
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _invoke(self, connection: JsonConnection, method: str, params: Any) -> Any:
        if self.token is not None and not connection.data.get("authenticated"):
            if method != "auth":
                raise RpcFault(-32001, "not authenticated")
            if not isinstance(params, dict) or params.get("token") != self.token:
                raise RpcFault(-32002, "invalid credentials")
            connection.data["authenticated"] = True
            return True
        if method == "auth":
            return True
        if method == "eth_subscribe":
            return self._subscribe(connection, params)
        if method == "eth_unsubscribe":
            return self._unsubscribe(connection, params)
        if method == "notify_me":
            if not isinstance(params, list) or len(params) != 2 or not isinstance(params[0], str):
                raise RpcFault(INVALID_PARAMS)
            notification = {"jsonrpc": "2.0", "method": params[0], "params": params[1]}
            self.call_later(0.0, lambda: connection.send_json(notification))
            return True
        fn = self.methods.get(method)
        if fn is None:
            raise RpcFault(METHOD_NOT_FOUND)
        try:
            return fn(params)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise RpcFault(INVALID_PARAMS, data=str(exc)) from exc

    def _subscribe(self, connection: JsonConnection, params: Any) -> str:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            raise RpcFault(INVALID_PARAMS)
        topic = params[0]
        if self.subscription_refused(topic):
            raise RpcFault(-32000, "subscription refused", {"topic": topic})
        subscription_id = hex(next(self._subscription_ids))
        with self._subs_lock:
            self._subscriptions[subscription_id] = (connection.connection_id, topic)
        return subscription_id

    def _unsubscribe(self, connection: JsonConnection, params: Any) -> bool:
        if not isinstance(params, list) or len(params) != 1:
            raise RpcFault(INVALID_PARAMS)
        with self._subs_lock:
            owner = self._subscriptions.get(params[0])
            if owner is None or owner[0] != connection.connection_id:
                return False
            del self._subscriptions[params[0]]
        return True


def _error(request_id: Any, code: int) -> dict[str, Any]:
    return _response_error(request_id, {"code": code, "message": _MESSAGES[code]})


def _response_error(request_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def _subtract(params: Any) -> Any:
    if isinstance(params, dict):
        return params["minuend"] - params["subtrahend"]
    minuend, subtrahend = params
    return minuend - subtrahend


def _sum(params: Any) -> Any:
    return sum(params)


def _sleep(params: Any) -> _Deferred:
    delay, result = params
    return _Deferred(float(delay), result)


def _fail(params: Any) -> Any:
    code, message, *rest = params
    raise RpcFault(int(code), str(message), rest[0] if rest else None)
