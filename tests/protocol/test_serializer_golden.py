"""Golden frames: our codecs against frames recorded from a real Phoenix 1.7 server.

The expected values are built from the recording itself (``json.loads`` of the
text, the recorder's field annotation of binary frames), never from our own
decoder, so that a misunderstanding cannot be shared by both sides.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from maxsdk.errors import LocalProtocolError
from maxsdk.protocol.phoenix.message import PHX_CLOSE, PHX_ERROR, PHX_REPLY, Message
from maxsdk.protocol.phoenix.serializer import V1JSONSerializer, serializer_for

from .golden import V1, V2, Frame, client_fields, unescape_non_ascii

ALL = V2.frames + V1.frames
SERVER_TEXT = [f for f in ALL if f.direction == "server" and f.kind == "text"]
CLIENT_TEXT = [f for f in ALL if f.direction == "client" and f.kind == "text" and f.data[:1] in ("[", "{")]
SERVER_BINARY = [f for f in ALL if f.direction == "server" and f.kind == "binary"]
CLIENT_BINARY = [f for f in ALL if f.direction == "client" and f.kind == "binary"]


def expected_server_text(frame: Frame) -> Message:
    """The message a recorded server text frame stands for, read with ``json`` only."""
    value = json.loads(frame.data)
    if frame.vsn == "2.0.0":
        join_ref, ref, topic, event, payload = value
    else:
        assert "join_ref" not in value, "a V1 server never sends join_ref (reference §2.2)"
        ref, topic, event, payload = value["ref"], value["topic"], value["event"], value["payload"]
        # phx_close/phx_error carry the dead join's ref in `ref`: copied into join_ref.
        join_ref = ref if event in (PHX_CLOSE, PHX_ERROR) else None
    return Message(join_ref, ref, topic, event, payload)


def test_transcripts_hold_the_expected_frames() -> None:
    assert len(SERVER_TEXT) > 80
    assert len(CLIENT_TEXT) > 55
    assert len(SERVER_BINARY) == 4
    assert len(CLIENT_BINARY) == 4
    assert {f.vsn for f in V2.frames} == {"2.0.0", "1.0.0"}  # the "no vsn" connection speaks V1
    assert {f.vsn for f in V1.frames} == {"1.0.0"}


@pytest.mark.parametrize("frame", SERVER_TEXT, ids=repr)
def test_server_text_frame_decodes_to_the_recorded_message(frame: Frame) -> None:
    serializer = serializer_for(frame.vsn)
    assert isinstance(frame.data, str)
    assert serializer.decode_text(frame.data) == expected_server_text(frame)
    assert serializer.decode_text(frame.data.encode()) == expected_server_text(frame)  # bytes are UTF-8


@pytest.mark.parametrize("frame", SERVER_BINARY, ids=repr)
def test_server_binary_frame_decodes_per_its_annotation(frame: Frame) -> None:
    note = frame.note
    assert note is not None and isinstance(frame.data, bytes)
    f = note.fields
    expected: Message
    if note.kind == 0:
        expected = Message(f["join_ref"] or None, None, f["topic"], f["event"], note.payload)
    elif note.kind == 1:
        reply = {"status": f["status"], "response": note.payload}
        expected = Message(f["join_ref"] or None, f["ref"] or None, f["topic"], PHX_REPLY, reply)
    else:
        expected = Message(None, None, f["topic"], f["event"], note.payload)
    assert serializer_for("2.0.0").decode_binary(frame.data) == expected


@pytest.mark.parametrize("frame", CLIENT_TEXT, ids=repr)
def test_client_text_frame_is_reproduced_by_our_encoder(frame: Frame) -> None:
    serializer = serializer_for(frame.vsn)
    assert isinstance(frame.data, str)
    message = client_fields(frame)
    encoded = serializer.encode_message(message)
    assert isinstance(encoded, str)
    assert encoded == unescape_non_ascii(frame.data)
    # Framing alone (payload already encoded, as a buffered push is) is byte-exact too.
    payload_text = serializer.encode_payload(message.payload)
    assert serializer.encode(*message[:4], payload_text) == encoded
    if "\\u" not in frame.data:
        assert encoded.encode() == frame.data.encode()


def test_non_ascii_payload_differs_from_the_recording_only_by_escaping() -> None:
    (frame,) = [f for f in V2.client("text") if isinstance(f.data, str) and "\\u2603" in f.data]
    encoded = serializer_for("2.0.0").encode_message(client_fields(frame))
    assert isinstance(encoded, str) and "héllo ☃" in encoded
    assert json.loads(encoded) == json.loads(frame.data)


@pytest.mark.parametrize("frame", CLIENT_BINARY, ids=repr)
def test_client_binary_push_is_reproduced_byte_for_byte(frame: Frame) -> None:
    note = frame.note
    assert note is not None and note.kind == 0
    f = note.fields
    message = Message(f["join_ref"], f["ref"], f["topic"], f["event"], note.payload)
    assert serializer_for("2.0.0").encode_message(message) == frame.data


def test_v1_refuses_the_binary_push_the_v1_server_crashed_on() -> None:
    (frame,) = V1.client("binary")
    assert frame.note is not None
    f = frame.note.fields
    with pytest.raises(LocalProtocolError):
        V1JSONSerializer().encode_message(Message(f["join_ref"], f["ref"], f["topic"], f["event"], frame.note.payload))


def _server_message(transcript_frames: list[Frame], **match: Any) -> Message:
    for frame in transcript_frames:
        if frame.direction != "server" or frame.kind != "text":
            continue
        message = serializer_for(frame.vsn).decode_text(frame.data)
        if all(getattr(message, k) == v for k, v in match.items()):
            return message
    raise LookupError(match)


@pytest.mark.parametrize("transcript", [V2, V1], ids=["v2", "v1"])
def test_recorded_facts_about_refs(transcript: Any) -> None:
    frames = transcript.frames
    unmatched = _server_message(frames, topic="nope:topic")
    assert unmatched.join_ref is None and unmatched.ref == "14"
    assert unmatched.payload == {"status": "error", "response": {"reason": "unmatched topic"}}
    crash = _server_message(frames, event=PHX_ERROR, topic="room:lobby")
    assert crash.join_ref == crash.ref == "1"
    stale_close = _server_message(frames, event=PHX_CLOSE, topic="room:lobby")
    assert stale_close.join_ref == stale_close.ref == "16"
    broadcast = _server_message(frames, event="shout")
    assert broadcast.join_ref is None and broadcast.ref is None
