"""Every signal maxsdk emits (blinker), with its sender, arguments and thread.

All signals live in maxsdk's own :data:`namespace` (never blinker's global
one). The **sender is always the** :class:`~maxsdk.Client`; connect with
``sender=client`` to hear one client only, or use :meth:`Client.on_signal`,
which does that and holds the receiver strongly (blinker holds receivers
weakly by default, so a lambda connected directly may silently vanish).

**Which thread runs receivers:** every signal is sent from the client's
dispatcher thread (named ``maxsdk-dispatch-<n>``), in the order the events
happened, never from the reader or timer thread and never while maxsdk holds
a lock. A receiver may therefore call blocking client methods such as
``channel.push()``. A receiver that raises does not stop the others: the
error is logged and reported through :data:`handler_failed`.

Keyword arguments of each signal are listed below; receivers should accept
``**kwargs`` so that new arguments can be added without breaking them.
"""

from __future__ import annotations

from blinker import Namespace, Signal

__all__ = [
    "channel_closed",
    "channel_errored",
    "channel_joined",
    "channel_rejoin_failed",
    "connected",
    "disconnected",
    "error_received",
    "handler_failed",
    "heartbeat",
    "message_received",
    "messages_dropped",
    "namespace",
    "notification_received",
    "outbox_dead_lettered",
    "outbox_delivered",
    "outbox_expired",
    "payload_invalid",
    "presence_join",
    "presence_leave",
    "presence_sync",
    "protocol_error",
    "reconnect_failed",
    "reconnecting",
    "state_changed",
    "state_view_changed",
    "state_view_conflict",
    "stream_discontinuity",
    "subscribed",
    "subscription_failed",
    "transport_fallback",
]

#: maxsdk's private blinker namespace.
namespace = Namespace()

connected: Signal = namespace.signal(
    "connected",
    doc="""The connection opened (first time or after a reconnect).

    kwargs: ``url`` (where it went, redacted: after any redirects followed),
    ``reconnect`` (bool: not the first connection).
    """,
)

disconnected: Signal = namespace.signal(
    "disconnected",
    doc="""An open connection closed.

    kwargs: ``code`` (WebSocket close code or ``None``), ``reason`` (str),
    ``will_reconnect`` (bool).
    """,
)

state_changed: Signal = namespace.signal(
    "state_changed",
    doc="""The connection state changed.

    kwargs: ``old`` and ``new`` (:class:`~maxsdk.ConnectionState`), ``reason``
    (a human-readable explanation, e.g. "reconnecting in 2.1 s after close 1006 (attempt 3)").
    """,
)

reconnecting: Signal = namespace.signal(
    "reconnecting",
    doc="""A reconnect attempt is scheduled.

    kwargs: ``attempt`` (1-based), ``delay`` (seconds), ``error`` (the failure
    that caused it, an exception or ``None``), ``reason`` (str).
    """,
)

reconnect_failed: Signal = namespace.signal(
    "reconnect_failed",
    doc="""The client gave up connecting and is now closed.

    kwargs: ``error`` (the last failure), ``attempts`` (int), ``reason`` (str).
    """,
)

channel_joined: Signal = namespace.signal(
    "channel_joined",
    doc="""A channel joined or rejoined.

    kwargs: ``channel`` (:class:`~maxsdk.Channel`), ``response`` (the join
    reply), ``rejoined`` (bool).
    """,
)

channel_errored: Signal = namespace.signal(
    "channel_errored",
    doc="""A channel errored (server crash, connection lost, rejoin refused or timed out); it will rejoin.

    kwargs: ``channel``, ``reason`` (str), ``response`` (server payload or ``None``).
    """,
)

channel_rejoin_failed: Signal = namespace.signal(
    "channel_rejoin_failed",
    doc="""A rejoin was refused or timed out; the channel retries on its rejoin schedule.

    kwargs: ``channel``, ``reason`` (``"rejoin_refused"`` or ``"timeout"``),
    ``response`` (the server's reply payload, if any).
    """,
)

channel_closed: Signal = namespace.signal(
    "channel_closed",
    doc="""A channel closed for good (left, refused, closed by the server, client closed).

    kwargs: ``channel``, ``reason`` (str), ``response`` (server payload or ``None``).
    """,
)

message_received: Signal = namespace.signal(
    "message_received",
    doc="""Every decoded incoming message, including replies and heartbeats (socket-level hook).

    Only emitted while at least one receiver is connected (it costs a
    dispatcher hand-off per frame). kwargs: ``message`` (:class:`~maxsdk.Message`).
    """,
)

heartbeat: Signal = namespace.signal(
    "heartbeat",
    doc="""A heartbeat reply arrived. kwargs: ``rtt`` (round trip, seconds).""",
)

protocol_error: Signal = namespace.signal(
    "protocol_error",
    doc="""An incoming frame was malformed or too large and was dropped; the connection carries on.

    kwargs: ``error`` (:class:`~maxsdk.errors.RemoteProtocolError`).
    """,
)

handler_failed: Signal = namespace.signal(
    "handler_failed",
    doc="""A user handler or signal receiver raised.

    kwargs: ``handler`` (the callable), ``error`` (the exception), ``context``
    (str: the event or signal it was handling).
    """,
)

