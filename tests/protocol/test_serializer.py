"""Serializer details beyond the recordings: binary layouts (reference §2.4), limits, V1 quirks, errors."""

from __future__ import annotations

import json

import pytest

from maxsdk.errors import LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.phoenix.message import Message
from maxsdk.protocol.phoenix.serializer import (
    V1JSONSerializer,
    V2JSONSerializer,
    decode_binary_frame,
    encode_binary_push,
    serializer_for,
)

V2 = V2JSONSerializer()
V1 = V1JSONSerializer()

TOPIC = "sala:café☃"  # 10 characters, 13 UTF-8 bytes
EVENT = "ñ"  # 1 character, 2 UTF-8 bytes


def u8(text: str) -> bytes:
    return text.encode("utf-8")


# -- binary kind 0, client -> server ------------------------------------------------------


def test_checklist_07_kind0_client_push_matches_the_reference_example() -> None:
    # Reference §2.4: join_ref "1", ref "2", topic "t", event "e", payload AA BB.
    assert encode_binary_push("1", "2", "t", "e", b"\xaa\xbb") == bytes.fromhex("00 01 01 01 01 31 32 74 65 aa bb")


def test_checklist_07_kind0_client_push_uses_utf8_byte_lengths() -> None:
    frame = encode_binary_push("12", "345", TOPIC, EVENT, b"\x00\xff")
    assert frame[:5] == bytes([0, 2, 3, 13, 2])
    assert frame[5:] == b"12" + b"345" + u8(TOPIC) + u8(EVENT) + b"\x00\xff"


def test_kind0_client_push_null_refs_are_empty_strings() -> None:
    assert encode_binary_push(None, None, "t", "e", b"") == bytes([0, 0, 0, 1, 1]) + b"te"


def test_v2_encode_frames_bytes_payload_as_binary_and_text_payload_as_json() -> None:
    assert V2.encode("1", "2", "t", "e", b"\x01") == bytes.fromhex("00 01 01 01 01 31 32 74 65 01")
    assert V2.encode(None, "2", "t", "e", '{"a":1}') == '[null,"2","t","e",{"a":1}]'


@pytest.mark.parametrize("name", ["join_ref", "ref", "topic", "event"])
def test_binary_fields_up_to_255_utf8_bytes_are_accepted(name: str) -> None:
    fields = {"join_ref": "1", "ref": "2", "topic": "t", "event": "e", name: "☃" * 85}  # 255 bytes
    frame = encode_binary_push(fields["join_ref"], fields["ref"], fields["topic"], fields["event"], b"")
    assert 255 in frame[1:5]


@pytest.mark.parametrize("name", ["join_ref", "ref", "topic", "event"])
@pytest.mark.parametrize("value", ["x" * 256, "é" * 128, "☃" * 86], ids=["ascii256", "2byte128", "3byte86"])
def test_checklist_08_binary_fields_over_255_utf8_bytes_raise_local_protocol_error(name: str, value: str) -> None:
    fields = {"join_ref": "1", "ref": "2", "topic": "t", "event": "e", name: value}
    assert len(value) <= 256 and len(u8(value)) > 255  # 128 characters can already be too long
    with pytest.raises(LocalProtocolError, match=name):
        encode_binary_push(fields["join_ref"], fields["ref"], fields["topic"], fields["event"], b"")
    with pytest.raises(LocalProtocolError):
        V2.encode(fields["join_ref"], fields["ref"], fields["topic"], fields["event"], b"")


def test_checklist_08_check_binary_fields_counts_utf8_bytes() -> None:
    V2.check_binary_fields("☃" * 85, "é" * 127)
    with pytest.raises(LocalProtocolError, match="topic"):
        V2.check_binary_fields("☃" * 86, "e")
    with pytest.raises(LocalProtocolError, match="event"):
        V2.check_binary_fields("t", "é" * 128)


# -- binary kinds 0/1/2, server -> client ---------------------------------------------------


def server_push(join_ref: str, topic: str, event: str, payload: bytes) -> bytes:
    j, t, e = u8(join_ref), u8(topic), u8(event)
    return bytes([0, len(j), len(t), len(e)]) + j + t + e + payload


def server_reply(join_ref: str, ref: str, topic: str, status: str, payload: bytes) -> bytes:
    j, r, t, s = u8(join_ref), u8(ref), u8(topic), u8(status)
    return bytes([1, len(j), len(r), len(t), len(s)]) + j + r + t + s + payload


def server_broadcast(topic: str, event: str, payload: bytes) -> bytes:
    t, e = u8(topic), u8(event)
    return bytes([2, len(t), len(e)]) + t + e + payload


