"""The server's own codec: V1/V2 serializers, binary kinds, vsn negotiation, query params."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maxsdk.server import binary
from maxsdk.server.message import Message
from maxsdk.server.negotiation import parse_version, select_serializer
from maxsdk.server.query import decode_query
from maxsdk.server.serializer import V1, V2, MalformedFrameError

short_text = st.text(max_size=40)
field_text = st.text(max_size=60).filter(lambda s: len(s.encode()) <= 255)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


# -- V2 -----------------------------------------------------------------------------------


def test_v2_decodes_the_recorded_join() -> None:
    assert V2.decode('["1","1","room:lobby","phx_join",{}]') == Message("1", "1", "room:lobby", "phx_join", {})


def test_v2_ignores_extra_elements_and_rejects_short_arrays() -> None:
    assert V2.decode('[null,"2","phoenix","heartbeat",{},"extra"]').ref == "2"
    for bad in ('["1","1","t","e"]', '{"topic":"t"}', "this is not json", "[1,2,3,4,NaN]"):
        with pytest.raises(MalformedFrameError):
            V2.decode(bad)


def test_v2_rejects_non_string_topics() -> None:
    with pytest.raises(MalformedFrameError):
        V2.decode('["1","1",5,"phx_join",{}]')
    with pytest.raises(MalformedFrameError):
        V2.decode('[["x"],"1","t","phx_join",{}]')


def test_v2_encodes_like_jason() -> None:
    # Sorted keys, compact separators, raw UTF-8 (the recorded echo reply).
    frame = V2.encode_reply("1", "3", "room:lobby", "ok", {"uni": "héllo ☃", "n": 1, "hello": "world"})
    assert frame == (
        '["1","3","room:lobby","phx_reply",{"response":{"hello":"world","n":1,"uni":"héllo ☃"},"status":"ok"}]'
    )
    assert V2.encode_broadcast("room:lobby", "shout", {"msg": "hi"}) == '[null,null,"room:lobby","shout",{"msg":"hi"}]'
    assert V2.encode_push("17", "room:lobby", "flood_msg", {"i": 1, "data": "xxxxx"}) == (
        '["17",null,"room:lobby","flood_msg",{"data":"xxxxx","i":1}]'
    )
    assert V2.encode_message("16", "16", "room:lobby", "phx_close", {}) == '["16","16","room:lobby","phx_close",{}]'


def test_v2_binary_frames_match_the_recording() -> None:
    # tests/golden/transcript_v2.txt, sections binary_echo, push_binary and shout.
    frame = bytes.fromhex("0002020a0b31373234726f6f6d3a6c6f62627962696e6172795f6563686f000102faff")
    assert V2.decode(frame) == Message("17", "24", "room:lobby", "binary_echo", b"\x00\x01\x02\xfa\xff")
    assert V2.encode_reply("17", "24", "room:lobby", "ok", b"\x00\x01\x02\xfa\xff") == bytes.fromhex(
        "0102020a0231373234726f6f6d3a6c6f6262796f6b000102faff"
    )
    assert V2.encode_push("17", "room:lobby", "bin", b"\x01\x02\x03\xff") == bytes.fromhex(
        "00020a033137726f6f6d3a6c6f62627962696e010203ff"
    )
    assert V2.encode_broadcast("room:lobby", "shout", b"\x00bin\xff") == bytes.fromhex(
        "020a05726f6f6d3a6c6f62627973686f75740062696eff"
    )


def test_binary_lengths_are_utf8_bytes_and_capped() -> None:
    frame = binary.encode_push("1", "sala:café", "é", b"")
    assert frame[:4] == bytes([0, 1, len("sala:café".encode()), 2])
    with pytest.raises(ValueError):
        binary.encode_broadcast("t" * 256, "e", b"")
    assert binary.encode_push(None, "t", "e", b"x")[1] == 0


def test_binary_decode_rejects_other_kinds_and_truncation() -> None:
    for bad in (b"\x01\x00\x00\x00\x00", b"\x00\x05\x00\x00\x00ab", b"\x00\x00", b"\x00\x01\x00\x00\x00\xff"):
        with pytest.raises(MalformedFrameError):
            V2.decode(bad)


@given(field_text, field_text, field_text, field_text, st.binary(max_size=64))
def test_binary_push_roundtrip(join_ref: str, ref: str, topic: str, event: str, payload: bytes) -> None:
    head = bytes([0, *(len(x.encode()) for x in (join_ref, ref, topic, event))])
    frame = head + b"".join(x.encode() for x in (join_ref, ref, topic, event)) + payload
    assert V2.decode(frame) == Message(join_ref, ref, topic, event, payload)


@given(field_text, field_text, field_text, field_text, st.binary(max_size=64))
def test_binary_reply_layout(join_ref: str, ref: str, topic: str, status: str, payload: bytes) -> None:
    frame = binary.encode_reply(join_ref, ref, topic, status, payload)
    assert isinstance(frame, bytes) and frame[0] == 1
    sizes, offset, fields = frame[1:5], 5, []
    for size in sizes:
        fields.append(frame[offset : offset + size].decode())
        offset += size
    assert fields == [join_ref, ref, topic, status]
    assert frame[offset:] == payload


@given(st.none() | short_text, st.none() | short_text, short_text, short_text, st.dictionaries(short_text, json_values))
def test_v2_text_roundtrip(
    join_ref: str | None, ref: str | None, topic: str, event: str, payload: dict[str, Any]
) -> None:
    text = json.dumps([join_ref, ref, topic, event, payload])
    assert V2.decode(text) == Message(join_ref, ref, topic, event, payload)
    pushed = json.loads(V2.encode_push(join_ref, topic, event, payload))
    assert pushed == [join_ref, None, topic, event, payload]


# -- V1 -----------------------------------------------------------------------------------


def test_v1_decodes_objects_with_optional_join_ref() -> None:
    message = V1.decode('{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}')
    assert message == Message(None, "1", "room:lobby", "phx_join", {})
    with pytest.raises(MalformedFrameError):
        V1.decode('{"topic":"room:lobby","event":"phx_join","payload":{}}')
    with pytest.raises(MalformedFrameError):
        V1.decode(b"\x00\x01\x01\x01\x01abcd")


def test_v1_never_sends_join_ref() -> None:
    assert V1.encode_reply("1", "1", "room:lobby", "ok", {"joined": "room:lobby"}) == (
        '{"event":"phx_reply","payload":{"response":{"joined":"room:lobby"},"status":"ok"},"ref":"1","topic":"room:lobby"}'
    )
    assert V1.encode_message("1", "1", "room:lobby", "phx_error", {}) == (
        '{"event":"phx_error","payload":{},"ref":"1","topic":"room:lobby"}'
    )
    assert V1.encode_push("17", "room:lobby", "flood_msg", {"i": 1}) == (
        '{"event":"flood_msg","payload":{"i":1},"ref":null,"topic":"room:lobby"}'
    )


def test_v1_refuses_binary_payloads() -> None:
    with pytest.raises(ValueError):
        V1.encode_push("1", "t", "bin", b"\x01")
    with pytest.raises(ValueError):
        V1.encode_reply("1", "1", "t", "ok", b"\x01")


def test_push_payloads_must_be_objects() -> None:
    with pytest.raises(TypeError):
        V2.encode_push("1", "t", "e", [1, 2])  # type: ignore[arg-type]


# -- negotiation and params -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("vsn", "expected"),
    [
        (None, "1.0.0"),
        ("1.0.0", "1.0.0"),
        ("1.0.7", "1.0.0"),
        ("2.0.0", "2.0.0"),
        ("2.0.3", "2.0.0"),
        ("2.1.0", None),
        ("3.0.0", None),
        ("123.1.1", None),
        ("2.0.0-rc.1", None),
        ("2.0", None),
        ("", None),
        ("two", None),
    ],
)
def test_vsn_negotiation(vsn: str | None, expected: str | None) -> None:
    serializer = select_serializer(vsn)
    assert (serializer.vsn if serializer else None) == expected


def test_parse_version() -> None:
    assert parse_version("2.0.0") == (2, 0, 0, False)
    assert parse_version("01.0.0") is None


def test_query_params_decode_like_plug() -> None:
    assert decode_query("token=abc&vsn=2.0.0") == {"token": "abc", "vsn": "2.0.0"}
    assert decode_query("user[id]=1&user[name]=a%20b") == {"user": {"id": "1", "name": "a b"}}
    assert decode_query("a[]=x&a[]=y&b[0]=p") == {"a": ["x", "y"], "b": {"0": "p"}}
    assert decode_query("empty=&x=1&x=2") == {"empty": "", "x": "2"}


def test_lone_surrogates_are_malformed_but_pairs_are_fine() -> None:
    assert V2.decode(r'[null,"1","t","e",{"a":"\ud83d\ude00"}]').payload == {"a": "😀"}
    with pytest.raises(MalformedFrameError):
        V2.decode(r'[null,"1","t","e",{"a":"\ud800x"}]')
    with pytest.raises(MalformedFrameError):
        V1.decode(r'{"topic":"t","event":"e","payload":{"\udfff":1},"ref":null}')


def test_log_redaction() -> None:
    from maxsdk.server.redact import redact

    assert redact("GET /socket/websocket?vsn=2.0.0&token=secret&user_id=1") == (
        "GET /socket/websocket?vsn=2.0.0&token=[REDACTED]&user_id=1"
    )
    assert redact('["1","1","room:private","phx_join",{"password":"pw","x":1}]') == (
        '["1","1","room:private","phx_join",{"password":"[REDACTED]","x":1}]'
    )
    assert redact("phoenix, base64url.bearer.phx.czNjcjN0") == "phoenix, base64url.bearer.phx.[REDACTED]"
