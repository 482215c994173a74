"""The Phoenix Channels driver: URL and serializer, rejoins, channel events, leaving on close."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from maxsdk import signals
from maxsdk.config import ClientConfig
from maxsdk.endpoint import build_socket_url
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState
from maxsdk.protocol.phoenix.events import ChannelMessage, ChannelStateChanged, RawMessage
from maxsdk.protocol.phoenix.serializer import serializer_for
from maxsdk.protocol.phoenix.session import PhoenixSession, SessionConfig
from maxsdk.status import ChannelSnapshot

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["PhoenixDriver"]

log = logging.getLogger("maxsdk.client")


class PhoenixDriver:
    """Runs a :class:`PhoenixSession` for the engine."""

    def __init__(self, config: ClientConfig, emit: Callable[[Any], None]) -> None:
        self.config = config
        self.serializer = serializer_for(config.vsn)
        session_config = SessionConfig(
            heartbeat_interval=config.heartbeat_interval,
            heartbeat_timeout=config.heartbeat_timeout,
            rejoin=config.rejoin,
            max_pending=config.max_pending,
        )
        kwargs: dict[str, Any] = {"emit": emit}
        if config.rng is not None:
            kwargs["rng"] = config.rng
        self.session = PhoenixSession(self.serializer, session_config, **kwargs)
        # Nothing is signalled for these moves (see _channel_state_changed): queueing them
        # would only wake a dispatch worker while a join or leave waits for its reply.
        self.session.unreported_states = frozenset({ChannelState.JOINING, ChannelState.LEAVING})
        # The session's PhoenixProtocol decodes with the serializer's own bound methods (no extra call).
        self.decode_text = self.session.protocol.decode_text
        self.decode_binary = self.session.protocol.decode_binary

    def connect_url(self, params: Mapping[str, Any] | None) -> str:
        """``<endpoint>/websocket?<params>&vsn=...`` (reference §1.1-§1.3)."""
        return build_socket_url(self.config.url, params, self.config.vsn)

    def subprotocols(self, token: str | None) -> tuple[str, ...]:
        """Phoenix >= 1.8 ``authToken``: standard base64 without padding (reference §1.4)."""
        if not token:
            return ()
        encoded = base64.b64encode(token.encode()).decode().rstrip("=")
        return ("phoenix", f"base64url.bearer.phx.{encoded}")

    def run_followups(self, engine: Engine, followups: list[Any]) -> None:
        """Rejoin each due channel, evaluating its params (user code) outside the lock."""
        for core in followups:
            channel = core.owner
            try:
                payload = self.serializer.encode_payload(channel._join_params())
            except Exception as exc:  # noqa: BLE001 - a user params callable failed
                log.error("%s: cannot build join params for %r: %s", engine.name, core.topic, exc)
                engine.notify(signals.handler_failed, handler=channel.params, error=exc, context="join params")
                engine.run(_RejoinLater(core))
                continue
            engine.run(_Rejoin(core, payload))

    def droppable(self, item: Any) -> bool:
        """Channel messages may be dropped on overflow; state changes never."""
        kind = type(item)
        return kind is ChannelMessage or kind is RawMessage

    def lane_of(self, item: Any) -> Any:
        """A channel's messages and state changes go to its own lane; the rest to the client's."""
        kind = type(item)
        if kind is ChannelMessage or kind is ChannelStateChanged:
            return item.owner._lane
        return None

    def event_handler(self, engine: Engine, fallback: Callable[[Any], None]) -> Callable[[Any], None]:
        """The dispatcher's function per event: channel messages inline, the rest to ``fallback``.

        The same as :meth:`dispatch` for a channel message (counted, then
        delivered), without its calls: this runs once per message of a flood.
        """
        by_event = engine.metrics.messages_by_event
        by_topic = engine.metrics.messages_by_topic

        def handle(item: Any) -> None:
            if type(item) is ChannelMessage:
                message = item.message
                by_event[message.event] += 1
                by_topic[message.topic] += 1
                item.owner._deliver(message, item.join_ref)
            else:
                fallback(item)

        return handle

    def dispatch(self, engine: Engine, item: Any) -> bool:
        """Deliver channel messages and state changes (dispatcher thread)."""
        kind = type(item)
        if kind is ChannelMessage:
            engine.metrics.observe_message(item.message.topic, item.message.event)
            item.owner._deliver(item.message, item.join_ref)
            return True
        if kind is ChannelStateChanged:
            self._channel_state_changed(engine, item)
            return True
        return False

    def _channel_state_changed(self, engine: Engine, change: ChannelStateChanged) -> None:
        channel = change.owner
        channel._state_changed(change)
        new = change.new
        if new is ChannelState.JOINED:
            engine.send_signal(
                signals.channel_joined, channel=channel, response=change.response, rejoined=change.reason == "rejoined"
            )
        elif new is ChannelState.ERRORED:
            engine.send_signal(signals.channel_errored, channel=channel, reason=change.reason, response=change.response)
            if change.reason in ("rejoin_refused", "timeout"):
                engine.send_signal(
                    signals.channel_rejoin_failed, channel=channel, reason=change.reason, response=change.response
                )
        elif new is ChannelState.CLOSED:
            engine.send_signal(signals.channel_closed, channel=channel, reason=change.reason, response=change.response)

    def before_close(self, engine: Engine, deadline: float) -> None:
        """Leave every active channel and wait (bounded) for the replies."""
        from maxsdk.reply import PendingReply

        waiters = []

        def leave_all(session: PhoenixSession, now: float) -> None:
            for core in session.channels():
                if core.state in (ChannelState.JOINED, ChannelState.JOINING, ChannelState.ERRORED):
                    timeout = max(0.1, min(1.0, deadline - now))
                    waiter = PendingReply(None, core.topic, "phx_leave", timeout)
                    session.leave(core, now, timeout, waiter)
                    waiters.append(waiter)

        engine.run(leave_all)
        for waiter in waiters:
            waiter.wait_done(max(0.0, min(1.0, deadline - time.monotonic())))

    def snapshot(self) -> tuple[ChannelSnapshot, ...]:
        """The registered channels."""
        return tuple(ChannelSnapshot(c.topic, str(c.state), c.join_ref) for c in self.session.channels())

    def core_for(self, topic: str, owner: Any, timeout: float) -> ChannelCore:
        """A new channel core owned by ``owner``."""
        return ChannelCore(topic, owner, timeout)


class _Rejoin:
    """Send a channel's rejoin with its freshly encoded params (run under the engine lock)."""

    def __init__(self, core: ChannelCore, payload: str | bytes) -> None:
        self.core, self.payload = core, payload

    def __call__(self, session: PhoenixSession, now: float) -> bool:
        return session.send_rejoin(self.core, self.payload, now)


class _RejoinLater:
    """Reschedule a rejoin whose params could not be built (run under the engine lock)."""

    def __init__(self, core: ChannelCore) -> None:
        self.core = core

    def __call__(self, session: PhoenixSession, now: float) -> None:
        session.rejoin_not_sent(self.core, now)
