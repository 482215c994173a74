"""Generic JSON topic feeds, described by configuration alone.

Many exchange, market-data and IoT feeds speak a variant of one shape::

    >> {"op": "subscribe", "args": ["trades.BTC", "book.ETH"], "id": 7}
    << {"id": 7, "result": {...}}                      (or an "error" member)
    << {"topic": "trades.BTC", "data": {...}}           (updates)
    >> {"op": "ping"}    << {"op": "pong"}              (application-level keepalive)
    >> {"op": "auth", "args": {...}, "id": 1}           (login after connecting)

:class:`JsonFormat` names the fields and operations of one such feed and
:class:`JsonFeedProtocol` is the :class:`~maxsdk.protocol.handler.ProtocolHandler`
built from it. Patterns (``pong``, ``server_ping``, ``reconnect``,
``subscribed``, ``subscribe_error``, ``update``...) are mappings that a
message matches when it has every one of their key/value pairs. The topic and
data fields may be paths into nested objects (``("params", "channel")``), and
a feed that names subscriptions by server-assigned ids (``eth_subscribe``
style) sets ``subscription_key="result"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
from maxsdk.protocol.jsonrpc import encode_json

__all__ = ["NO_CREDENTIALS", "FieldPath", "JsonFeedProtocol", "JsonFormat"]

Pattern = Mapping[str, Any]
#: A field name, or a path of names into nested objects.
FieldPath = str | tuple[str, ...]

_REPLY = FrameKind.REPLY
_UPDATE = FrameKind.UPDATE


@dataclass(frozen=True)
class JsonFormat:
    """The field names and operations of a JSON topic feed (defaults: the shape above).

    Attributes:
        id_field: the request-id field echoed by replies (``None``: the feed
            does not correlate, so requests and reply confirmations are unavailable).
        op_field: the field naming an operation in client messages.
        args_field: the field carrying an operation's arguments.
        topic_field: the field naming the topic of an update, or a path
            into nested objects (``("params", "channel")``).
        data_field: the field (or path) carrying an update's data
            (``None``: the whole message).
        update: a pattern that updates also match (``{"type": "pub"}``):
            other messages with a topic field are not updates (``None``:
            every message with a topic field is one).
        notification: the pattern of server messages that belong to no
            topic nor request (broadcasts, status): they reach the
            ``on(name)`` handlers, ``name`` being their :attr:`op_field`
            value, with their :attr:`data_field` as data. Other such
            messages are counted as unknown.
        result_field: the field of a successful reply's result (``None``: the whole reply).
        error_field: a field whose non-null value makes a reply an error.
        success_field: a boolean field that makes a reply an error when false.
        is_error: a function of a reply (the decoded message) telling
            whether it is an error, in place of :attr:`error_field` and
            :attr:`success_field` (``lambda m: m.get("statusCode", 200) >= 400``);
            the error is then the whole reply.
        subscribe_op / unsubscribe_op: the operation names.
        topics_as: ``"list"`` (``args: [t1, t2]``, batched) or ``"string"``
            (``args: "t1"``, one topic per message).
        subscription_key: what updates carry to name a subscription:
            ``"topic"`` (its topic) or ``"result"`` (the id the subscribe
            reply's result holds, as ``eth_subscribe`` answers; the
            unsubscribe message then names that id, and each topic is
            subscribed with its own message).
        subscription_confirmation: ``"reply"`` (a reply to the subscribe
            id), ``"control"`` (messages matching :attr:`subscribed` /
            :attr:`subscribe_error` naming the topic) or ``"none"``.
        subscribed / subscribe_error: the control messages confirming or
            refusing one topic (with ``"control"`` confirmation).
        ping: the keepalive message we send (``None``: see :attr:`websocket_pings`).
        pong: the pattern of the server's answer to it.
        websocket_pings: with ``ping=None``, use WebSocket-level pings instead of none.
        server_ping: the pattern of a server's keepalive, answered with :attr:`pong_reply`.
        pong_reply: our answer to a server ping (``{"op": "pong"}``), or ``None``.
        pong_id: give each answer to a server ping a fresh id (a string
            ``"pong-N"``, for feeds that refuse a message without one).
        auth_op: the operation sent with the client's ``auth`` credentials as
            its args (with an id when the feed has one); success is a
            non-error reply, or a message matching :attr:`auth_ok`.
        handshake: send the :attr:`auth_op` message on every connection,
            even without credentials (then without args): for feeds that
            must be greeted before anything else. A refusal stops
            reconnecting, as a refused login does.
        auth_ok / auth_failed: patterns of an auth answer that carries no id.
        reconnect: the pattern of a "reconnect now" message (maintenance).
        max_batch: the most topics per subscribe message (``None``: no limit).
        string_ids: send string ids instead of integers.
        constant_fields: fields added to every message we send, e.g.
            ``{"jsonrpc": "2.0"}`` for a JSON-RPC-shaped feed (they never
            override the op, args or id fields).
        op_fields: more fields for the messages of one operation
            (``{"hello": {"version": "2"}}``), added after
            :attr:`constant_fields`.
        op_args_fields: the args field of one operation when it is not
            :attr:`args_field` (``{"hello": "auth", "message": "message"}``).

    The default keepalive and reconnect messages (:attr:`ping`, :attr:`pong`,
    :attr:`server_ping`, :attr:`pong_reply`, :attr:`reconnect`) are written
    with :attr:`op_field`: ``JsonFormat(op_field="method")`` pings with
    ``{"method": "ping"}`` and expects ``{"method": "pong"}``. Give a pattern
    to override one, or ``None`` to turn it off.

    """

    id_field: str | None = "id"
    op_field: str = "op"
    args_field: str = "args"
    topic_field: FieldPath = "topic"
    data_field: FieldPath | None = "data"
    result_field: str | None = "result"
    error_field: str | None = "error"
    success_field: str | None = None
    subscribe_op: str = "subscribe"
    unsubscribe_op: str | None = "unsubscribe"
    topics_as: Literal["list", "string"] = "list"
    subscription_confirmation: Literal["reply", "control", "none"] = "reply"
    subscribed: Pattern | None = None
    subscribe_error: Pattern | None = None
    ping: Pattern | None = field(default_factory=lambda: _OpDefault("ping"))
    pong: Pattern | None = field(default_factory=lambda: _OpDefault("pong"))
    websocket_pings: bool = False
    server_ping: Pattern | None = field(default_factory=lambda: _OpDefault("ping"))
    pong_reply: Pattern | None = field(default_factory=lambda: _OpDefault("pong"))
    auth_op: str | None = "auth"
    auth_ok: Pattern | None = None
    auth_failed: Pattern | None = None
    reconnect: Pattern | None = field(default_factory=lambda: _OpDefault("reconnect"))
    max_batch: int | None = None
    string_ids: bool = False
    constant_fields: Mapping[str, Any] = field(default_factory=dict)
    # Newer options come last, so that positional construction keeps working.
    op_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    op_args_fields: Mapping[str, str] = field(default_factory=dict)
    update: Pattern | None = None
    notification: Pattern | None = None
    is_error: Callable[[Mapping[str, Any]], bool] | None = None
    subscription_key: Literal["topic", "result"] = "topic"
    pong_id: bool = False
    handshake: bool = False

    def __post_init__(self) -> None:
        for name in ("ping", "pong", "server_ping", "pong_reply", "reconnect"):
            value = getattr(self, name)
            if type(value) is _OpDefault:
                object.__setattr__(self, name, {self.op_field: value.op})
            elif value is not None and not isinstance(value, Mapping):
                raise ConfigurationError(f"{name} must be a mapping (a message pattern) or None")
        if not isinstance(self.constant_fields, Mapping) or not all(type(k) is str for k in self.constant_fields):
            raise ConfigurationError("constant_fields must be a mapping of field names to JSON values")
        reserved = {self.op_field, self.args_field, self.id_field} & set(self.constant_fields)
        if reserved:
            raise ConfigurationError(f"constant_fields cannot set {', '.join(sorted(map(str, reserved)))}")
        try:
            encode_json(dict(self.constant_fields))
        except LocalProtocolError as exc:
            raise ConfigurationError(f"constant_fields must be JSON values: {exc}") from None
        _check_op_fields(self)
        for name in ("topic_field", "data_field"):
            object.__setattr__(self, name, _check_path(name, getattr(self, name), name == "data_field"))
        if self.is_error is not None and not callable(self.is_error):
            raise ConfigurationError("is_error must be a function of a reply, or None")
        for name in ("update", "notification"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Mapping):
                raise ConfigurationError(f"{name} must be a mapping (a message pattern) or None")
        if self.subscription_key not in ("topic", "result"):
            raise ConfigurationError("subscription_key must be 'topic' or 'result'")
        if self.subscription_key == "result" and self.subscription_confirmation != "reply":
            raise ConfigurationError("subscription_key='result' needs subscription_confirmation='reply'")
        if self.pong_id and self.id_field is None:
            raise ConfigurationError("pong_id=True needs an id_field")
        if self.handshake and self.auth_op is None:
            raise ConfigurationError("handshake=True needs an auth_op (the greeting's operation)")
        if self.topics_as not in ("list", "string"):
            raise ConfigurationError("topics_as must be 'list' or 'string'")
        if self.subscription_confirmation not in ("reply", "control", "none"):
            raise ConfigurationError("subscription_confirmation must be 'reply', 'control' or 'none'")
        if self.subscription_confirmation == "reply" and self.id_field is None:
            raise ConfigurationError("subscription_confirmation='reply' needs an id_field")
        if self.subscription_confirmation == "control" and self.subscribed is None:
            raise ConfigurationError("subscription_confirmation='control' needs a 'subscribed' pattern")
        if self.max_batch is not None and self.max_batch < 1:
            raise ConfigurationError("max_batch must be a positive int or None")


class JsonFeedProtocol(ProtocolHandler):
    """The :class:`ProtocolHandler` of a feed described by a :class:`JsonFormat`."""

    name = "json"

    def __init__(self, fmt: JsonFormat | None = None) -> None:
        self.format = fmt = fmt or JsonFormat()
        self.string_ids = fmt.string_ids
        self.subscription_confirmation = fmt.subscription_confirmation
        one_per_message = fmt.topics_as == "string" or fmt.subscription_key == "result"
        self.max_subscribe_batch = 1 if one_per_message else fmt.max_batch
        self.request_id_per_topic = False
        self._id = fmt.id_field
        self._topic = fmt.topic_field
        self._data = fmt.data_field
        self._keys_from_result = fmt.subscription_key == "result"
        self._pongs = 0
        # Patterns checked on every message that is neither a reply nor an update, in this order.
        self._patterns: list[tuple[Pattern, FrameKind, str]] = [
            (pattern, kind, label)
            for pattern, kind, label in (
                (fmt.server_ping, FrameKind.PING, "ping"),
                (fmt.pong, FrameKind.PONG, "pong"),
                (fmt.auth_ok, FrameKind.CONTROL, "auth_ok"),
                (fmt.auth_failed, FrameKind.CONTROL, "auth_failed"),
                (fmt.reconnect, FrameKind.CONTROL, "reconnect"),
            )
            if pattern
        ]

    # -- outgoing --------------------------------------------------------------------------

    def _op(self, op: str, args: Any, request_id: RequestId | None) -> str:
        fmt = self.format
        message: dict[str, Any] = dict(fmt.constant_fields) if fmt.constant_fields else {}
        if fmt.op_fields:
            message.update(fmt.op_fields.get(op, ()))
        message[fmt.op_field] = op
        if args is not None:
            message[fmt.op_args_fields.get(op, fmt.args_field) if fmt.op_args_fields else fmt.args_field] = args
        if request_id is not None and self._id is not None:
            message[self._id] = request_id
        return encode_json(message)

    def request(self, request_id: RequestId, method: str, params: Any, *, scope: TopicRef | None = None) -> Frame:
        """``{op: method, args: params, id: request_id}``."""
        return self._op(method, params, request_id)

    def notification(self, method: str, params: Any) -> Frame:
        """``{op: method, args: params}`` (no id)."""
        return self._op(method, params, None)

    def _topics_args(self, topics: Sequence[TopicRef], *, keys: bool = False) -> Any:
        if keys and self._keys_from_result:
            names = [ref.key if ref.key is not None else ref.topic for ref in topics]
        else:
            names = [ref.topic for ref in topics]
        return names[0] if self.format.topics_as == "string" else names

    def subscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame:
        """``{op: subscribe_op, args: [topics...], id: ...}``."""
        return self._op(self.format.subscribe_op, self._topics_args(topics), request_ids[0])

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        """``{op: unsubscribe_op, args: [topics...], id: ...}`` (or the subscription ids), if the feed has one."""
        if self.format.unsubscribe_op is None:
            return None
        return self._op(self.format.unsubscribe_op, self._topics_args(topics, keys=True), request_ids[0])

    def auth_message(self, request_id: RequestId, credentials: Any) -> Frame | None:
        """``{op: auth_op, args: credentials, id: ...}``, if the feed has one (no args for a bare handshake)."""
        if self.format.auth_op is None:
            return None
        return self._op(self.format.auth_op, None if credentials is NO_CREDENTIALS else credentials, request_id)

    def auth_result(self, incoming: Incoming, request_id: RequestId) -> bool | None:
        """A reply to the auth id, or a message matching ``auth_ok`` / ``auth_failed``."""
        if incoming.kind is FrameKind.CONTROL:
            if incoming.data == "auth_ok":
                return True
            if incoming.data == "auth_failed":
                return False
        return super().auth_result(incoming, request_id)

    def ping(self, request_id: RequestId) -> Frame | None:
        """The configured ping message, a WebSocket ping, or none."""
        fmt = self.format
        if fmt.ping is not None:
            return encode_json({**fmt.constant_fields, **fmt.ping})
        return WEBSOCKET_PING if fmt.websocket_pings else None

    def pong(self, incoming: Incoming) -> Frame | None:
        """The configured answer to a server ping."""
        fmt = self.format
        reply = fmt.pong_reply
        if reply is None:
            return None
        if fmt.pong_id and fmt.id_field is not None:
            self._pongs += 1
            return encode_json({**fmt.constant_fields, **reply, fmt.id_field: f"pong-{self._pongs}"})
        return encode_json({**fmt.constant_fields, **reply})

    # -- incoming --------------------------------------------------------------------------

    def classify(self, message: Any) -> Incoming:
        """Reply (has the id field), control (matches a pattern), update (has the topic field), or unknown."""
        if type(message) is not dict:
            raise RemoteProtocolError("a feed message must be a JSON object", frame=_excerpt(message))
        id_field = self._id
        if id_field is not None:
            request_id = message.get(id_field)
            if request_id is not None:
                return self._reply(message, request_id)
        path = self._topic
        topic = message.get(path) if isinstance(path, str) else _get(message, path)
        fmt = self.format
        if type(topic) is int:
            topic = str(topic)
        if topic is not None and type(topic) is str:
            if fmt.subscribed is not None and _matches(message, fmt.subscribed):
                return Incoming(FrameKind.CONTROL, None, topic, "subscribed", None, message)
            if fmt.subscribe_error is not None and _matches(message, fmt.subscribe_error):
                return Incoming(FrameKind.CONTROL, None, topic, "subscribe_error", message, message)
            if fmt.update is None or _matches(message, fmt.update):
                data_path = self._data
                data = message.get(data_path) if isinstance(data_path, str) else self._data_of(message)
                return Incoming(_UPDATE, None, topic, data, None, message)
        for pattern, kind, label in self._patterns:
            if _matches(message, pattern):
                return Incoming(kind, None, None, label, None, message)
        if fmt.notification is not None and _matches(message, fmt.notification):
            name = message.get(fmt.op_field)
            data = self._data_of(message)
            return Incoming(FrameKind.NOTIFICATION, None, name if type(name) is str else None, data, None, message)
        return Incoming(FrameKind.UNKNOWN, message=message)

    def _data_of(self, message: dict[str, Any]) -> Any:
        path = self._data
        if path is None:
            return message
        return message.get(path) if isinstance(path, str) else _get(message, path)

    def _reply(self, message: dict[str, Any], request_id: Any) -> Incoming:
        if type(request_id) is not str and type(request_id) is not int:
            raise RemoteProtocolError(f"invalid request id {request_id!r}", frame=_excerpt(message))
        fmt = self.format
        if fmt.is_error is not None:
            error = message if _is_error(fmt.is_error, message) else None
        else:
            error = message.get(fmt.error_field) if fmt.error_field else None
            if error is None and fmt.success_field is not None and message.get(fmt.success_field) is False:
                error = message
        result = message.get(fmt.result_field) if fmt.result_field else message
        return Incoming(_REPLY, request_id, None, result, error, message)

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        """A reply or control message: the error refuses, anything else confirms (key = topic)."""
        if incoming.kind is FrameKind.CONTROL and incoming.data == "subscribe_error":
            return [SubscribeResult(False, None, incoming.error) for _ in topics]
        if self._keys_from_result and incoming.error is None:
            # One topic per subscribe message: its reply's result is the id updates will carry.
            key = incoming.data
            if (type(key) is not str and type(key) is not int) or key == "":
                return [SubscribeResult(False, None, {"message": f"not a subscription id: {key!r}"}) for _ in topics]
            return [SubscribeResult(True, str(key)) for _ in topics]
        return super().subscribe_results(topics, incoming)

    def reconnect_reason(self, incoming: Incoming) -> str | None:
        """``"server_requested_reconnect"`` for a message matching ``reconnect``."""
        return "server_requested_reconnect" if incoming.data == "reconnect" else None


class _OpDefault(dict):  # type: ignore[type-arg]
    """A default keepalive pattern, rewritten with the format's ``op_field`` once it is known."""

    def __init__(self, op: str) -> None:
        super().__init__(op=op)
        self.op = op