messages_dropped: Signal = namespace.signal(
    "messages_dropped",
    doc="""The dispatch queue overflowed and messages were dropped (per the overflow policy).

    kwargs: ``count`` (dropped since the last report), ``total`` (since the client started),
    ``topic`` (the channel whose queue overflowed, or ``None`` for connection-level events).
    """,
)

presence_join: Signal = namespace.signal(
    "presence_join",
    doc="""A presence key joined (or gained a meta) on a channel.

    kwargs: ``channel``, ``key``, ``current`` (the entry before, or ``None``), ``changed`` (the joined presence).
    """,
)

presence_leave: Signal = namespace.signal(
    "presence_leave",
    doc="""A presence key left (or lost a meta) on a channel.

    kwargs: ``channel``, ``key``, ``current`` (the entry after removal), ``changed`` (the left presence).
    """,
)

state_view_changed: Signal = namespace.signal(
    "state_view_changed",
    doc="""A replicated state view's document changed (see :class:`maxsdk.StateView`).

    kwargs: ``channel``, ``view``, ``paths`` (JSON Pointers), ``version``
    (confirmed server version), ``cause`` (``"snapshot"``, ``"delta"``,
    ``"local"``, ``"rollback"``).
    """,
)

state_view_conflict: Signal = namespace.signal(
    "state_view_conflict",
    doc="""The server refused an optimistic state update (or its reply never came); it was rolled back.

    kwargs: ``channel``, ``view``, ``conflict`` (:class:`maxsdk.StateConflict`:
    ``update_id``, ``patch``, ``base``, ``reason``, ``version``, ``response``).
    """,
)

presence_sync: Signal = namespace.signal(
    "presence_sync",
    doc="""A channel's presence list changed (after a state or a diff was applied). kwargs: ``channel``.""",
)

payload_invalid: Signal = namespace.signal(
    "payload_invalid",
    doc="""A payload did not fit the model a handler asked for; that handler was skipped.

    kwargs: ``channel``, ``event``, ``model`` (the class), ``error``
    (:class:`~maxsdk.ModelError` with ``.reason``).
    """,
)

transport_fallback: Signal = namespace.signal(
    "transport_fallback",
    doc="""The client switched transports (``transport="auto"``: from WebSocket to long-poll).

    kwargs: ``from_`` (the transport given up, ``"websocket"``), ``to``
    (``"longpoll"``), ``reason`` (str: why, e.g. "no WebSocket connection within 5 s").
    """,
)

# -- request/subscription protocols (JsonRpcClient, JsonClient, ProtocolClient) ------------------

notification_received: Signal = namespace.signal(
    "notification_received",
    doc="""A server-initiated message outside any subscription arrived (JSON-RPC notification, unsolicited topic).

    Sent after the handlers registered with ``client.on(name, ...)`` ran.
    kwargs: ``method`` (the JSON-RPC method or the topic, ``None`` if the
    message names none), ``params`` (its params or data).
    """,
)

subscribed: Signal = namespace.signal(
    "subscribed",
    doc="""A topic subscription was confirmed by the server (first time, or again after a reconnect).

    kwargs: ``topic`` (the client-side name), ``key`` (the server's id for it
    on this connection), ``resubscribed`` (bool).
    """,
)

subscription_failed: Signal = namespace.signal(
    "subscription_failed",
    doc="""The server refused a subscription, or did not confirm it in time.

    A first subscription that fails is forgotten (the ``subscribe`` call
    raises); a resubscription after a reconnect is retried on the
    ``resubscribe`` schedule. kwargs: ``topic``, ``error`` (the server's
    error, or ``"timeout"``), ``will_retry`` (bool).
    """,
)

error_received: Signal = namespace.signal(
    "error_received",
    doc="""The server sent an error that answers no pending request; the connection carries on.

    Typically a JSON-RPC error response with ``"id": null`` (the server
    could not parse or read a request). kwargs: ``error``
    (:class:`~maxsdk.RpcError`).
    """,
)

outbox_delivered: Signal = namespace.signal(
    "outbox_delivered",
    doc="""A durable message got its ``ok`` reply and left the outbox (only sent while someone listens).

    kwargs: ``key`` (idempotency key), ``topic``, ``event``, ``response``.
    """,
)

outbox_dead_lettered: Signal = namespace.signal(
    "outbox_dead_lettered",
    doc="""A durable message got an error reply and was set aside as a dead letter (never dropped silently).

    kwargs: ``key``, ``topic``, ``event``, ``response`` (the error reply's response).
    """,
)

outbox_expired: Signal = namespace.signal(
    "outbox_expired",
    doc="""A durable message's TTL passed before it could be delivered; it was removed and not sent.

    kwargs: ``key``, ``topic``, ``event``, ``age`` (seconds since it was stored).
    """,
)

stream_discontinuity: Signal = namespace.signal(
    "stream_discontinuity",
    doc="""A recoverable channel's stream has a gap the server could not fill (see :mod:`maxsdk.recovery`).

    kwargs: ``channel``, ``discontinuity`` (:class:`~maxsdk.recovery.Discontinuity`:
    ``reason``, ``last``, ``oldest``, ``resumed``).
    """,
)