def test_checklist_07_kind0_server_push_has_no_ref_and_a_four_byte_header() -> None:
    frame = server_push("17", TOPIC, EVENT, b"\x01\x02")
    assert decode_binary_frame(frame) == Message("17", None, TOPIC, EVENT, b"\x01\x02")


def test_checklist_07_kind1_reply_decodes_to_phx_reply_with_status_and_bytes_response() -> None:
    frame = server_reply("17", "24", TOPIC, "ok", b"\x00\xfa")
    assert V2.decode_binary(frame) == Message("17", "24", TOPIC, "phx_reply", {"status": "ok", "response": b"\x00\xfa"})


def test_kind1_reply_status_can_be_custom_and_non_ascii() -> None:
    message = V2.decode_binary(server_reply("1", "2", "t", "größer", b""))
    assert message.payload == {"status": "größer", "response": b""}


def test_checklist_07_kind2_broadcast_has_null_refs() -> None:
    assert V2.decode_binary(server_broadcast(TOPIC, EVENT, b"\xff")) == Message(None, None, TOPIC, EVENT, b"\xff")


def test_empty_binary_refs_decode_as_null() -> None:
    assert V2.decode_binary(server_push("", "t", "e", b"")).join_ref is None
    reply = V2.decode_binary(server_reply("", "", "t", "ok", b""))
    assert reply.join_ref is None and reply.ref is None


