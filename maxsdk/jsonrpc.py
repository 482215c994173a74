"""JsonRpcClient: a blocking JSON-RPC 2.0 client over WebSocket.

::

    with maxsdk.JsonRpcClient("ws://localhost:8545") as rpc:
        print(rpc.call("subtract", [42, 23]))                 # 19
        rpc.notify("update", [1, 2, 3])
        with rpc.batch() as batch:
            total = batch.call("sum", [1, 2, 4])
            batch.notify("notify_hello", [7])
        print(total.result(), batch.results)
        heads = rpc.subscribe(["newHeads"], lambda head: print(head))   # eth_subscribe
        rpc.on("server_event", lambda params: print(params))

It is a :class:`~maxsdk.ProtocolClient` with the
:class:`~maxsdk.protocol.jsonrpc.JsonRpcProtocol` handler: the same engine,
reconnects, backoff, TLS, redaction, timeouts and signals as
:class:`~maxsdk.Client`. Errors from the server raise :class:`~maxsdk.RpcError`
(``code``, ``message``, ``data``); an error response with ``"id": null``
(the server could not read a request) is reported with the
:data:`~maxsdk.signals.error_received` signal, and a malformed response with
:data:`~maxsdk.signals.protocol_error` (counted in ``diagnostics()``) — the
connection carries on in both cases.
"""

from __future__ import annotations

from typing import Any, Callable

from maxsdk.call import BatchResult, PendingCall
from maxsdk.errors import LocalProtocolError, RpcError
from maxsdk.protocol.handler_session import HandlerSession
from maxsdk.protocol.jsonrpc import JsonRpcProtocol, encode_json
from maxsdk.protocol_client import ProtocolClient
from maxsdk.subscription import Subscription

__all__ = ["Batch", "JsonRpcClient"]


