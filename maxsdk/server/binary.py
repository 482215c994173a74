"""The V2 binary frame layouts (reference §2.4).

Clients may only send kind 0 (push, with a ref); the server sends kind 0
(push, no ref), kind 1 (reply) and kind 2 (broadcast). Every length is one
unsigned byte counting UTF-8 bytes, and ``None`` travels as an empty string.
"""

from __future__ import annotations

from .message import Message, Ref

PUSH = 0
REPLY = 1
BROADCAST = 2

_MAX_FIELD = 255


class BinaryDecodeError(ValueError):
    """A client binary frame does not follow the kind 0 layout."""


def decode_push(data: bytes) -> Message:
    """Decode a client → server kind 0 frame.

    An empty ``join_ref`` or ``ref`` stays ``""`` (not ``None``), as in Phoenix:
    such a push does not match a stored join_ref on v1.8.3+ servers.

    Raises:
        BinaryDecodeError: on another kind, a truncated header or invalid UTF-8.

    """
    if len(data) < 5:
        raise BinaryDecodeError(f"binary frame too short ({len(data)} bytes)")
    if data[0] != PUSH:
        raise BinaryDecodeError(f"unsupported binary kind {data[0]} from a client")
    sizes = data[1:5]
    fields: list[str] = []
    offset = 5
    for size in sizes:
        end = offset + size
        if end > len(data):
            raise BinaryDecodeError("binary header lengths exceed the frame")
        try:
            fields.append(data[offset:end].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BinaryDecodeError("binary header field is not UTF-8") from exc
        offset = end
    join_ref, ref, topic, event = fields
    return Message(join_ref, ref, topic, event, data[offset:])


def encode_push(join_ref: Ref, topic: str, event: str, payload: bytes) -> bytes:
    """Encode a server push (kind 0): join_ref, topic, event, payload; no ref."""
    fields = _fields(join_ref, topic, event)
    return _pack(PUSH, fields, payload)


def encode_reply(join_ref: Ref, ref: Ref, topic: str, status: str, payload: bytes) -> bytes:
    """Encode a reply (kind 1): join_ref, ref, topic, status, payload."""
    fields = _fields(join_ref, ref, topic, status)
    return _pack(REPLY, fields, payload)


def encode_broadcast(topic: str, event: str, payload: bytes) -> bytes:
    """Encode a broadcast (kind 2): topic, event, payload; join_ref and ref are null."""
    fields = _fields(topic, event)
    return _pack(BROADCAST, fields, payload)


def _fields(*values: Ref) -> list[bytes]:
    encoded = [b"" if value is None else str(value).encode("utf-8") for value in values]
    for value, raw in zip(values, encoded, strict=True):
        if len(raw) > _MAX_FIELD:
            raise ValueError(f"binary frame field {value!r} is {len(raw)} UTF-8 bytes; the limit is 255")
    return encoded


def _pack(kind: int, fields: list[bytes], payload: bytes) -> bytes:
    header = bytes([kind, *(len(field) for field in fields)])
    return b"".join((header, *fields, bytes(payload)))
