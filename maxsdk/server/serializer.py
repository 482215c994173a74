"""The server's own V1 and V2 serializers (reference §2.2-§2.4).

This codec is deliberately independent of the client's ``maxsdk.protocol``,
so a misunderstanding of the wire format cannot hide in one shared codec.

JSON is written compactly with sorted keys and raw UTF-8, which is byte for
byte what Phoenix's Jason produces for the small maps of the protocol (see
the recordings in ``tests/golden``).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from . import binary
from .message import Frame, Message, OutPayload, Ref

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)
encode_json: Callable[[Any], str] = _ENCODER.encode
"""Encode a JSON value the way Phoenix (Jason) does."""


class MalformedFrameError(ValueError):
    """A client frame cannot be decoded; Phoenix crashes the socket (close 1011)."""


def _reject_constant(name: str) -> NoReturn:
    raise MalformedFrameError(f"{name} is not valid JSON")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _loads(text: str | bytes) -> Any:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    try:
        data = _DECODER.decode(text)
    except ValueError as exc:
        if isinstance(exc, MalformedFrameError):
            raise
        raise MalformedFrameError(f"frame is not JSON: {exc}") from exc
    # Python decodes a lone "\ud800" escape; Jason refuses it (and the frame
    # could not be sent back as UTF-8). Pairs are fine: they decode to one char.
    if isinstance(text, str) and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise MalformedFrameError("frame contains a lone UTF-16 surrogate escape")
    return data


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


def _ref(value: Any, name: str) -> Ref:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MalformedFrameError(f"{name} must be a string or null, got {type(value).__name__}")


def _text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    raise MalformedFrameError(f"{name} must be a string, got {type(value).__name__}")


def as_object(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``payload`` as a dict; Phoenix refuses non-map pushes and replies.

    Raises:
        TypeError: if the payload is not a mapping.

    """
    if type(payload) is dict:
        return payload
    if isinstance(payload, Mapping):
        return dict(payload)
    raise TypeError(f"payload must be a mapping or bytes, got {type(payload).__name__}")


class Serializer(ABC):
    """Decodes client frames and encodes server messages for one protocol version."""

    vsn: str
    """The version family this serializer answers, e.g. ``"2.0.0"``."""

    @abstractmethod
    def decode(self, frame: Frame) -> Message:
        """Decode one client frame.

        Raises:
            MalformedFrameError: if the frame is malformed for this version.

        """

    @abstractmethod
    def encode_message(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Mapping[str, Any]) -> Frame:
        """Encode a full message (``phx_close``, ``phx_error``)."""

    @abstractmethod
    def encode_reply(self, join_ref: Ref, ref: Ref, topic: str, status: str, response: OutPayload) -> Frame:
        """Encode a ``phx_reply`` carrying ``{"status": ..., "response": ...}``."""

    @abstractmethod
    def push_encoder(self, join_ref: Ref, topic: str, event: str) -> Callable[[OutPayload], Frame]:
        """Return a function encoding server pushes of one event (envelope built once)."""

    @abstractmethod
    def encode_broadcast(self, topic: str, event: str, payload: OutPayload) -> Frame:
        """Encode a fastlane broadcast (join_ref and ref null)."""

    def encode_push(self, join_ref: Ref, topic: str, event: str, payload: OutPayload) -> Frame:
        """Encode one server push (join_ref set, ref null)."""
        return self.push_encoder(join_ref, topic, event)(payload)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vsn={self.vsn!r})"


