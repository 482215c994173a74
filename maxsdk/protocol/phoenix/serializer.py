"""Phoenix serializers: V2 (JSON arrays + binary frames) and V1 (JSON objects).

Reference §2. Encoding is split in two steps so that the expensive part runs
outside any lock and errors reach the caller at once:

1. :meth:`Serializer.encode_payload` validates and encodes the payload when a
   push is made (``str`` JSON text, or ``bytes`` for a binary payload);
2. :meth:`Serializer.encode` frames it when it is actually sent, because the
   ``join_ref`` of a buffered push is only known then.

Decoding never raises anything but :class:`~maxsdk.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Union

from maxsdk.errors import LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.phoenix.message import PHX_CLOSE, PHX_ERROR, PHX_REPLY, Message

__all__ = [
    "EncodedPayload",
    "Serializer",
    "V1JSONSerializer",
    "V2JSONSerializer",
    "serializer_for",
]

#: A payload ready to be framed: JSON text, or raw bytes for a binary frame.
EncodedPayload = Union[str, bytes]

_quote = json.encoder.encode_basestring  # C-accelerated, no ASCII escaping
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_loads = json.loads
#: The C scanner behind json.loads, called directly: json.loads adds two Python-level
#: calls and two whitespace regex matches per frame. A frame it cannot take whole
#: (surrounding whitespace, trailing data, an error) goes through json.loads, so the
#: result and the error are json.loads's.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
#: Builds a Message from a 5-tuple in one C call (the NamedTuple's __new__ is a Python lambda).
_new_message = tuple.__new__

# Binary frame kinds (reference §2.4).
KIND_PUSH = 0
KIND_REPLY = 1
KIND_BROADCAST = 2
_MAX_FIELD = 255


class Serializer:
    """Common interface of the Phoenix serializers.

    Attributes:
        vsn: the value sent as the ``vsn`` query parameter.
        supports_binary: whether ``bytes`` payloads can be sent.

    """

    vsn: str = ""
    supports_binary: bool = False

    def encode_payload(self, payload: Any) -> EncodedPayload:
        """Validate and encode a payload.

        Args:
            payload: any JSON value, or ``bytes``/``bytearray``/``memoryview``
                for a binary frame (V2 only).

        Returns:
            The JSON text, or the raw bytes.

        Raises:
            LocalProtocolError: the payload cannot be carried (not JSON
                serializable, NaN/Infinity, bytes on V1).

        """
        if isinstance(payload, (bytes, bytearray, memoryview)):
            if not self.supports_binary:
                raise LocalProtocolError(f"binary payloads need vsn 2.0.0 (this connection uses {self.vsn})")
            return bytes(payload)
        try:
            text: str = _dumps(payload)
            if not text.isascii():
                text.encode()  # lone surrogates cannot travel in a UTF-8 text frame
        except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            raise LocalProtocolError(f"payload is not JSON-serializable: {exc}") from exc
        return text

    def encode(
        self,
        join_ref: str | None,
        ref: str | None,
        topic: str,
        event: str,
        payload: EncodedPayload,
    ) -> str | bytes:
        """Frame an encoded payload; ``str`` is a text frame, ``bytes`` a binary frame."""
        raise NotImplementedError

    def encode_message(self, message: Message) -> str | bytes:
        """Encode a whole :class:`Message` (convenience for tests and tools)."""
        return self.encode(
            message.join_ref,
            message.ref,
            message.topic,
            message.event,
            self.encode_payload(message.payload),
        )

    def decode_text(self, data: str | bytes) -> Message:
        """Decode a text frame (``bytes`` are taken as UTF-8)."""
        raise NotImplementedError

    def decode_binary(self, data: bytes) -> Message:
        """Decode a binary frame."""
        raise RemoteProtocolError(f"binary frames are not part of vsn {self.vsn}", frame=data)

    def check_binary_fields(self, topic: str, event: str) -> None:
        """Raise :class:`LocalProtocolError` if ``topic``/``event`` cannot go in a binary header."""
        _check_field("topic", _utf8("topic", topic))
        _check_field("event", _utf8("event", event))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vsn={self.vsn!r})"


class V2JSONSerializer(Serializer):
    """``vsn=2.0.0``: ``[join_ref, ref, topic, event, payload]`` text frames and binary frames."""

    vsn = "2.0.0"
    supports_binary = True

    def encode(
        self,
        join_ref: str | None,
        ref: str | None,
        topic: str,
        event: str,
        payload: EncodedPayload,
    ) -> str | bytes:
        """Frame as a V2 JSON array, or as a kind-0 binary push for ``bytes``."""
        if isinstance(payload, bytes):
            return encode_binary_push(join_ref, ref, topic, event, payload)
        return (
            f"[{'null' if join_ref is None else _quote(join_ref)},"
            f"{'null' if ref is None else _quote(ref)},"
            f"{_quote(topic)},{_quote(event)},{payload}]"
        )

    def decode_text(self, data: str | bytes) -> Message:
        """Decode a JSON array of at least five elements (extra elements are ignored)."""
        try:
            value, end = _scan(data, 0) if type(data) is str else (None, -1)
            if end != len(data):
                value = _loads(data)
        except StopIteration:  # no value at 0 (leading whitespace): json.loads decides
            value = _decode_slowly(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise RemoteProtocolError(f"frame is not valid JSON: {exc}", frame=data) from None
        if type(value) is list and len(value) == 5:
            join_ref, ref, topic, event, payload = value  # one unpacking, not five subscripts
        elif type(value) is not list or len(value) < 5:
            raise RemoteProtocolError("V2 frame is not an array of 5 elements", frame=data)
        else:
            join_ref, ref, topic, event, payload = value[0], value[1], value[2], value[3], value[4]
        # The common frame, checked inline (no call): string refs or null, not a reply.
        if (
            type(topic) is str
            and type(event) is str
            and (type(join_ref) is str or join_ref is None)
            and (type(ref) is str or ref is None)
            and event != PHX_REPLY
        ):
            return _new_message(Message, (join_ref, ref, topic, event, payload))
        return _checked(join_ref, ref, topic, event, payload, data)

    def decode_binary(self, data: bytes) -> Message:
        """Decode server binary kinds 0 (push), 1 (reply) and 2 (broadcast)."""
        return decode_binary_frame(data)


class V1JSONSerializer(Serializer):
    """``vsn=1.0.0``: JSON objects; the server never sends ``join_ref`` (reference §2.2)."""

    vsn = "1.0.0"
    supports_binary = False

    def encode(
        self,
        join_ref: str | None,
        ref: str | None,
        topic: str,
        event: str,
        payload: EncodedPayload,
    ) -> str | bytes:
        """Frame as a V1 JSON object; ``join_ref`` is omitted when ``None``."""
        if isinstance(payload, bytes):
            raise LocalProtocolError("binary payloads need vsn 2.0.0")
        tail = "}" if join_ref is None else f',"join_ref":{_quote(join_ref)}}}'
        return (
            f'{{"topic":{_quote(topic)},"event":{_quote(event)},"payload":{payload},'
            f'"ref":{"null" if ref is None else _quote(ref)}{tail}'
        )

    def decode_text(self, data: str | bytes) -> Message:
        """Decode a JSON object with ``topic``, ``event``, ``payload`` and ``ref``.

        For ``phx_close``/``phx_error`` the server puts the dead join's ref in
        ``ref`` (reference §2.2); it is copied to ``join_ref`` so that stale
        closes can still be told apart from the current incarnation's.
        """
        try:
            value = _loads(data)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(f"frame is not valid JSON: {exc}", frame=data) from None
        if type(value) is not dict:
            raise RemoteProtocolError("V1 frame is not a JSON object", frame=data)
        try:
            topic, event, payload = value["topic"], value["event"], value["payload"]
        except KeyError as exc:
            raise RemoteProtocolError(f"V1 frame lacks {exc.args[0]!r}", frame=data) from None
        ref = value.get("ref")
        join_ref = value.get("join_ref")
        if join_ref is None and event in (PHX_CLOSE, PHX_ERROR):
            join_ref = ref
        return _checked(join_ref, ref, topic, event, payload, data)


def _decode_slowly(data: str | bytes) -> Any:
    try:
        return _loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"frame is not valid JSON: {exc}", frame=data) from None


def _checked(join_ref: Any, ref: Any, topic: Any, event: Any, payload: Any, data: str | bytes) -> Message:
    """Validate decoded fields and build the :class:`Message`."""
    if (
        (join_ref is not None and type(join_ref) is not str)
        or (ref is not None and type(ref) is not str)
        or type(topic) is not str
        or type(event) is not str
    ):
        raise RemoteProtocolError("refs must be strings or null, topic and event strings", frame=data)
    if event == PHX_REPLY:
        if type(payload) is not dict or type(payload.get("status")) is not str:
            raise RemoteProtocolError("phx_reply payload lacks a string 'status'", frame=data)
        if "response" not in payload:
            payload = {"status": payload["status"], "response": {}}
    return Message(join_ref, ref, topic, event, payload)


def _utf8(name: str, value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise LocalProtocolError(f"binary frame {name} is not valid Unicode (lone surrogate)") from None


def _check_field(name: str, raw: bytes) -> bytes:
    if len(raw) > _MAX_FIELD:
        raise LocalProtocolError(f"binary frame {name} is {len(raw)} UTF-8 bytes; the limit is 255")
    return raw


def encode_binary_push(join_ref: str | None, ref: str | None, topic: str, event: str, payload: bytes) -> bytes:
    """Encode a client→server kind-0 push (reference §2.4); ``None`` refs become empty strings.

    Raises:
        LocalProtocolError: a field is longer than 255 UTF-8 bytes.

    """
    j = _check_field("join_ref", _utf8("join_ref", join_ref or ""))
    r = _check_field("ref", _utf8("ref", ref or ""))
    t = _check_field("topic", _utf8("topic", topic))
    e = _check_field("event", _utf8("event", event))
    return b"".join((bytes((KIND_PUSH, len(j), len(r), len(t), len(e))), j, r, t, e, payload))


def decode_binary_frame(data: bytes) -> Message:
    """Decode a server→client binary frame (kinds 0, 1 and 2, reference §2.4).

    Raises:
        RemoteProtocolError: unknown kind, truncated header or fields, bad UTF-8.

    """
    if not data:
        raise RemoteProtocolError("empty binary frame", frame=data)
    kind = data[0]
    if kind == KIND_PUSH:
        lengths, header = data[1:4], 4
    elif kind == KIND_REPLY:
        lengths, header = data[1:5], 5
    elif kind == KIND_BROADCAST:
        lengths, header = data[1:3], 3
    else:
        raise RemoteProtocolError(f"unknown binary frame kind {kind}", frame=data[:16])
    if len(data) < header:
        raise RemoteProtocolError(f"binary frame of kind {kind} shorter than its header", frame=data)
    fields = []
    pos = header
    try:
        for size in lengths:
            end = pos + size
            if end > len(data):
                raise RemoteProtocolError("binary frame fields overrun the frame", frame=data[:64])
            fields.append(data[pos:end].decode())
            pos = end
    except UnicodeDecodeError:
        raise RemoteProtocolError("binary frame field is not UTF-8", frame=data[:64]) from None
    payload = data[pos:]
    if kind == KIND_PUSH:
        join_ref, topic, event = fields
        return Message(join_ref or None, None, topic, event, payload)
    if kind == KIND_REPLY:
        join_ref, ref, topic, status = fields
        return Message(join_ref or None, ref or None, topic, PHX_REPLY, {"status": status, "response": payload})
    topic, event = fields
    return Message(None, None, topic, event, payload)


_SERIALIZERS: dict[str, type[Serializer]] = {"2.0.0": V2JSONSerializer, "1.0.0": V1JSONSerializer}


def serializer_for(vsn: str) -> Serializer:
    """Return the serializer for a ``vsn`` string (``"2.0.0"`` or ``"1.0.0"``).

    Raises:
        ValueError: the version is not supported.

    """
    try:
        return _SERIALIZERS[vsn]()
    except KeyError:
        raise ValueError(f"unsupported vsn {vsn!r}; use '2.0.0' or '1.0.0'") from None
