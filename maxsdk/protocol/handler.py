"""The protocol-handler interface: how one WebSocket protocol looks on the wire.

A :class:`ProtocolHandler` is a pure object (sans-I/O: no threads, sockets or
clocks) that knows one protocol's *messages*. The generic session
(:class:`~maxsdk.protocol.handler_session.HandlerSession`) knows the
*behaviour* every request/subscription protocol shares — correlating replies
with requests, timeouts, capacity, shared subscriptions, resubscribing after a
reconnect, pings and pong timeouts, authenticating on connect — and asks the
handler for the rest:

========================  ===================================================
on connect                :meth:`~ProtocolHandler.connect_url`,
                          :meth:`~ProtocolHandler.connect_messages`,
                          :meth:`~ProtocolHandler.auth_message`,
                          :meth:`~ProtocolHandler.auth_result`
incoming frames           :meth:`~ProtocolHandler.decode_text`,
                          :meth:`~ProtocolHandler.decode_binary`,
                          :meth:`~ProtocolHandler.classify` (→ :class:`Incoming`:
                          kind, request id, topic, data, error),
                          :meth:`~ProtocolHandler.reconnect_reason`
requests                  :meth:`~ProtocolHandler.request`,
                          :meth:`~ProtocolHandler.notification`,
                          :meth:`~ProtocolHandler.batch`
subscriptions             :meth:`~ProtocolHandler.subscribe`,
                          :meth:`~ProtocolHandler.unsubscribe`,
                          :meth:`~ProtocolHandler.subscribe_results`
liveness                  :meth:`~ProtocolHandler.ping` (a frame, :data:`WEBSOCKET_PING`
                          or ``None``), :meth:`~ProtocolHandler.pong`
========================  ===================================================

Every method is called with the client's engine lock held except the
decoding pair and :meth:`~ProtocolHandler.classify`, which run on the reader
thread before the lock is taken; none may block or call user code. A method
that cannot do what is asked raises :class:`~maxsdk.errors.LocalProtocolError`
(building) or :class:`~maxsdk.errors.RemoteProtocolError` (decoding,
classifying); anything else raised while decoding is reported as a
:class:`~maxsdk.errors.RemoteProtocolError` too, and the connection carries on.

Writing one is the documented way to teach maxsdk a new protocol; see
``docs/protocols.md`` and ``examples/custom_protocol.py``. Three live in the
package: :class:`~maxsdk.protocol.phoenix.handler.PhoenixProtocol`,
:class:`~maxsdk.protocol.jsonrpc.JsonRpcProtocol` and
:class:`~maxsdk.protocol.jsonfeed.JsonFeedProtocol`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from maxsdk.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "WEBSOCKET_PING",
    "Frame",
    "FrameKind",
    "Incoming",
    "ProtocolHandler",
    "RequestId",
    "SubscribeResult",
    "TopicRef",
    "WebSocketPing",
]

#: A request id: a JSON string or number (``None`` only in replies that match no request).
RequestId = Union[str, int]
#: An encoded frame: ``str`` goes out as a text frame, ``bytes`` as a binary frame.
Frame = Union[str, bytes]


class WebSocketPing(bytes):
    """A WebSocket-level ping (opcode 0x9) queued among the outgoing frames.

    Returned by :meth:`ProtocolHandler.ping` (as :data:`WEBSOCKET_PING`) by
    protocols that have no ping message of their own; the runtime writes it
    as a control frame and reports the pong back to the session.
    """


#: Return this from :meth:`ProtocolHandler.ping` to use WebSocket-level pings.
WEBSOCKET_PING = WebSocketPing(b"maxsdk")


class FrameKind(enum.Enum):
    """What an incoming message is, as far as the session cares."""

    REPLY = "reply"
    """The answer to one of our requests (``request_id`` set; ``error`` set if it failed)."""
    UPDATE = "update"
    """Data for a subscribed topic (``topic`` is the subscription's key on the wire)."""
    NOTIFICATION = "notification"
    """A server-initiated message not tied to a subscription (``topic`` names it, e.g. a method)."""
    PING = "ping"
    """The server checks we are alive: answer with :meth:`ProtocolHandler.pong`."""
    PONG = "pong"
    """The answer to our protocol-level ping."""
    CONTROL = "control"
    """A confirmation or status message (a subscription confirmed or refused by ``topic``...)."""
    BATCH = "batch"
    """Several messages in one frame (``parts``), e.g. a JSON-RPC batch response."""
    INVALID = "invalid"
    """A part of a batch that breaks the protocol (``error`` is a RemoteProtocolError)."""
    UNKNOWN = "unknown"
    """Anything else: counted, offered to raw-message observers, otherwise ignored."""


class Incoming(NamedTuple):
    """One classified incoming message (built once per frame: keep it a tuple).

    Attributes:
        kind: what the message is.
        request_id: the request it answers (replies, some controls and pongs).
        topic: the topic or subscription key (updates, controls), or the
            name of a notification.
        data: the useful payload: a reply's result, an update's data, a
            notification's params.
        error: for a failed reply or a refused subscription, the server's
            error (any JSON value); for :attr:`FrameKind.INVALID`, the
            :class:`~maxsdk.errors.RemoteProtocolError`.
        message: the decoded message as received.
        parts: the classified messages of a :attr:`FrameKind.BATCH`.
        name: for an update, the name of the notification that carried it
            (a JSON-RPC method, an event name): an update that matches no live
            subscription is delivered as a notification under this name.

    """

    kind: FrameKind
    request_id: RequestId | None = None
    topic: str | None = None
    data: Any = None
    error: Any = None
    message: Any = None
    parts: tuple[Incoming, ...] = ()
    name: str | None = None


class TopicRef(NamedTuple):
    """A subscription as the handler sees it when building (un)subscribe messages.

    Attributes:
        topic: the client-side name of the subscription (unique per client).
        args: protocol-specific subscribe arguments (JSON-RPC: ``(method, params)``;
            Phoenix: the encoded join payload; feeds: usually ``None``).
        key: the server's key for it once confirmed (a JSON-RPC subscription
            id, a Phoenix ``join_ref``), or ``None``.

    """

    topic: str
    args: Any = None
    key: str | None = None


class SubscribeResult(NamedTuple):
    """How the server answered the subscription of one topic.

    Attributes:
        ok: whether the subscription is active.
        key: the key updates will carry (defaults to the topic itself).
        error: the server's reason when refused.

    """

    ok: bool
    key: str | None = None
    error: Any = None


_loads = json.loads
_WS_SCHEMES = {"http": "ws", "https": "wss"}


class ProtocolHandler:
    """Base class of protocol handlers; override what your protocol needs.

    Only :meth:`classify` and :meth:`request` are required; the defaults
    describe a JSON-over-text protocol with no authentication, no batches,
    no subscriptions and WebSocket-level pings. The attributes below may be
    set on the class or on an instance.

    Attributes:
        name: a short name for logs and diagnostics.
        max_subscribe_batch: the most topics one (un)subscribe message may
            carry (``None`` = no limit; Phoenix: 1). The client's
            ``subscribe_batch_size`` is capped by it.
        request_id_per_topic: ``True`` when every topic of a subscribe
            message needs its own request id (JSON-RPC batches of
            ``eth_subscribe`` calls, Phoenix joins); ``False`` when one id
            covers the whole message.
        subscription_confirmation: how the server confirms a subscription:
            ``"reply"`` (a reply to the subscribe request's id),
            ``"control"`` (a :attr:`FrameKind.CONTROL` message naming the
            topic) or ``"none"`` (active as soon as it is sent).
        string_ids: generate string request ids (zero-padded, so they sort)
            instead of integers.

    """

    name: str = "custom"
    max_subscribe_batch: int | None = None
    request_id_per_topic: bool = False
    subscription_confirmation: Literal["reply", "control", "none"] = "reply"
    string_ids: bool = False

    # -- connecting -------------------------------------------------------------------

    def connect_url(self, url: str, params: Mapping[str, Any] | None) -> str:
        """The URL of one connection attempt: ``url`` with ``params`` added to its query.

        ``http``/``https`` URLs become ``ws``/``wss``.

        Args:
            url: the URL the client was given.
            params: the client's connect params, freshly evaluated.

        """
        parts = urlsplit(url)
        scheme = _WS_SCHEMES.get(parts.scheme.lower(), parts.scheme)
        if not params and scheme == parts.scheme:
            return url
        query = parse_qsl(parts.query, keep_blank_values=True)
        query.extend((str(key), _query_value(value)) for key, value in (params or {}).items())
        return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))

    def subprotocols(self) -> tuple[str, ...]:
        """``Sec-WebSocket-Protocol`` values to offer (none by default)."""
        return ()

    def connect_messages(self) -> Sequence[Frame]:
        """Frames to send as soon as the connection opens, before authenticating."""
        return ()

    def auth_message(self, request_id: RequestId, credentials: Any) -> Frame | None:
        """The authentication message, or ``None`` when the protocol needs none.

        Called on every connection when the client was given credentials;
        requests and subscriptions wait until :meth:`auth_result` says yes.

        Args:
            request_id: an id reserved for this message (use it if the
                protocol correlates the answer by id).
            credentials: what the client's ``auth`` option evaluated to.

        """
        return None

    def auth_result(self, incoming: Incoming, request_id: RequestId) -> bool | None:
        """Whether ``incoming`` says the authentication succeeded (``True``), failed (``False``) or neither.

        The default recognises a reply to the auth message's ``request_id``:
        success unless it carries an error.
        """
        if incoming.kind is FrameKind.REPLY and incoming.request_id == request_id:
            return incoming.error is None
        return None

    # -- incoming ---------------------------------------------------------------------

    def decode_text(self, data: bytes | str) -> Any:
        """Decode a text frame (default: JSON); raise :class:`RemoteProtocolError` if malformed."""
        try:
            return _loads(data)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(f"frame is not valid JSON: {exc}", frame=data) from None

    def decode_binary(self, data: bytes) -> Any:
        """Decode a binary frame (default: refused as a protocol error)."""
        raise RemoteProtocolError(f"{self.name} does not use binary frames", frame=data)

    def classify(self, message: Any) -> Incoming:
        """Say what a decoded message is (see :class:`FrameKind`).

        Raises:
            RemoteProtocolError: the message breaks the protocol (it is
                counted and reported; the connection carries on).

        """
        raise NotImplementedError

    def reconnect_reason(self, incoming: Incoming) -> str | None:
        """A reason to drop the connection and reconnect now, or ``None`` (the usual answer).

        For servers that announce maintenance or a migration in-band.
        """
        return None

    # -- outgoing ---------------------------------------------------------------------

    def request(self, request_id: RequestId, method: str, params: Any, *, scope: TopicRef | None = None) -> Frame:
        """Encode a request whose reply will carry ``request_id``.

        Args:
            request_id: the id the reply must carry.
            method: the method, operation or event name.
            params: its arguments (any JSON value, or ``None``).
            scope: the subscription the request is made on, for protocols
                whose requests belong to a topic (Phoenix pushes).

        Raises:
            LocalProtocolError: the request cannot be encoded.

        """
        raise NotImplementedError

    def notification(self, method: str, params: Any) -> Frame:
        """Encode a message that expects no reply (default: not supported)."""
        raise LocalProtocolError(f"{self.name} has no notifications")

    def batch(self, items: Sequence[tuple[RequestId | None, str, Any]]) -> Frame | None:
        """Encode several requests (``request_id`` set) and notifications (``None``) as one frame.

        Return ``None`` when the protocol has no batches; the session then
        refuses them.
        """
        return None

    def subscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame:
        """Encode the subscription of ``topics`` (at most :attr:`max_subscribe_batch` of them).

        ``request_ids`` holds one id, or one per topic when
        :attr:`request_id_per_topic` is set.
        """
        raise LocalProtocolError(f"{self.name} has no subscriptions")

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        """Encode the end of ``topics``' subscriptions (``None``: nothing to send)."""
        return None

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        """Read the server's answer to a subscribe message, one result per topic.

        ``incoming`` is the reply to the subscribe request (``"reply"``
        confirmation) or a control message about ``topics`` (``"control"``).
        The default: all refused if it carries an error, else all active
        under their own names.
        """
        if incoming.error is not None:
            return [SubscribeResult(False, None, incoming.error) for _ in topics]
        return [SubscribeResult(True, ref.topic) for ref in topics]

    def ping(self, request_id: RequestId) -> Frame | None:
        """A protocol-level ping, :data:`WEBSOCKET_PING`, or ``None`` for no pings at all.

        A ping is answered by a :attr:`FrameKind.PONG` message or by a reply
        to ``request_id``.
        """
        return WEBSOCKET_PING

    def pong(self, incoming: Incoming) -> Frame | None:
        """The answer to a server's :attr:`FrameKind.PING` (``None``: send nothing)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _query_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
