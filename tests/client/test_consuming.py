"""Typed messages, filters, the message iterator, expectations (issue: consuming events)."""

from __future__ import annotations

import dataclasses
import threading
import tracemalloc

import pytest
from dataclasses_json import dataclass_json

import maxsdk
from maxsdk import signals
from maxsdk.models import upgrader
from tests.client.helpers import Inbox, SignalLog, fast_client


@dataclass_json
@dataclasses.dataclass
class Shout:
    msg: str
    n: int = 0


@dataclasses.dataclass
class PlainShout:
    msg: str


@dataclasses.dataclass
class Note:
    __schema_version__ = 3
    text: str
    author: str
    schema_version: int = 3


@upgrader(Note, from_version=1)
def _note_v1(payload):
    return {**payload, "text": payload.pop("body")}


@upgrader(Note, from_version=2)
def _note_v2(payload):
    return {**payload, "author": payload.get("author", "unknown")}


@pytest.fixture
def room(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    yield client.join("room:lobby")
    client.close()


def test_typed_handler_receives_a_model_and_invalid_payloads_are_reported(room):
    log = SignalLog(room._client, extra=[signals.payload_invalid])
    typed, plain, raw = Inbox(), Inbox(), Inbox()
    room.on("shout", typed, model=Shout)
    room.on("shout", plain, model=PlainShout)
    room.on("shout", raw)
    room.push("shout", {"msg": "hi", "n": 2})
    room.push("shout", {"n": "not an int"})
    room.push("shout", {"msg": "bye"})
    assert raw.wait_count(3)[1] == {"n": "not an int"}
    assert typed.wait_count(2) == [Shout("hi", 2), Shout("bye", 0)]
    assert plain.wait_count(2) == [PlainShout("hi"), PlainShout("bye")]
    invalid = log.wait_for("payload_invalid", count=2)
    assert invalid["event"] == "shout" and isinstance(invalid["error"], maxsdk.ModelError)
    assert "missing" in invalid["error"].reason or "msg" in invalid["error"].reason


def test_wrong_scalar_type_is_invalid(room):
    log = SignalLog(room._client, extra=[signals.payload_invalid])
    typed = Inbox()
    room.on("shout", typed, model=PlainShout)
    room.push("shout", {"msg": 5})
    error = log.wait_for("payload_invalid")["error"]
    assert "msg" in error.reason
    assert typed.items == []


def test_push_accepts_dataclasses_and_replies_decode_to_models(room):
    reply = room.push("echo", Shout("typed", 7))
    assert reply.response == {"msg": "typed", "n": 7}
    assert reply.as_(Shout) == Shout("typed", 7)
    with pytest.raises(maxsdk.ModelError):
        room.push("echo", {"other": 1}).as_(Shout)


def test_versioned_payloads_are_upgraded_and_newer_ones_reported(room):
    log = SignalLog(room._client, extra=[signals.payload_invalid])
    notes = Inbox()
    room.on("shout", notes, model=Note)
    room.push("shout", {"body": "v1 text"})  # no version field: version 1
    room.push("shout", {"schema_version": 2, "text": "v2 text"})
    room.push("shout", {"schema_version": 3, "text": "v3", "author": "ann"})
    room.push("shout", {"schema_version": 4, "text": "from the future", "author": "x"})
    assert notes.wait_count(3) == [Note("v1 text", "unknown"), Note("v2 text", "unknown"), Note("v3", "ann")]
    assert "newer" in log.wait_for("payload_invalid")["error"].reason
    assert room.push("echo", Note("t", "a")).response == {"text": "t", "author": "a", "schema_version": 3}


def test_filters_by_event_set_and_predicate(room):
    inbox, anything = Inbox(), Inbox()
    room.on({"shout", "flood_msg"}, inbox, where=lambda p: p.get("keep", True))
    room.on_any(anything, events={"shout"}, where=lambda event, p: p.get("n", 0) > 1)
    room.push("shout", {"n": 1})
    room.push("shout", {"n": 2, "keep": False})
    room.push("flood", {"n": 1, "size": 1})
    room.push("shout", {"n": 3})
    assert [p.get("n", p.get("i")) for p in inbox.wait_count(3)] == [1, 1, 3]
    assert anything.wait_count(2) == [("shout", {"n": 2, "keep": False}), ("shout", {"n": 3})]


def test_message_iterator_buffers_between_iterations_and_ends_on_close(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    room = client.join("room:lobby")
    stream = room.messages(events={"flood_msg"})
    room.push("flood", {"n": 50, "size": 5})
    seen = [next(stream).payload["i"] for _ in range(50)]
    assert seen == list(range(1, 51))
    ended = threading.Event()

    def drain():
        for _ in stream:
            pass
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    client.close()
    assert ended.wait(5), "the iteration must end when the client closes"


def test_message_iterator_idle_timeout_and_overflow_counter(room):
    with room.messages(events={"flood_msg"}, maxsize=10, timeout=0.3) as stream:
        room.push("flood", {"n": 30, "size": 1})
        room.push("echo", {})  # the flood is in the buffer once the reply arrives
        SignalLog(room._client)  # (no-op) keep the client referenced
        items = list(stream)
    assert len(items) == 10
    assert stream.dropped == 20
    assert [m.payload["i"] for m in items] == list(range(21, 31))


def test_expect_is_armed_before_the_trigger(room):
    with room.expect("shout", lambda p: p["id"] == 2) as shout:
        room.push_nowait("shout", {"id": 1})
        room.push_nowait("shout", {"id": 2})
        assert shout.wait(5) == {"id": 2}


def test_wait_for_times_out_with_a_timeout_error(room):
    with pytest.raises(TimeoutError):
        room.wait_for("never", timeout=0.2)


def test_wait_for_ends_when_the_channel_closes(room, phoenix_server):
    threading.Timer(0.1, lambda: room.push_nowait("close_channel", {})).start()
    with pytest.raises(maxsdk.ChannelClosedError):
        room.wait_for("never", timeout=5)


@pytest.mark.timeout(120)
def test_burst_of_100k_events_with_a_slow_handler_stays_bounded(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=2.0, dispatch_queue_size=1000, overflow="drop_oldest")
    log = SignalLog(client)
    gate = threading.Event()
    with client:
        room = client.join("room:lobby")
        handled = Inbox()

        def slow(payload):
            gate.wait(30)
            handled(payload["i"])

        room.on("flood_msg", slow)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        room.push("flood", {"n": 100_000, "size": 50}, timeout=60)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert client.diagnostics().dispatch_queue_depth <= 1000 + 10  # + a few control events
        assert grown < 20 * 1024 * 1024, f"memory grew by {grown} bytes"
        since = phoenix_server.message_count
        beat = phoenix_server.wait_for_message(event="heartbeat", since=since, timeout=10)
        phoenix_server.wait_for_message(event="heartbeat", since=beat.index + 1, timeout=10)
        gate.set()
        dropped = client.diagnostics().messages_dropped
        assert handled.wait_count(100_000 - dropped, timeout=60)[-1] == 100_000
        assert dropped >= 100_000 - 1001 - 1
        report = log.wait_for("messages_dropped")
        assert report["total"] <= dropped
        assert client.diagnostics().reconnects == 0


def test_a_failing_upgrader_reports_the_payload_as_invalid(room):
    log = SignalLog(room._client, extra=[signals.payload_invalid])
    notes = Inbox()
    room.on("shout", notes, model=Note)
    room.push("shout", {"text": "v1 without body"})  # version 1, but the upgrader expects "body"
    error = log.wait_for("payload_invalid")["error"]
    assert isinstance(error, maxsdk.ModelError) and "upgrade from schema version 1 failed" in error.reason
    room.push("shout", {"schema_version": 3, "text": "fine", "author": "a"})
    assert notes.wait_count(1) == [Note("fine", "a")]
