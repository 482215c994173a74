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
        rpc.subscribe_event("feedUpdated", print)                      # rpc-websockets events
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

from maxsdk.call import BatchResult, PendingCall, rpc_error
from maxsdk.errors import ConfigurationError, LocalProtocolError, RpcError, SubscriptionError
from maxsdk.protocol.handler_session import HandlerSession
from maxsdk.protocol.jsonrpc import EVENT_KEY_PREFIX, JsonRpcProtocol, encode_json
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
            (``"rpc.login"`` for rpc-websockets). An error or a ``false``
            result refuses the login.
        ping_method: a method to call as a keepalive; by default WebSocket
            pings are used.
        update_method: the method of the notifications carrying subscription
            updates, when the server does not use ``eth_subscription`` (e.g.
            ``"subscription"``). Updates reach the subscription whose id they
            carry whatever their method; this name makes updates that match
            no live subscription count as ``unroutable`` (see
            :meth:`subscribe`).
        protocol: a customised :class:`~maxsdk.JsonRpcProtocol`, for the
            rarer options; it carries the four options above itself, so
            passing both is a :class:`~maxsdk.ConfigurationError`.
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
        update_method: str | None = None,
        protocol: JsonRpcProtocol | None = None,
        **options: Any,
    ) -> None:
        if protocol is None:
            updates = ("eth_subscription",) if update_method is None else ("eth_subscription", update_method)
            protocol = JsonRpcProtocol(
                string_ids=string_ids, auth_method=auth_method, ping_method=ping_method, update_methods=updates
            )
        else:
            if not isinstance(protocol, JsonRpcProtocol):
                raise ConfigurationError("protocol must be a maxsdk.JsonRpcProtocol")
            given = [
                name
                for name, value in (
                    ("string_ids", string_ids),
                    ("auth_method", auth_method),
                    ("ping_method", ping_method),
                    ("update_method", update_method),
                )
                if value
            ]
            if given:
                raise ConfigurationError(
                    f"{', '.join(given)} would be ignored with protocol=: set them on the JsonRpcProtocol instead"
                )
        super().__init__(url, protocol, **options)
        self._rpc_protocol = protocol

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
        update_method: str | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Open a server subscription (subscription-id pattern) and block until it is confirmed.

        The subscribe call returns an id; updates arrive as notifications
        ``{"method": <update method>, "params": {"subscription": id, "result": data}}``
        and the ``result`` of each is handed to ``handler(result)`` (or
        buffered for :meth:`Subscription.get`). An update reaches the
        subscription whose id it carries whatever its method name; one that
        matches no live subscription is delivered to :meth:`on` handlers of
        its method, counted (``diagnostics().counters["unroutable"]``) and
        logged once.
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
            update_method: the method of the update notifications, when it is
                neither ``eth_subscription`` nor the client's ``update_method``.
            timeout: seconds to wait for the confirmation. A confirmation
                that arrives after it is undone: the client unsubscribes
                (``diagnostics().counters["late_subscriptions_undone"]``).

        Raises:
            RpcError: the server refused the subscription.
            ReplyTimeoutError: no confirmation in time.

        """
        if isinstance(params, str):
            params = [params]
        if update_method is not None:
            if type(update_method) is not str or not update_method:
                raise ConfigurationError("update_method must be a non-empty string")
            self._rpc_protocol.add_update_method(update_method)
        unsubscribe = unsubscribe_method or method.replace("subscribe", "unsubscribe")
        topic = f"{method}:{encode_json(params)}"
        return ProtocolClient.subscribe(self, topic, handler, args=(method, params, unsubscribe), timeout=timeout)

    def subscribe_event(
        self,
        event: str,
        handler: Callable[[Any], Any] | None = None,
        *,
        method: str = "rpc.on",
        unsubscribe_method: str = "rpc.off",
        timeout: float | None = None,
    ) -> Subscription:
        """Subscribe to a named server event (the rpc-websockets pattern) and block until confirmed.

        Calls ``rpc.on`` with ``[event]``; the server confirms with
        ``{event: "ok"}`` and then sends ``{"notification": event, "params": ...}``
        messages, whose ``params`` are handed to ``handler(params)`` (or
        buffered for :meth:`Subscription.get`). :meth:`Subscription.unsubscribe`
        calls ``rpc.off``. Subscribed again after every reconnect, like
        :meth:`subscribe`. For protected events, log in first with
        ``auth_method="rpc.login"``.

        Raises:
            SubscriptionError: the server refused (an unknown event: its
                answer, e.g. ``"provided event invalid"``, is in the error).
            RpcError: the server answered the call with an error.
            ReplyTimeoutError: no confirmation in time.

        """
        if type(event) is not str or not event:
            raise ConfigurationError("event must be a non-empty string")
        topic = f"{EVENT_KEY_PREFIX}{event}"
        args = (method, [event], unsubscribe_method, "event")
        return ProtocolClient.subscribe(self, topic, handler, args=args, timeout=timeout)

    def _subscription_error(self, topic: str) -> Any:
        if topic.startswith(EVENT_KEY_PREFIX):
            return _event_error_converter(topic)
        return self.error_converter


def _event_error_converter(topic: str) -> Callable[[Any, str], BaseException]:
    """An error object of the call is an RpcError; an event the server refused is a SubscriptionError."""

    def convert(error: Any, method: str) -> BaseException:
        if type(error) is dict and type(error.get("code")) is int:
            return rpc_error(error, method)
        return SubscriptionError(topic, error)

    return convert


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