class JsonRpcClient(ProtocolClient):
    """A JSON-RPC 2.0 client.

    Args:
        url: the ``ws://`` or ``wss://`` endpoint.
        string_ids: send string ids (``"000000000001"``...) instead of integers.
        auth_method: with ``auth`` credentials, call this method with them
            as params on every connection (e.g. ``"auth.login"``).
        ping_method: a method to call as a keepalive; by default WebSocket
            pings are used.
        protocol: a customised :class:`~maxsdk.protocol.jsonrpc.JsonRpcProtocol`
            (overrides the three options above).
        **options: every other option of :class:`~maxsdk.ProtocolClient`
            (``auth``, ``timeout``, ``ping_interval``, ``reconnect``,
            ``resubscribe``, ``subscribe_batch_size``, ``max_pending_requests``,
            TLS, proxy, ``name``...).

    """

    def __init__(
        self,
        url: str,
        *,
        string_ids: bool = False,
        auth_method: str | None = None,
        ping_method: str | None = None,
        protocol: JsonRpcProtocol | None = None,
        **options: Any,
    ) -> None:
        protocol = protocol or JsonRpcProtocol(string_ids=string_ids, auth_method=auth_method, ping_method=ping_method)
        super().__init__(url, protocol, **options)

    def call(self, method: str, params: Any = None, *, timeout: float | None = None, durable: bool = False) -> Any:
        """Call ``method`` and block for its result.

        Args:
            method: the method name.
            params: a list (positional) or a dict (named), or ``None``.
            timeout: seconds (default: the client's ``timeout``).
            durable: send it again after a reconnect if the connection
                dropped before the reply (for idempotent methods).

        Raises:
            RpcError: the server answered with an error object.
            ReplyTimeoutError, ReplyLostError, CapacityError: see
                :meth:`~maxsdk.ProtocolClient.request`.
            LocalProtocolError: the method or params cannot be sent
                (not a string / not an array or object / not JSON).

        """
        return self.request(method, params, timeout=timeout, durable=durable)

    def call_nowait(
        self, method: str, params: Any = None, *, timeout: float | None = None, durable: bool = False
    ) -> PendingCall:
        """Call ``method`` and return its :class:`~maxsdk.call.PendingCall` at once."""
        return self.request_nowait(method, params, timeout=timeout, durable=durable)

    def batch(self, *, timeout: float | None = None) -> Batch:
        """Collect calls and notifications and send them as one JSON-RPC batch (see :class:`Batch`)."""
        return Batch(self, timeout)

    def subscribe(  # type: ignore[override]
        self,
        params: Any,
        handler: Callable[[Any], Any] | None = None,
        *,
        method: str = "eth_subscribe",
        unsubscribe_method: str | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Open a server subscription (``eth_subscribe`` pattern) and block until it is confirmed.

        The subscribe call returns an id; updates arrive as
        ``<ns>_subscription`` notifications carrying it and are handed to
        ``handler(result)`` (or buffered for :meth:`Subscription.get`).
        Subscribing twice with the same method and params shares one server
        subscription. After a reconnect the client subscribes again and maps
        the new id to the same :class:`Subscription` (``sub.key`` changes).

        Args:
            params: the subscribe params, e.g. ``["newHeads"]`` (a string is
                taken as ``[string]``).
            handler: called with each update's ``result``.
            method: the subscribe method.
            unsubscribe_method: default: ``method`` with ``subscribe``
                replaced by ``unsubscribe``.
            timeout: seconds to wait for the confirmation.

        Raises:
            RpcError: the server refused the subscription.
            ReplyTimeoutError: no confirmation in time.

        """
        if isinstance(params, str):
            params = [params]
        unsubscribe = unsubscribe_method or method.replace("subscribe", "unsubscribe")
        topic = f"{method}:{encode_json(params)}"
        return ProtocolClient.subscribe(self, topic, handler, args=(method, params, unsubscribe), timeout=timeout)

    def _subscription_error(self, topic: str) -> Any:
        return self.error_converter


class Batch:
    """Calls and notifications sent together as one JSON-RPC batch.

    ::

        with client.batch() as batch:
            a = batch.call("sum", [1, 2, 4])
            b = batch.call("foo.get", {"name": "myself"})
            batch.notify("notify_hello", [7])
        a.result()            # 7
        batch.results         # [BatchResult(sum, 7), BatchResult(foo.get, error=RpcError(-32601...))]

    Leaving the ``with`` block sends the batch and waits for every reply
    (or call :meth:`send`). The server may answer in any order; results come
    back in the order of the calls, each with its own error kept apart.
    """

    def __init__(self, client: JsonRpcClient, timeout: float | None = None) -> None:
        self._client = client
        self._timeout = client.config.timeout if timeout is None else timeout
        self._items: list[tuple[str, Any, PendingCall | None]] = []
        self._sent = False
        #: After :meth:`send`: one :class:`BatchResult` per call, in order.
        self.results: list[BatchResult] = []

    def call(self, method: str, params: Any = None) -> PendingCall:
        """Add a call; its :class:`~maxsdk.call.PendingCall` completes after :meth:`send`."""
        self._check_open()
        waiter = PendingCall(self._client._engine, method, self._timeout, self._client.error_converter)
        self._items.append((method, params, waiter))
        return waiter

    def notify(self, method: str, params: Any = None) -> None:
        """Add a notification."""
        self._check_open()
        self._items.append((method, params, None))

    def send(self) -> list[BatchResult]:
        """Send the batch (once) and block until every call has an outcome.

        An empty batch sends nothing; a batch of notifications only returns
        at once (the server sends nothing back).

        Raises:
            CapacityError: the calls do not fit in ``max_pending_requests``.
            LocalProtocolError: an item cannot be encoded.

        """
        if not self._sent:
            self._sent = True
            if self._items:
                self._send()
        self.results = [self._result(method, waiter) for method, _, waiter in self._items if waiter is not None]
        return self.results

    def _send(self) -> None:
        client = self._client
        client._ensure_started()
        items, timeout = self._items, self._timeout

        def send(session: HandlerSession, now: float) -> None:
            ids = session.batch(items, now, timeout)
            for (_, _, waiter), request_id in zip(items, ids):
                if waiter is not None:
                    waiter.request_id = request_id

        client._engine.run(send)

    @staticmethod
    def _result(method: str, waiter: PendingCall) -> BatchResult:
        try:
            return BatchResult(method, waiter.wait())
        except RpcError as exc:
            return BatchResult(method, None, exc)
        except Exception as exc:  # noqa: BLE001 - timeouts and losses are kept apart too
            return BatchResult(method, None, exc)

    def _check_open(self) -> None:
        if self._sent:
            raise LocalProtocolError("this batch was already sent")

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None:
            self.send()

    def __len__(self) -> int:
        return len(self._items)