class V1Serializer(Serializer):
    """vsn 1.0.0: JSON objects; replies never carry ``join_ref`` (§2.2); no binary."""

    vsn = "1.0.0"

    def decode(self, frame: Frame) -> Message:
        """Decode a V1 text frame (binary frames crash the socket, as in Phoenix)."""
        if not isinstance(frame, str):
            raise MalformedFrameError("the V1 serializer does not accept binary frames")
        data = _loads(frame)
        if not isinstance(data, dict):
            raise MalformedFrameError("a V1 frame must be a JSON object")
        try:
            topic, event, payload, ref = data["topic"], data["event"], data["payload"], data["ref"]
        except KeyError as exc:
            raise MalformedFrameError(f"missing key {exc.args[0]!r}") from None
        return Message(
            _ref(data.get("join_ref"), "join_ref"),
            _ref(ref, "ref"),
            _text(topic, "topic"),
            _text(event, "event"),
            payload,
        )

    def encode_message(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Mapping[str, Any]) -> Frame:
        """Encode a message; V1 drops the join_ref."""
        return encode_json({"topic": topic, "event": event, "payload": payload, "ref": ref})

    def encode_reply(self, join_ref: Ref, ref: Ref, topic: str, status: str, response: OutPayload) -> Frame:
        """Encode a reply; V1 drops the join_ref and cannot carry bytes."""
        body = {"status": status, "response": as_object(self._json_only(response))}
        return encode_json({"topic": topic, "event": "phx_reply", "payload": body, "ref": ref})

    def push_encoder(self, join_ref: Ref, topic: str, event: str) -> Callable[[OutPayload], Frame]:
        """Build ``{"event":..,"payload":<p>,"ref":null,"topic":..}`` around each payload."""
        head = encode_json({"event": event})[:-1] + ',"payload":'
        tail = ',"ref":null,"topic":' + encode_json(topic) + "}"

        def encode(payload: OutPayload) -> Frame:
            return head + encode_json(as_object(self._json_only(payload))) + tail

        return encode

    def encode_broadcast(self, topic: str, event: str, payload: OutPayload) -> Frame:
        """Encode a broadcast; identical to a push on V1."""
        return self.push_encoder(None, topic, event)(payload)

    @staticmethod
    def _json_only(payload: OutPayload) -> Mapping[str, Any]:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            # Phoenix's V1 serializer raises here, crashing the channel (§2.4).
            raise ValueError("the V1 serializer cannot encode binary payloads")
        return payload


class V2Serializer(Serializer):
    """vsn 2.0.0: ``[join_ref, ref, topic, event, payload]`` arrays and binary frames."""

    vsn = "2.0.0"

    def decode(self, frame: Frame) -> Message:
        """Decode a V2 text array or a binary kind 0 push."""
        if not isinstance(frame, str):
            try:
                return binary.decode_push(bytes(frame))
            except binary.BinaryDecodeError as exc:
                raise MalformedFrameError(str(exc)) from exc
        data = _loads(frame)
        # Extra trailing elements are ignored; fewer than five crash the socket (§2.3).
        if not isinstance(data, list) or len(data) < 5:
            raise MalformedFrameError("a V2 frame must be an array of five elements")
        join_ref, ref, topic, event, payload = data[:5]
        return Message(
            _ref(join_ref, "join_ref"),
            _ref(ref, "ref"),
            _text(topic, "topic"),
            _text(event, "event"),
            payload,
        )

    def encode_message(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Mapping[str, Any]) -> Frame:
        """Encode ``[join_ref, ref, topic, event, payload]``."""
        return encode_json([join_ref, ref, topic, event, as_object(payload)])

    def encode_reply(self, join_ref: Ref, ref: Ref, topic: str, status: str, response: OutPayload) -> Frame:
        """Encode a reply: text, or binary kind 1 when ``response`` is bytes."""
        if isinstance(response, (bytes, bytearray, memoryview)):
            return binary.encode_reply(join_ref, ref, topic, status, bytes(response))
        body = {"status": status, "response": as_object(response)}
        return encode_json([join_ref, ref, topic, "phx_reply", body])

    def push_encoder(self, join_ref: Ref, topic: str, event: str) -> Callable[[OutPayload], Frame]:
        """Build ``[join_ref,null,topic,event,<p>]`` (binary kind 0 for bytes)."""
        head = encode_json([join_ref, None, topic, event])[:-1] + ","

        def encode(payload: OutPayload) -> Frame:
            if isinstance(payload, (bytes, bytearray, memoryview)):
                return binary.encode_push(join_ref, topic, event, bytes(payload))
            return head + encode_json(as_object(payload)) + "]"

        return encode

    def encode_broadcast(self, topic: str, event: str, payload: OutPayload) -> Frame:
        """Encode ``[null,null,topic,event,<p>]`` (binary kind 2 for bytes)."""
        if isinstance(payload, (bytes, bytearray, memoryview)):
            return binary.encode_broadcast(topic, event, bytes(payload))
        return encode_json([None, None, topic, event, as_object(payload)])


V1 = V1Serializer()
"""The shared V1 serializer (stateless)."""

V2 = V2Serializer()
"""The shared V2 serializer (stateless)."""
