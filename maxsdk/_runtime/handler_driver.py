"""The driver of handler-based protocols: a :class:`HandlerSession` plugged into the engine.

It gives the engine what :class:`~maxsdk._runtime.driver.ProtocolDriver`
asks for — the connection URL (from the handler), decoding (the handler's
decode *and* classify, both on the reader thread before the engine lock is
taken), dispatching the session's events on the dispatcher thread — and
adds the runtime pieces of a few protocol features:

* credentials for an auth message are evaluated (user code) before each
  connection attempt, outside every lock;
* WebSocket-level pings: the transport reports pongs back to the session;
* a refused authentication stops the connection loop (retrying with the same
  credentials cannot succeed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from maxsdk import signals
from maxsdk._runtime.threads import call_user_code
from maxsdk._runtime.transport import Transport, TransportOptions, open_websocket
from maxsdk.config import ClientConfig
from maxsdk.errors import AuthRefusedError, ConnectFailedError, MaxsdkError, RemoteProtocolError
from maxsdk.protocol.handler import Incoming, ProtocolHandler
from maxsdk.protocol.handler_session import (
    Authenticated,
    ErrorReceived,
    HandlerSession,
    HandlerSessionConfig,
    NotificationReceived,
    PongReceived,
    ProtocolErrorReported,
    RawReceived,
    SubscriptionChanged,
    UnroutableUpdate,
    UpdateReceived,
)
from maxsdk.status import ChannelSnapshot

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["HandlerDriver", "HandlerEvents"]

log = logging.getLogger("maxsdk.client")


class HandlerEvents:
    """What a client built on a handler does with the session's events (dispatcher thread).

    The public clients subclass it; every method has a harmless default.
    """

    def update_received(self, event: UpdateReceived) -> None:
        """Deliver subscription data to each subscriber."""

    def notification_received(self, event: NotificationReceived) -> None:
        """Deliver a server notification."""

    def subscription_changed(self, event: SubscriptionChanged) -> None:
        """A subscription became active, failed or ended."""

    def error_received(self, error: Any) -> RemoteProtocolError | Any:
        """Turn an unmatched error reply into the exception the ``error_received`` signal carries."""
        return error

    def auth_refused(self, error: AuthRefusedError) -> None:
        """The server refused the credentials."""


class HandlerDriver:
    """Runs a :class:`HandlerSession` for the engine.

    Args:
        config: the client settings (``heartbeat_interval``/``heartbeat_timeout``
            are the ping interval and pong timeout, ``rejoin`` the resubscribe
            schedule, ``max_pending`` the request capacity).
        emit: the engine's dispatcher sink.
        handler: the protocol.
        events: the public client's event callbacks.
        credentials: auth credentials, or a zero-argument callable returning
            them (evaluated before every connection attempt), or ``None``.
        subscribe_batch_size: topics per resubscribe message.

    """

    def __init__(
        self,
        config: ClientConfig,
        emit: Callable[[Any], None],
        handler: ProtocolHandler,
        events: HandlerEvents,
        *,
        credentials: Any = None,
        subscribe_batch_size: int = 50,
    ) -> None:
        self.config = config
        self.handler = handler
        self.events = events
        self._credentials = credentials
        session_config = HandlerSessionConfig(
            ping_interval=config.heartbeat_interval,
            pong_timeout=config.heartbeat_timeout,
            resubscribe=config.rejoin,
            subscribe_batch_size=subscribe_batch_size,
            subscribe_timeout=config.timeout,
            auth_timeout=config.timeout,
            max_pending=config.max_pending,
        )
        kwargs: dict[str, Any] = {"emit": emit}
        if config.rng is not None:
            kwargs["rng"] = config.rng
        self.session = HandlerSession(handler, session_config, **kwargs)
        self.engine: Engine | None = None
        decode_text, decode_binary, classify = handler.decode_text, handler.decode_binary, handler.classify

        def decode_text_frame(data: bytes | str) -> Incoming:
            try:
                return classify(decode_text(data))
            except RemoteProtocolError:
                raise
            except Exception as exc:
                raise RemoteProtocolError(f"{handler.name} handler failed on a frame: {exc!r}", frame=data) from exc

        def decode_binary_frame(data: bytes) -> Incoming:
            try:
                return classify(decode_binary(data))
            except RemoteProtocolError:
                raise
            except Exception as exc:
                raise RemoteProtocolError(f"{handler.name} handler failed on a frame: {exc!r}", frame=data) from exc

        self.decode_text = decode_text_frame
        self.decode_binary = decode_binary_frame

    # -- connecting (reader thread) ------------------------------------------------------------

    def connect_url(self, params: Mapping[str, Any] | None) -> str:
        """The handler's URL for this attempt."""
        return self.handler.connect_url(self.config.url, params)

    def subprotocols(self, token: str | None) -> tuple[str, ...]:
        """The handler's subprotocols; also evaluates the auth credentials for this attempt."""
        credentials = self._credentials
        if callable(credentials):
            try:
                credentials = call_user_code(credentials)
            except Exception as exc:
                raise ConnectFailedError(f"cannot build the auth credentials: {exc!r}") from exc
        self.session.credentials = credentials
        return self.handler.subprotocols()

    def open_transport(self, url: str, options: TransportOptions, redacted: str) -> Transport:
        """Open a WebSocket and report its pongs to the session."""
        transport = open_websocket(url, options, redacted_url=redacted)
        engine = self.engine
        if engine is not None:
            transport.on_pong = lambda _data: engine.run(_pong_received)
        return transport

    # -- the engine's hooks ------------------------------------------------------------------------

    def run_followups(self, engine: Engine, followups: list[Any]) -> None:
        """The handler session has no followups."""

    def droppable(self, item: Any) -> bool:
        """Data may be dropped on overflow; state changes never."""
        kind = type(item)
        return kind is UpdateReceived or kind is NotificationReceived or kind is RawReceived

    def lane_of(self, item: Any) -> None:
        """Every event of these protocols shares the client's lane (one ordered stream)."""
        return None

    def dispatch(self, engine: Engine, item: Any) -> bool:
        """Deliver the session's events (dispatcher thread)."""
        kind = type(item)
        events = self.events
        if kind is UpdateReceived:
            events.update_received(item)
        elif kind is NotificationReceived:
            events.notification_received(item)
            engine.send_signal(signals.notification_received, method=item.name, params=item.data)
        elif kind is SubscriptionChanged:
            events.subscription_changed(item)
        elif kind is PongReceived:
            engine.send_signal(signals.heartbeat, rtt=item.rtt)
        elif kind is ProtocolErrorReported:
            engine.send_signal(signals.protocol_error, error=item.error)
        elif kind is ErrorReceived:
            engine.send_signal(signals.error_received, error=events.error_received(item.error))
        elif kind is RawReceived:
            engine.send_signal(signals.message_received, message=item.message)
        elif kind is Authenticated:
            self._authenticated(engine, item)
        elif kind is UnroutableUpdate:
            log.warning(
                "%s: an update %r (subscription %r) matches no live subscription: delivered as a notification"
                " under its name and counted as unroutable in diagnostics(); later ones named so are not logged",
                engine.name,
                item.name,
                item.key,
            )
        else:
            return False
        return True

    def _authenticated(self, engine: Engine, item: Authenticated) -> None:
        if item.ok:
            log.info("%s: authenticated", engine.name)
            return
        error = AuthRefusedError(
            f"{engine.redacted_url} refused the credentials: {item.response!r}"[:300],
            url=engine.redacted_url,
            response=item.response,
        )
        log.error("%s: %s; not reconnecting", engine.name, error)
        self.events.auth_refused(error)
        engine.send_signal(signals.reconnect_failed, error=error, attempts=0, reason=str(error))
        # The dispatcher is not the reader: disconnect() may join it from here.
        _disconnect(engine)

    def before_close(self, engine: Engine, deadline: float) -> None:
        """Nothing to do before closing: the server forgets subscriptions with the connection."""

    def snapshot(self) -> tuple[ChannelSnapshot, ...]:
        """The subscriptions (topic, state, server key)."""
        return tuple(ChannelSnapshot(sub.topic, sub.state, sub.key) for sub in self.session.subscriptions)


def _pong_received(session: HandlerSession, now: float) -> None:
    session.pong_received(now)


def _disconnect(engine: Engine) -> None:
    try:
        engine.disconnect()
    except MaxsdkError:
        log.debug("%s: disconnect after an auth refusal failed", engine.name, exc_info=True)