def test_binary_payload_is_everything_after_the_header_even_if_it_looks_like_a_header() -> None:
    payload = server_broadcast("x", "y", b"zz")
    assert V2.decode_binary(server_broadcast("t", "e", payload)).payload == payload


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x03\x00\x00",
        b"\xff",
        b"\x00\x01\x01",  # kind 0 header is 4 bytes
        b"\x01\x00\x00\x00",  # kind 1 header is 5 bytes
        b"\x02\x01",  # kind 2 header is 3 bytes
        b"\x02\x05\x01abc",  # topic overruns the frame
        b"\x01\x00\x00\x01\x03t" + b"ok",  # status overruns the frame
        b"\x02\x01\x01\xffe",  # topic is not UTF-8
        b"\x00\x02\x01\x01\xc3\x28te",  # join_ref is not UTF-8
    ],
)
def test_malformed_binary_frames_raise_remote_protocol_error(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        V2.decode_binary(frame)


def test_v1_has_no_binary_frames() -> None:
    with pytest.raises(RemoteProtocolError):
        V1.decode_binary(server_broadcast("t", "e", b""))
    with pytest.raises(LocalProtocolError):
        V1.encode_payload(b"\x00")
    with pytest.raises(LocalProtocolError):
        V1.encode("1", "2", "t", "e", b"\x00")
    assert V1.supports_binary is False and V2.supports_binary is True


def test_encode_payload_accepts_bytes_like_values_on_v2() -> None:
    assert V2.encode_payload(bytearray(b"ab")) == b"ab"
    assert V2.encode_payload(memoryview(b"ab")) == b"ab"


# -- V2 text --------------------------------------------------------------------------------


def test_checklist_06_v2_text_frames_parse_null_join_ref_and_ref() -> None:
    assert V2.decode_text('[null,null,"room:1","new_msg",{"body":"hi"}]') == Message(
        None, None, "room:1", "new_msg", {"body": "hi"}
    )
    assert V2.decode_text('["3",null,"room:1","presence_state",{}]').ref is None


def test_v2_extra_trailing_elements_are_ignored() -> None:
    # Reference §2.3: the server ignores extra elements; we are as lenient.
    assert V2.decode_text('[null,null,"t","e",{},"extra",1]') == Message(None, None, "t", "e", {})


def test_v2_reply_without_response_gets_an_empty_one() -> None:
    assert V2.decode_text('["1","2","t","phx_reply",{"status":"ok"}]').payload == {"status": "ok", "response": {}}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "this is not json",
        "{}",
        "[]",
        '[null,null,"t","e"]',  # four elements
        '"[null,null,\\"t\\",\\"e\\",{}]"',  # a string, not an array
        '[1,null,"t","e",{}]',  # numeric join_ref
        '[null,2,"t","e",{}]',  # numeric ref
        '[null,null,3,"e",{}]',
        '[null,null,"t",null,{}]',
        '[null,null,["t"],"e",{}]',
        '["1","2","t","phx_reply",{}]',  # reply without status
        '["1","2","t","phx_reply",{"status":1}]',
        '["1","2","t","phx_reply",[]]',
        "[" * 100_000 + "]" * 100_000,
        '[null,null,"t","e",' + "[" * 50_000 + "]" * 50_000 + "]",
    ],
    ids=lambda t: t[:30],
)
def test_v2_malformed_text_raises_remote_protocol_error(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        V2.decode_text(text)
    assert caught.value.frame is None or len(caught.value.frame) < 200  # an excerpt, not the frame


def test_decode_text_rejects_invalid_utf8_bytes() -> None:
    with pytest.raises(RemoteProtocolError):
        V2.decode_text(b'[null,null,"t","\xff",{}]')
    with pytest.raises(RemoteProtocolError):
        V1.decode_text(b'{"topic":"\xc3\x28","event":"e","payload":{},"ref":null}')


def test_v2_encode_escapes_strings_and_keeps_non_ascii() -> None:
    frame = V2.encode('a"b', "\\", "t\n", "é", "{}")
    assert frame == '["a\\"b","\\\\","t\\n","é",{}]'
    assert json.loads(frame) == ['a"b', "\\", "t\n", "é", {}]


# -- V1 ---------------------------------------------------------------------------------------


def test_v1_encodes_objects_and_omits_a_null_join_ref() -> None:
    assert V1.encode("1", "1", "room:1", "phx_join", "{}") == (
        '{"topic":"room:1","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}'
    )
    assert V1.encode(None, "2", "phoenix", "heartbeat", "{}") == (
        '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}'
    )
    assert V1.encode(None, None, "t", "e", "[]") == '{"topic":"t","event":"e","payload":[],"ref":null}'


def test_v1_server_messages_have_no_join_ref() -> None:
    message = V1.decode_text('{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"t"}')
    assert message == Message(None, "1", "t", "phx_reply", {"response": {}, "status": "ok"})
    assert V1.decode_text('{"event":"e","payload":{},"topic":"t"}').ref is None  # ref may be absent


@pytest.mark.parametrize("event", ["phx_close", "phx_error"])
def test_v1_close_and_error_ref_is_copied_into_join_ref(event: str) -> None:
    message = V1.decode_text(f'{{"event":"{event}","payload":{{}},"ref":"11","topic":"room:1"}}')
    assert message.join_ref == "11" and message.ref == "11"


def test_v1_other_events_do_not_copy_ref_and_explicit_join_ref_wins() -> None:
    assert V1.decode_text('{"event":"e","payload":{},"ref":"5","topic":"t"}').join_ref is None
    explicit = V1.decode_text('{"event":"phx_close","payload":{},"ref":"5","join_ref":"4","topic":"t"}')
    assert explicit.join_ref == "4"


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "null",
        '{"event":"e","payload":{}}',  # no topic
        '{"topic":"t","payload":{}}',  # no event
        '{"topic":"t","event":"e"}',  # no payload
        '{"topic":"t","event":"e","payload":{},"ref":1}',
        '{"topic":"t","event":["e"],"payload":{},"ref":null}',
        '{"topic":"t","event":"phx_close","payload":{},"ref":7}',  # the copied ref must be a string too
        '{"topic":"t","event":"phx_reply","payload":{"response":{}},"ref":"1"}',
    ],
)
def test_v1_malformed_text_raises_remote_protocol_error(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        V1.decode_text(text)


# -- payload encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [float("nan"), float("inf"), {"a": object()}, {1j: 1}, {"a": {1, 2}}])
def test_unencodable_payloads_raise_local_protocol_error(payload: object) -> None:
    with pytest.raises(LocalProtocolError):
        V2.encode_payload(payload)


def test_self_referencing_payload_raises_local_protocol_error() -> None:
    payload: list[object] = []
    payload.append(payload)
    with pytest.raises(LocalProtocolError):
        V2.encode_payload(payload)


def test_encode_payload_is_compact_json() -> None:
    assert V2.encode_payload({"a": [1, 2.5, None, True], "b": "é"}) == '{"a":[1,2.5,null,true],"b":"é"}'


def test_payload_with_a_lone_surrogate_raises_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError):
        V2.encode_payload({"a": "\ud800"})


def test_binary_field_with_a_lone_surrogate_raises_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError):
        V2.check_binary_fields("t\ud800", "e")


def test_serializer_for_known_and_unknown_versions() -> None:
    assert isinstance(serializer_for("2.0.0"), V2JSONSerializer)
    assert isinstance(serializer_for("1.0.0"), V1JSONSerializer)
    with pytest.raises(ValueError, match=r"3\.0\.0"):
        serializer_for("3.0.0")
    assert repr(V2) == "V2JSONSerializer(vsn='2.0.0')"
