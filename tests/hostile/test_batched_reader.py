"""The reader takes many buffered messages at a time: order, malformed frames and replies inside a burst."""

from __future__ import annotations

import json
import threading

import pytest

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer, frame_bytes

pytestmark = pytest.mark.timeout(60)

TEXT, CLOSE = 0x1, 0x8
TOPIC = "room:burst"


def burst(join_ref: str, reply_ref: str) -> bytes:
    """600 channel messages in one write, with junk at 100 and 300 and a push's reply at 450."""
    frames = []
    for i in range(600):
        if i == 100:
            frames.append(frame_bytes(TEXT, b'["1",null,"room:burst","msg",{"i":'))  # not JSON
        if i == 300:
            frames.append(frame_bytes(TEXT, b'{"not": "a phoenix array"}'))
        if i == 450:
            reply = [join_ref, reply_ref, TOPIC, "phx_reply", {"status": "ok", "response": {"seen": 450}}]
            frames.append(frame_bytes(TEXT, json.dumps(reply).encode()))
        frames.append(frame_bytes(TEXT, json.dumps([None, None, TOPIC, "msg", {"i": i}]).encode()))
    return b"".join(frames)


def test_a_burst_is_delivered_in_order_with_its_malformed_frames_reported_and_its_reply_completed() -> None:
    def script(conn: RawConnection) -> None:
        conn.accept_upgrade()
        while True:
            try:
                opcode, data = conn.read_frame()
            except (OSError, ConnectionError):
                return
            if opcode == CLOSE:
                return
            join_ref, ref, topic, event, _ = json.loads(data)
            if event in ("phx_join", "heartbeat", "phx_leave"):
                reply = [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}]
                conn.send_frame(TEXT, json.dumps(reply).encode())
            elif event == "go":  # everything after the go push, its reply in the middle, in one write
                conn.send_raw(burst(join_ref, ref))

    received: list[int] = []
    errors: list[type[BaseException]] = []
    done = threading.Event()

    def on_msg(payload: dict) -> None:
        received.append(payload["i"])
        if payload["i"] == 599:
            done.set()

    with RawServer(script) as server:
        client = maxsdk.Client(
            server.url + "/socket", reconnect=Backoff(steps=(0.05,), jitter="none"), heartbeat_interval=30.0
        )
        client.on_signal(maxsdk.signals.protocol_error, lambda _c, error, **_: errors.append(type(error)))
        disconnects: list[object] = []
        client.on_signal(maxsdk.signals.disconnected, lambda _c, **kw: disconnects.append(kw))
        try:
            room = client.join(TOPIC)
            room.on("msg", on_msg)
            reply = room.push("go", {})
            assert reply.response == {"seen": 450}
            assert done.wait(30)
            assert received == list(range(600))
            assert len(errors) == 2 and all(issubclass(e, maxsdk.errors.RemoteProtocolError) for e in errors)
            assert client._engine._session.counters["protocol_errors"] == 2
            assert disconnects == [] and client.connected
            assert room.push("go", {}).response == {"seen": 450}  # the connection carries on
        finally:
            client.close()
