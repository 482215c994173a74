"""PhoenixProtocol: the Phoenix wire behind the handler interface, checked on the golden frames.

Expectations are read from the recording with ``json`` (and the recorder's
annotation of binary frames), never from our decoder.
"""

from __future__ import annotations

import json

import pytest

from maxsdk.protocol.handler import FrameKind, ProtocolHandler, SubscribeResult, TopicRef
from maxsdk.protocol.phoenix.handler import PhoenixProtocol

from .golden import V2, Frame, client_fields

pytestmark = pytest.mark.timeout(30)

SERVER_TEXT_V2 = [f for f in V2.frames if f.direction == "server" and f.kind == "text" and f.vsn == "2.0.0"]
SERVER_BINARY = [f for f in V2.frames if f.direction == "server" and f.kind == "binary"]
CLIENT_TEXT_V2 = [
    f
    for f in V2.frames
    if (
        f.direction == "client"
        and f.kind == "text"
        and f.vsn == "2.0.0"
        and f.data[:1] == "["
        and json.loads(f.data)[0] is not None
    )
    or (f.direction == "client" and "heartbeat" in str(f.data))
]
PROTOCOL = PhoenixProtocol()


def expected_kind(topic: str, event: str) -> FrameKind:
    """The classification the interface defines for a Phoenix message (independent of the code)."""
    if event == "phx_reply":
        return FrameKind.PONG if topic == "phoenix" else FrameKind.REPLY
    if event in ("phx_close", "phx_error"):
        return FrameKind.CONTROL
    return FrameKind.UPDATE


def test_the_golden_transcript_has_every_kind() -> None:
    kinds = {expected_kind(*json.loads(f.data)[2:4]) for f in SERVER_TEXT_V2}
    assert kinds == {FrameKind.REPLY, FrameKind.PONG, FrameKind.CONTROL, FrameKind.UPDATE}
    assert len(SERVER_TEXT_V2) > 40


@pytest.mark.parametrize("frame", SERVER_TEXT_V2, ids=repr)
def test_server_text_frames_are_classified(frame: Frame) -> None:
    _join_ref, ref, topic, event, payload = json.loads(frame.data)
    status = payload.get("status") if event == "phx_reply" else None
    incoming = PROTOCOL.classify(PROTOCOL.decode_text(frame.data))
    assert incoming.kind is expected_kind(topic, event)
    assert incoming.topic == topic
    if incoming.kind in (FrameKind.REPLY, FrameKind.PONG):
        assert incoming.request_id == ref
        assert incoming.data == payload.get("response", {})
        assert (incoming.error is None) == (status == "ok")
    elif incoming.kind is FrameKind.CONTROL:
        assert incoming.data == event
        assert (incoming.error is not None) == (event == "phx_error")
    else:
        assert incoming.request_id is None
        assert incoming.data == payload


@pytest.mark.parametrize("frame", SERVER_BINARY, ids=repr)
def test_server_binary_frames_are_classified_per_their_annotation(frame: Frame) -> None:
    note = frame.note
    assert note is not None and isinstance(frame.data, bytes)
    incoming = PROTOCOL.classify(PROTOCOL.decode_binary(frame.data))
    assert incoming.topic == note.fields["topic"]
    if note.kind == 1:
        assert incoming.kind is FrameKind.REPLY
        assert incoming.request_id == note.fields["ref"]
        assert incoming.data == note.payload
        assert (incoming.error is None) == (note.fields["status"] == "ok")
    else:
        assert incoming.kind is FrameKind.UPDATE
        assert incoming.data == note.payload


@pytest.mark.parametrize("frame", CLIENT_TEXT_V2, ids=repr)
def test_client_control_frames_are_rebuilt_byte_for_byte(frame: Frame) -> None:
    """Joins, leaves and heartbeats built by the interface equal the recorded frames."""
    message = client_fields(frame)
    ref = message.ref
    assert ref is not None  # every client frame carries a ref (checklist 6)
    built: str | bytes | None
    payload_text = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
    if message.event == "phx_join" and message.join_ref == message.ref:
        built = PROTOCOL.subscribe([ref], [TopicRef(message.topic, payload_text)])
    elif message.event == "phx_leave":
        built = PROTOCOL.unsubscribe([ref], [TopicRef(message.topic, None, message.join_ref)])
    elif message.event == "heartbeat":
        built = PROTOCOL.ping(ref)
    elif message.join_ref is not None and message.event not in ("phx_join",):
        built = PROTOCOL.request(
            ref, message.event, message.payload, scope=TopicRef(message.topic, None, message.join_ref)
        )
    else:
        pytest.skip("not a frame the interface builds")
    assert built is not None and json.loads(built) == json.loads(frame.data)


def test_join_replies_confirm_with_the_join_ref_as_key() -> None:
    ok = PROTOCOL.classify(PROTOCOL.decode_text('["1","1","room:a","phx_reply",{"status":"ok","response":{}}]'))
    refused = PROTOCOL.classify(
        PROTOCOL.decode_text('["2","2","room:b","phx_reply",{"status":"error","response":{"reason":"no"}}]')
    )
    assert PROTOCOL.subscribe_results([TopicRef("room:a")], ok) == [SubscribeResult(True, "1")]
    [result] = PROTOCOL.subscribe_results([TopicRef("room:b")], refused)
    assert not result.ok and result.error == {"status": "error", "response": {"reason": "no"}}


def test_phoenix_is_a_protocol_handler_with_phoenix_capabilities() -> None:
    assert isinstance(PROTOCOL, ProtocolHandler)
    assert PROTOCOL.max_subscribe_batch == 1 and PROTOCOL.request_id_per_topic
    assert PROTOCOL.connect_url("ws://h/socket", {"token": "t"}) == "ws://h/socket/websocket?token=t&vsn=2.0.0"
    assert (
        PROTOCOL.pong(PROTOCOL.classify(PROTOCOL.decode_text('[null,"9","phoenix","phx_reply",{"status":"ok"}]')))
        is None
    )


def test_the_session_builds_its_frames_through_the_handler() -> None:
    from maxsdk.protocol.phoenix.serializer import serializer_for
    from maxsdk.protocol.phoenix.session import PhoenixSession

    session = PhoenixSession(serializer_for("2.0.0"))
    assert isinstance(session.protocol, PhoenixProtocol)
    assert session.protocol.serializer is session.serializer


def test_the_driver_decodes_through_the_handler_at_no_extra_cost() -> None:
    from maxsdk._runtime.phoenix_driver import PhoenixDriver
    from maxsdk.config import ClientConfig

    driver = PhoenixDriver(ClientConfig.build("ws://127.0.0.1:9/socket"), lambda event: None)
    protocol = driver.session.protocol
    # The very same bound methods as the serializer's: decoding costs what it did.
    assert driver.decode_text == protocol.decode_text == driver.serializer.decode_text
    assert driver.decode_binary == protocol.decode_binary == driver.serializer.decode_binary
