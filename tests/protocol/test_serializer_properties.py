"""Property tests of the serializers: round trips, and garbage in never raises anything unexpected."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from maxsdk.errors import RemoteProtocolError
from maxsdk.protocol.phoenix.message import PHX_CLOSE, PHX_ERROR, PHX_REPLY, Message
from maxsdk.protocol.phoenix.serializer import V1JSONSerializer, V2JSONSerializer, encode_binary_push

V2 = V2JSONSerializer()
V1 = V1JSONSerializer()

# Same examples on every run (no example database, fixed seed): a failure reproduces as is.
deterministic = settings(derandomize=True, database=None, deadline=None)

# Text that can travel in a UTF-8 text frame (no lone surrogates).
text = st.text(st.characters(codec="utf-8"), max_size=30)
refs = st.none() | st.integers(min_value=0, max_value=10**12).map(str) | text
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)
events = text.filter(lambda e: e != PHX_REPLY)


def _reply_payloads() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"status": text, "response": json_values})


@st.composite
def messages(draw: st.DrawFn) -> Message:
    if draw(st.booleans()):
        return Message(draw(refs), draw(refs), draw(text), PHX_REPLY, draw(_reply_payloads()))
    return Message(draw(refs), draw(refs), draw(text), draw(events), draw(json_values))


# -- round trips ---------------------------------------------------------------------------------


@deterministic
@given(messages())
def test_v2_text_round_trip(message: Message) -> None:
    frame = V2.encode_message(message)
    assert isinstance(frame, str)
    frame.encode("utf-8")  # sendable as a text frame
    assert V2.decode_text(frame) == message
    assert V2.decode_text(frame.encode("utf-8")) == message
    assert json.loads(frame) == list(message)  # a plain 5-element JSON array


@deterministic
@given(messages())
def test_v1_round_trip(message: Message) -> None:
    frame = V1.encode_message(message)
    assert isinstance(frame, str)
    decoded = V1.decode_text(frame)
    join_ref = message.join_ref
    if join_ref is None and message.event in (PHX_CLOSE, PHX_ERROR):
        join_ref = message.ref  # the V1 quirk: the dead join's ref travels in `ref`
    assert decoded == message._replace(join_ref=join_ref)


short = st.text(st.characters(codec="utf-8"), max_size=85)  # at most 255 UTF-8 bytes


def _parse_client_push(frame: bytes) -> tuple[str, str, str, str, bytes]:
    """Our own reading of a client kind-0 frame (reference §2.4), independent of the codec."""
    assert frame[0] == 0
    lengths = frame[1:5]
    pos, fields = 5, []
    for size in lengths:
        fields.append(frame[pos : pos + size].decode("utf-8"))
        pos += size
    return fields[0], fields[1], fields[2], fields[3], frame[pos:]


@deterministic
@given(short, short, short, short, st.binary(max_size=64))
def test_binary_client_push_round_trip(join_ref: str, ref: str, topic: str, event: str, payload: bytes) -> None:
    frame = V2.encode(join_ref, ref, topic, event, payload)
    assert isinstance(frame, bytes)
    assert _parse_client_push(frame) == (join_ref, ref, topic, event, payload)
    assert len(frame) == 5 + sum(len(s.encode()) for s in (join_ref, ref, topic, event)) + len(payload)


@deterministic
@given(st.integers(0, 2), short, short, short, short, st.binary(max_size=64))
def test_binary_server_frames_decode(kind: int, join_ref: str, ref: str, topic: str, event: str, body: bytes) -> None:
    j, r, t, e = (s.encode() for s in (join_ref, ref, topic, event))
    if kind == 0:
        frame = bytes([0, len(j), len(t), len(e)]) + j + t + e + body
        expected = Message(join_ref or None, None, topic, event, body)
    elif kind == 1:
        frame = bytes([1, len(j), len(r), len(t), len(e)]) + j + r + t + e + body
        expected = Message(join_ref or None, ref or None, topic, PHX_REPLY, {"status": event, "response": body})
    else:
        frame = bytes([2, len(t), len(e)]) + t + e + body
        expected = Message(None, None, topic, event, body)
    assert V2.decode_binary(frame) == expected


@deterministic
@given(short, short, short, short, st.binary(max_size=16))
def test_binary_push_bytes_are_not_a_valid_server_frame_in_disguise(
    join_ref: str, ref: str, topic: str, event: str, payload: bytes
) -> None:
    # A client kind-0 frame fed to the server-side decoder must decode or be refused, never crash.
    frame = encode_binary_push(join_ref, ref, topic, event, payload)
    try:
        assert isinstance(V2.decode_binary(frame), Message)
    except RemoteProtocolError:
        pass


# -- garbage in ---------------------------------------------------------------------------------


def _decodes_or_refuses(decode: Any, data: Any) -> None:
    try:
        message = decode(data)
    except RemoteProtocolError:
        return
    assert isinstance(message, Message)
    assert message.join_ref is None or isinstance(message.join_ref, str)
    assert message.ref is None or isinstance(message.ref, str)
    assert isinstance(message.topic, str) and isinstance(message.event, str)
    if message.event == PHX_REPLY:
        assert isinstance(message.payload, dict) and isinstance(message.payload["status"], str)
        assert "response" in message.payload


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=7) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=30,
)


@st.composite
def near_miss_v2(draw: st.DrawFn) -> str:
    """Arrays that look like V2 frames: wrong arity, wrong types, odd replies."""
    size = draw(st.integers(0, 7))
    slots = [
        st.none() | text | st.integers(),
        st.none() | text | st.integers() | st.floats(),
        text | st.none() | st.lists(text, max_size=2),
        st.sampled_from([PHX_REPLY, PHX_CLOSE, PHX_ERROR, "e"]) | st.none() | st.integers(),
        any_json | st.fixed_dictionaries({}, optional={"status": any_json, "response": any_json}),
    ]
    items = [draw(slots[i] if i < len(slots) else any_json) for i in range(size)]
    return json.dumps(items)


@st.composite
def near_miss_v1(draw: st.DrawFn) -> str:
    keys: dict[str, st.SearchStrategy[Any]] = {
        "topic": text | st.integers(),
        "event": st.sampled_from([PHX_REPLY, PHX_CLOSE, "e"]) | st.none(),
        "payload": any_json,
        "ref": st.none() | text | st.integers(),
        "join_ref": st.one_of(st.none(), text, st.floats()),
    }
    return json.dumps(draw(st.fixed_dictionaries({}, optional=keys)))


def _nested(depth: int, opener: str, closer: str) -> str:
    return opener * depth + closer * depth


@settings(deterministic, max_examples=300)
@given(st.text())
@example("[" * 100_000)
@example(_nested(100_000, "[", "]"))
@example(_nested(100_000, '{"a":', "}"))
@example('[null,null,"t","e",' + _nested(5_000, "[", "]") + "]")
@example('[null,"1","t","e",{},' + "1" * 5_000 + "]")  # int too long to convert
@example('[null,null,"\\ud800","e",{}]')  # an escaped lone surrogate is valid JSON
@example("\ufeff[]")
def test_arbitrary_text_decodes_or_raises_remote_protocol_error(data: str) -> None:
    _decodes_or_refuses(V2.decode_text, data)
    _decodes_or_refuses(V1.decode_text, data)


@settings(deterministic, max_examples=300)
@given(st.binary())
@example(b"\xff\xfe[\x00]\x00")  # UTF-16 with a BOM
@example(b'[null,null,"t","\xc3\x28",{}]')  # invalid UTF-8
@example(b"\xed\xa0\x80")  # an encoded surrogate: invalid UTF-8
@example(b"\x00\x00\x00[")
def test_arbitrary_bytes_decode_or_raise_remote_protocol_error(data: bytes) -> None:
    _decodes_or_refuses(V2.decode_text, data)
    _decodes_or_refuses(V1.decode_text, data)
    _decodes_or_refuses(V2.decode_binary, data)
    _decodes_or_refuses(V1.decode_binary, data)


@settings(deterministic, max_examples=300)
@given(near_miss_v2())
def test_near_miss_v2_arrays_decode_or_raise_remote_protocol_error(data: str) -> None:
    _decodes_or_refuses(V2.decode_text, data)


@settings(deterministic, max_examples=300)
@given(near_miss_v1())
def test_near_miss_v1_objects_decode_or_raise_remote_protocol_error(data: str) -> None:
    _decodes_or_refuses(V1.decode_text, data)


@settings(deterministic, max_examples=300)
@given(st.integers(0, 3), st.lists(st.integers(0, 255), max_size=5), st.binary(max_size=40))
def test_binary_headers_with_arbitrary_lengths_decode_or_raise(kind: int, lengths: list[int], rest: bytes) -> None:
    _decodes_or_refuses(V2.decode_binary, bytes([kind, *lengths]) + rest)
