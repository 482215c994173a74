"""ProtocolClient: a blocking client for any protocol described by a ProtocolHandler.

It runs the same engine as :class:`~maxsdk.Client` (reader, timer and
dispatcher threads; reconnects with backoff; TLS; redacted URLs; signals) with
a :class:`~maxsdk.protocol.handler_session.HandlerSession` in place of the
Phoenix session. :class:`~maxsdk.JsonRpcClient` and :class:`~maxsdk.JsonClient`
are thin layers over it; give it your own handler to speak a new protocol::

    with maxsdk.ProtocolClient("wss://feed.example/ws", MyProtocol()) as client:
        sub = client.subscribe("prices.BTC", lambda data: print(data))
        print(client.request("time"))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Callable, Literal, TypeVar

from maxsdk import signals
from maxsdk._client_base import ClientBase
from maxsdk._runtime.engine import Engine
from maxsdk._runtime.handler_driver import HandlerDriver, HandlerEvents
from maxsdk.call import ErrorConverter, PendingCall, rpc_error
from maxsdk.config import DEFAULT_FATAL_STATUSES, ClientConfig, EndpointsLike, ParamsLike, check_seconds
from maxsdk.errors import (
    AuthRefusedError,
    ClientClosedError,
    ConfigurationError,
    ConnectTimeoutError,
    ReplyTimeoutError,
    SubscriptionError,
)
from maxsdk.protocol.backoff import Backoff, BackoffLike
from maxsdk.protocol.handler import ProtocolHandler
from maxsdk.protocol.handler_session import (
    HandlerSession,
    NotificationReceived,
    SubscriptionChanged,
    UpdateReceived,
)
from maxsdk.subscription import Subscription

__all__ = ["ProtocolClient"]

R = TypeVar("R", bound=Callable[..., Any])
C = TypeVar("C", bound="ProtocolClient")


class ProtocolClient(HandlerEvents, ClientBase):
    """A client for a request/subscription protocol over one WebSocket.

    Args:
        url: the ``ws://`` or ``wss://`` endpoint (used as given; ``params``
            are added to its query string).
        protocol: the :class:`~maxsdk.protocol.handler.ProtocolHandler`.
        params: query parameters — a mapping or a callable returning one,
            evaluated on every connection attempt.
        headers: extra HTTP headers for the upgrade (mapping or callable).
        auth: credentials for the protocol's auth message (any JSON value or
            a callable returning one, evaluated on every connection attempt);
            ``None``: no auth message. A refusal stops reconnecting and
            raises :class:`~maxsdk.AuthRefusedError`.
        timeout: default seconds for requests and subscriptions.
        connect_timeout: seconds for one connection attempt.
        ping_interval: seconds between pings (default 30); ``0`` or
            ``False`` turns pings off, ``None`` means the default.
        ping_timeout: seconds to wait for a pong before reconnecting
            (default: ``ping_interval``).
        reconnect: reconnect schedule (:class:`~maxsdk.Backoff`, ``False``,
            an int of attempts or ``attempt -> seconds``).
        resubscribe: retry schedule of a resubscription the server refused
            after a reconnect (default 1, 2, 5, then 10 s).
        reconnect_on_normal_close: reconnect when the server closes with
            code 1000 (default ``True``: servers restart that way).
        fatal_statuses: HTTP statuses of a refused upgrade that stop reconnecting.
        subscribe_batch_size: topics per (re)subscribe message.
        max_pending_requests: the most requests awaiting replies at once
            (:class:`~maxsdk.CapacityError` beyond).
        max_message_size: as for :class:`~maxsdk.Client`, and so are
            ``dispatch_queue_size``, ``overflow``, ``verify_tls``, ``ca_file``,
            ``ssl_context``, ``tls``, ``origin``, ``proxy``, ``follow_redirects``,
            ``close_timeout`` and ``name``.

    """

    #: How server error values become exceptions (``convert(error, method)``).
    error_converter: ErrorConverter = staticmethod(rpc_error)

    def __init__(
        self,
        url: EndpointsLike,
        protocol: ProtocolHandler,
        *,
        params: ParamsLike = None,
        headers: Any = None,
        auth: Any = None,
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ping_interval: float | Literal[False] | None = 30.0,
        ping_timeout: float | None = None,
        reconnect: BackoffLike = None,
        resubscribe: BackoffLike = None,
        reconnect_on_normal_close: bool = True,
        fatal_statuses: Any = DEFAULT_FATAL_STATUSES,
        subscribe_batch_size: int = 50,
        max_pending_requests: int | None = 100_000,
        max_message_size: int | None = 8 * 1024 * 1024,
        dispatch_queue_size: int = 10_000,
        overflow: str = "block",
        verify_tls: bool = True,
        ca_file: str | None = None,
        ssl_context: Any = None,
        tls: Any = None,
        origin: str | None = None,
        proxy: str | None = None,
        close_timeout: float = 2.0,
        name: str | None = None,
        failback_after: float | None = 30.0,
        follow_redirects: int = 0,
        _rng: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(protocol, ProtocolHandler):
            raise ConfigurationError("protocol must be a maxsdk.protocol.handler.ProtocolHandler")
        if not isinstance(subscribe_batch_size, int) or subscribe_batch_size < 1:
            raise ConfigurationError("subscribe_batch_size must be a positive int")
        self.config = ClientConfig.build(
            url,
            params=params,
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            heartbeat_interval=ping_interval,
            heartbeat_timeout=ping_timeout,
            reconnect=reconnect,
            rejoin=Backoff.coerce(resubscribe, default=Backoff.phoenix_rejoin()),
            reconnect_on_normal_close=reconnect_on_normal_close,
            fatal_statuses=fatal_statuses,
            max_message_size=max_message_size,
            max_pending=max_pending_requests,
            dispatch_queue_size=dispatch_queue_size,
            overflow=overflow,
            verify_tls=verify_tls,
            ca_file=ca_file,
            ssl_context=ssl_context,
            tls=tls,
            origin=origin,
            proxy=proxy,
            close_timeout=close_timeout,
            name=name,
            failback_after=failback_after,
            follow_redirects=follow_redirects,
            rng=_rng,
        )
        self.protocol = protocol
        self._handlers: dict[str | None, list[Callable[[Any], Any]]] = {}
        self._handlers_lock = threading.Lock()
        self._auth_error: AuthRefusedError | None = None
        driver_holder: list[HandlerDriver] = []

        def make_driver(config: ClientConfig, emit: Callable[[Any], None]) -> HandlerDriver:
            driver = HandlerDriver(
                config, emit, protocol, self, credentials=auth, subscribe_batch_size=subscribe_batch_size
            )
            driver_holder.append(driver)
            return driver

        self._engine = Engine(
            self.config,
            self,
            driver_factory=make_driver,
            transport_factory=lambda url, options, redacted: driver_holder[0].open_transport(url, options, redacted),
        )
        self._driver = driver_holder[0]
        self._driver.engine = self._engine
        self._init_base()

    # -- connection ----------------------------------------------------------------------

    def connect(self: C, timeout: float | None = None) -> C:
        """Connect, authenticate if configured, and block until requests can flow.

        Raises:
            AuthenticationError: the upgrade was refused with 401/403, or
                (:class:`~maxsdk.AuthRefusedError`) the auth message was refused.
            HandshakeError, TLSVerificationError: as for :meth:`maxsdk.Client.connect`.
            ConnectTimeoutError: not ready within ``timeout``.

        """
        timeout = self.config.connect_timeout if timeout is None else check_seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        self.connect_nowait()
        try:
            self._engine.wait_connected(timeout)
        except ClientClosedError:
            # The refusal can be handled (and the loop stopped) before this thread saw "connected".
            if self._auth_error is not None:
                raise self._auth_error from None
            raise
        waiter = PendingCall(self._engine, "connect", timeout, self.error_converter)
        self._engine.run(lambda session, now: session.add_ready_waiter(waiter))
        try:
            waiter.wait(max(0.0, deadline - time.monotonic()))
        except AuthRefusedError as exc:
            # Remembered here too: the driver's own report may still be on its way.
            self._auth_error = exc
            self._engine.disconnect()
            raise
        except ReplyTimeoutError as exc:
            self._engine.disconnect()
            raise ConnectTimeoutError(f"not ready (authenticated) within {timeout:g} s") from exc
        return self

    def connect_nowait(self) -> None:
        """Start connecting in the background and return at once."""
        self._check_process()
        with self._lock:
            self._closed = False
            self._started = True
            self._auth_error = None
        self._engine.start()

    def close(self, timeout: float | None = None) -> None:
        """Close the connection and stop and join every thread; pending calls fail. Idempotent.

        Every :class:`Subscription` ends (iterating one stops).
        """
        with self._lock:
            self._closed = True
            self._started = False
        if self._forked:
            return  # the parent's threads and socket do not exist here
        subscriptions: list[Subscription] = self._engine.run(_all_subscribers)
        self._engine.close(timeout)
        for subscription in subscriptions:
            subscription._end()

    def __enter__(self: C) -> C:
        return self.connect()

    def _ensure_started(self) -> None:
        self._check_process()
        if self._auth_error is not None:
            raise self._auth_error
        if self.closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            self.connect()

    # -- requests ------------------------------------------------------------------------------

    def request(self, method: str, params: Any = None, *, timeout: float | None = None, durable: bool = False) -> Any:
        """Send a request and block for its result.

        Args:
            method: the method or operation.
            params: its arguments.
            timeout: seconds (default: the client's ``timeout``), counted
                from now even if the request waits for a reconnect.
            durable: if the connection drops after sending, send it again
                on the next connection instead of failing (for idempotent
                requests).

        Raises:
            RpcError: the server answered with an error.
            ReplyTimeoutError: no reply in time.
            ReplyLostError: the connection dropped after sending (not durable).
            CapacityError: ``max_pending_requests`` are already waiting.

        """
        return self.request_nowait(method, params, timeout=timeout, durable=durable).wait()

    def request_nowait(
        self, method: str, params: Any = None, *, timeout: float | None = None, durable: bool = False
    ) -> PendingCall:
        """Send a request and return its :class:`~maxsdk.call.PendingCall` at once."""
        self._ensure_started()
        timeout = self.config.timeout if timeout is None else timeout
        waiter = PendingCall(self._engine, method, timeout, self.error_converter)

        def send(session: HandlerSession, now: float) -> None:
            waiter.request_id = session.request(method, params, now, timeout, waiter, durable=durable)

        self._engine.run(send)
        return waiter

    def notify(self, method: str, params: Any = None) -> None:
        """Send a message that expects no reply (queued while reconnecting)."""
        self._ensure_started()
        self._engine.run(lambda session, now: session.notify(method, params))

    def ping(self, timeout: float | None = None) -> float | None:
        """Ping the server now and return the round trip in seconds (``None``: the protocol has no pings)."""
        self._ensure_started()
        timeout = self.config.timeout if timeout is None else timeout
        waiter = PendingCall(self._engine, "ping", timeout, self.error_converter)
        self._engine.run(lambda session, now: session.ping(now, timeout, waiter))
        result: float | None = waiter.wait()
        return result

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        handler: Callable[[Any], Any] | None = None,
        *,
        args: Any = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Subscribe to ``topic`` and block until the server confirms it.

        Subscribers of one topic share one server subscription; after a
        reconnect it is made again automatically. ``handler(data)`` runs on
        the dispatcher thread for each update; without one, read updates
        with :meth:`Subscription.get`.

        Raises:
            SubscriptionError: the server refused it (:class:`~maxsdk.RpcError`
                for JSON-RPC).
            ReplyTimeoutError: not confirmed within ``timeout``.

        """
        self._ensure_started()
        timeout = self.config.timeout if timeout is None else timeout
        subscription = Subscription(self, topic, handler)
        waiter = PendingCall(self._engine, "subscribe", timeout, self._subscription_error(topic), topic=topic)
        self._engine.run(lambda session, now: session.subscribe(topic, args, subscription, now, timeout, waiter))
        try:
            waiter.wait()
        except BaseException:
            subscription._end()
            raise
        return subscription

    def subscribe_many(
        self,
        topics: Iterable[str],
        handler: Callable[[Any], Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Subscription]:
        """Subscribe to several topics at once (sent in batches of ``subscribe_batch_size``).

        One :class:`Subscription` per topic, in order; all share ``handler``.
        Raises as :meth:`subscribe` on the first failure (topics confirmed
        by then stay subscribed: unsubscribe them if that matters).
        """
        self._ensure_started()
        timeout = self.config.timeout if timeout is None else timeout
        names = list(topics)
        subscriptions = {name: Subscription(self, name, handler) for name in names}
        waiter = PendingCall(self._engine, "subscribe", timeout, self._subscription_error(""))

        items = [(name, None, subscriptions[name]) for name in names]
        self._engine.run(lambda session, now: session.subscribe_many(items, now, timeout, waiter))
        try:
            waiter.wait()
        except BaseException:
            for subscription in subscriptions.values():
                subscription._end()
            raise
        return [subscriptions[name] for name in names]

    def _unsubscribe(self, subscription: Subscription, timeout: float | None) -> None:
        if self.closed:
            return
        timeout = self.config.timeout if timeout is None else timeout
        waiter = PendingCall(self._engine, "unsubscribe", timeout, self.error_converter, topic=subscription.topic)
        topic = subscription.topic
        self._engine.run(lambda session, now: session.unsubscribe(topic, subscription, now, timeout, waiter))
        try:
            waiter.wait()
        except ClientClosedError:
            pass

    def _subscription_error(self, topic: str) -> ErrorConverter:
        def convert(error: Any, method: str) -> BaseException:
            return SubscriptionError(topic, error)

        return convert

    def _subscription_key(self, topic: str) -> str | None:
        sub = self._driver.session.subscriptions.get(topic)
        return sub.key if sub is not None else None

    def _subscription_state(self, topic: str) -> str | None:
        sub = self._driver.session.subscriptions.get(topic)
        return sub.state if sub is not None else None

    # -- server notifications ----------------------------------------------------------------------

    def on(self, name: str | None, handler: R | None = None) -> Any:
        """Call ``handler(params)`` for every server notification named ``name`` (usable as a decorator).

        ``name`` is a JSON-RPC method, or a topic nobody subscribed to;
        ``None`` catches notifications without a name. Handlers run on the
        dispatcher thread, in order.
        """

        def register(fn: R) -> R:
            with self._handlers_lock:
                self._handlers.setdefault(name, []).append(fn)
            return fn

        return register if handler is None else register(handler)

    def off(self, name: str | None, handler: Callable[[Any], Any]) -> None:
        """Remove a handler added with :meth:`on`."""
        with self._handlers_lock:
            handlers = self._handlers.get(name, [])
            if handler in handlers:
                handlers.remove(handler)

    # -- events from the engine (dispatcher thread) ----------------------------------------------------

    def update_received(self, event: UpdateReceived) -> None:
        """Hand an update to each subscriber."""
        for subscription in event.subscribers:
            subscription._deliver(event.data)

    def notification_received(self, event: NotificationReceived) -> None:
        """Run the handlers registered for the notification's name."""
        with self._handlers_lock:
            handlers = list(self._handlers.get(event.name, ()))
        for handler in handlers:
            self._engine.guarded(handler, (event.data,), f"notification {event.name!r}")

    def subscription_changed(self, event: SubscriptionChanged) -> None:
        """Send the ``subscribed`` / ``subscription_failed`` signals."""
        if event.state == "active":
            self._engine.send_signal(
                signals.subscribed, topic=event.topic, key=event.key, resubscribed=event.resubscribed
            )
        elif event.state == "failed":
            self._engine.send_signal(
                signals.subscription_failed, topic=event.topic, error=event.error, will_retry=event.resubscribed
            )
        elif event.state == "closed":
            for subscription in event.subscribers:
                subscription._end()

    def error_received(self, error: Any) -> Any:
        """An unmatched error reply, as an exception."""
        return self.error_converter(error, "")

    def auth_refused(self, error: AuthRefusedError) -> None:
        """Remember the refusal: later calls raise it until :meth:`connect` is called again."""
        self._auth_error = error

    def _call_handler(self, handler: Callable[[Any], Any], data: Any, topic: str) -> None:
        self._engine.guarded(handler, (data,), f"update on {topic!r}")

    # -- misc --------------------------------------------------------------------------------------------


def _all_subscribers(session: HandlerSession, now: float) -> list[Subscription]:
    return [subscriber for sub in session.subscriptions for subscriber in sub.subscribers]
