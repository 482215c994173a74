"""Replay recorded real-server conversations through the session.

The session is driven with the user operations the recording implies (join,
push, ping, leave; rejoins come from its own timer), fed the recorded server
frames at their recorded times, and must produce the recorded client frames
byte for byte, refs included (phoenix.js numbering: one counter for joins,
pushes and heartbeats).
"""

from __future__ import annotations

from typing import Any

import pytest

from maxsdk.errors import ChannelClosedError
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState
from maxsdk.protocol.phoenix.message import PHX_REPLY

from .golden import V1, V2, Frame, Transcript, client_fields, unescape_non_ascii
from .harness import FakeClient, Waiter

S = ChannelState


class Replay:
    def __init__(self, vsn: str) -> None:
        self.h = FakeClient(vsn, start=0.0)
        self.channels: dict[str, ChannelCore] = {}
        self.waiters: dict[str, Waiter] = {}  # by recorded ref
        self.replies: dict[str, str] = {}  # recorded reply status by ref

    def run(self, frames: list[Frame]) -> None:
        for frame in frames:
            assert frame.time is not None
            self.h.at(max(self.h.now, frame.time))
            if frame.direction == "client":
                self.client(frame)
            else:
                self.server(frame)

    def client(self, frame: Frame) -> None:
        h = self.h
        if frame.kind == "binary":
            assert frame.note is not None
            f = frame.note.fields
            topic, event, payload = f["topic"], f["event"], frame.note.payload
        else:
            recorded = client_fields(frame)
            topic, event, payload = recorded.topic, recorded.event, recorded.payload
        ch = self.channels.get(topic)
        waiter: Waiter | None
        if event == "phx_join" and ch is not None and ch.state is S.ERRORED:
            while ch.state is S.ERRORED:  # our own rejoin timer sends it
                deadline = h.session.next_deadline()
                assert deadline is not None
                h.at(deadline)
            waiter = None
        elif event == "phx_join":
            ch = self.channels[topic] = h.channel(topic)  # a closed channel is not reused
            waiter = h.join(ch, payload)
        elif event == "heartbeat":
            waiter = h.ping()
        elif event == "phx_leave":
            assert ch is not None
            waiter = h.leave(ch)
        elif ch is None:
            # The recorder pushed to a topic it never joined; we refuse before sending
            # (checklist 21). Its ref is used up all the same, to keep the numbering.
            with pytest.raises(ChannelClosedError):
                h.push(h.channel(topic), event, payload)
            h.session.new_ref()
            return
        else:
            waiter = h.push(ch, event, payload)
        (sent,) = h.sent()
        expected = frame.data if isinstance(frame.data, bytes) else unescape_non_ascii(frame.data)
        assert sent.raw == expected, f"line {frame.line}"
        if waiter is not None:
            self.waiters[sent.ref or ""] = waiter

    def server(self, frame: Frame) -> None:
        message = (
            self.h.serializer.decode_text(frame.data)
            if isinstance(frame.data, str)
            else self.h.serializer.decode_binary(frame.data)
        )
        if message.event == PHX_REPLY and message.ref is not None:
            self.replies[message.ref] = message.payload["status"]
        self.h.recv(frame.data)

    def statuses(self) -> dict[str, Any]:
        return {ref: self.h.status(waiter) for ref, waiter in self.waiters.items()}


def until(frames: list[Frame], section_prefix: str) -> list[Frame]:
    index = next(i for i, f in enumerate(frames) if f.section.startswith(section_prefix))
    return frames[:index]


@pytest.mark.parametrize("transcript", [V2, V1], ids=["v2", "v1"])
def test_session_reproduces_the_recorded_conversation(transcript: Transcript) -> None:
    frames = until(transcript.connection(0), "duplicate join")
    replay = Replay(frames[0].vsn)
    replay.run(frames)
    h = replay.h
    statuses = replay.statuses()
    assert statuses == {
        "1": "ok",  # join room:lobby
        "2": "ok",  # heartbeat (a ping)
        "3": "ok",  # echo
        "4": "error",  # echo_error
        "5": "lost",  # noreply: ended by the channel crash, not left hanging
        "6": "ok",  # slow
        "7": "ok",  # shout
        "8": "error",  # unknown event
        "10": "error",  # wrong password
        "11": "ok",  # join room:private
        "12": "ok",  # leave room:private
        "13": "error",  # join crashed
        "14": "error",  # unmatched topic
        "15": "lost",  # crash: the push that killed the channel gets no reply
    }
    for ref, status in statuses.items():
        assert status == replay.replies.get(ref, "lost")
    lobby = replay.channels["room:lobby"]
    assert lobby.state is S.JOINED and lobby.join_ref == "16"
    assert h.changes(lobby)[-3:] == [
        ("joined", "errored", "crashed"),
        ("errored", "joining", "rejoin"),
        ("joining", "joined", "rejoined"),
    ]
    assert [c.topic for c in h.session.channels()] == ["room:lobby"]
    events = [event for event, _ in h.delivered(lobby)]
    assert events == ["presence_diff", "presence_state", "shout", "phx_error", "presence_diff", "presence_state"]
    assert h.session.counters["unknown_replies"] == 1  # the reply to the push we refused to send
    assert h.session.counters["unroutable"] == 1  # room:private's phx_close after our leave closed it
    assert h.session.counters["stale_dropped"] == 0
    assert h.session.counters["protocol_errors"] == 0


def test_session_reproduces_the_recorded_binary_exchange() -> None:
    frames = V2.connection(0)
    start = next(i for i, f in enumerate(frames) if f.section.startswith("flood"))
    end = next(i for i, f in enumerate(frames) if f.section.startswith("kick_me"))
    replay = Replay("2.0.0")
    h = replay.h
    h.at(frames[start].time or 0.0)
    for _ in range(16):  # the recording's lobby incarnation at this point is join_ref "17"
        h.session.new_ref()
    lobby, _, join = h.joined("room:lobby")
    assert join.raw == '["17","17","room:lobby","phx_join",{}]'
    replay.channels["room:lobby"] = lobby
    for _ in range(5):  # refs 18-22 went to other topics in the recording
        h.session.new_ref()
    replay.run(frames[start:end])
    assert replay.statuses() == {"23": "ok", "24": "ok", "25": "ok", "26": "ok", "27": "ok"}
    outcomes = {ref: h.outcome(w) for ref, w in replay.waiters.items()}
    assert outcomes["23"] is not None and outcomes["23"].response == {"sent": 3}
    assert outcomes["24"] is not None and outcomes["24"].response == b"\x00\x01\x02\xfa\xff"
    assert outcomes["27"] is not None and outcomes["27"].response == b""
    assert h.delivered(lobby) == [
        ("flood_msg", {"data": "xxxxx", "i": 1}),
        ("flood_msg", {"data": "xxxxx", "i": 2}),
        ("flood_msg", {"data": "xxxxx", "i": 3}),
        ("bin", b"\x01\x02\x03\xff"),
        ("shout", b"\x00bin\xff"),
    ]