class _NoCredentials:
    """The credentials of a handshake sent without any (see :attr:`JsonFormat.handshake`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_CREDENTIALS"


#: Passed as the credentials when a handshake is sent without any.
NO_CREDENTIALS: Any = _NoCredentials()


def _check_path(name: str, value: Any, optional: bool) -> FieldPath | None:
    """A field name or a non-empty tuple of names (a list is accepted and made a tuple)."""
    if value is None and optional:
        return None
    if type(value) is str and value:
        return value
    if isinstance(value, (tuple, list)) and value and all(type(part) is str and part for part in value):
        return tuple(value) if len(value) > 1 else value[0]
    raise ConfigurationError(f"{name} must be a field name or a tuple of field names (a path)")


def _check_op_fields(fmt: JsonFormat) -> None:
    if not isinstance(fmt.op_fields, Mapping) or not all(
        type(op) is str and isinstance(fields, Mapping) and all(type(k) is str for k in fields)
        for op, fields in fmt.op_fields.items()
    ):
        raise ConfigurationError("op_fields must map operation names to mappings of field names to JSON values")
    reserved = {fmt.op_field, fmt.id_field}
    for op, fields in fmt.op_fields.items():
        clash = reserved & set(fields)
        if clash:
            raise ConfigurationError(f"op_fields[{op!r}] cannot set {', '.join(sorted(map(str, clash)))}")
        try:
            encode_json(dict(fields))
        except LocalProtocolError as exc:
            raise ConfigurationError(f"op_fields[{op!r}] must hold JSON values: {exc}") from None
    if not isinstance(fmt.op_args_fields, Mapping) or not all(
        type(op) is str and type(name) is str and name for op, name in fmt.op_args_fields.items()
    ):
        raise ConfigurationError("op_args_fields must map operation names to field names")
    clash = {fmt.op_field, fmt.id_field} & set(fmt.op_args_fields.values())
    if clash:
        raise ConfigurationError(f"op_args_fields cannot name {', '.join(sorted(map(str, clash)))}")


def _is_error(predicate: Callable[[Mapping[str, Any]], bool], message: dict[str, Any]) -> bool:
    try:
        return bool(predicate(message))
    except Exception as exc:  # the user's predicate met a reply it did not expect
        raise RemoteProtocolError(f"is_error failed on a reply: {exc!r}", frame=_excerpt(message)) from exc


def _get(message: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested objects, or ``None`` where one is missing or not an object."""
    value: Any = message
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def _matches(message: Mapping[str, Any], pattern: Pattern) -> bool:
    return all(message.get(key, _MISSING) == value for key, value in pattern.items())


_MISSING = object()


def _excerpt(message: Any) -> str:
    try:
        return json.dumps(message)[:200]
    except (TypeError, ValueError):
        return repr(message)[:200]
