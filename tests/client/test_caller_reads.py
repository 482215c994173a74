"""A caller blocked in ``push()`` reads its reply itself while the reader lends it the connection.

Against the embedded server (ordinary peers) and a raw-socket server written
for the test (a peer that answers only when told to). What must hold whoever
reads: every frame routed once and in order, other callers' replies reach
them, events reach handlers while nobody pushes, timeouts and drops end the
wait, and ``close()`` ends it all.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import maxsdk
from maxsdk import ChannelState
from tests.client.helpers import Inbox, fast_client
from tests.security.rawphoenix import RawPhoenixServer


def _counters(client: maxsdk.Client) -> dict[str, int]:
    return client.diagnostics().counters


def test_sequential_pushes_are_read_by_their_caller(phoenix_server):
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        for number in range(300):
            assert room.push("echo", {"n": number}).response == {"n": number}
        counters = _counters(client)
    # The reader lends the connection once and the caller keeps it from push to push.
    assert counters["connection_lent"] >= 1
    assert counters["read_by_caller"] >= 250, counters


def test_events_reach_handlers_in_order_whoever_reads_them(phoenix_server):
    """Broadcasts interleaved with blocking pushes: each once, in order, also those that
    arrive while the connection is lent and nobody waits."""
    inbox = Inbox()
    with fast_client(phoenix_server.url) as client, fast_client(phoenix_server.url) as other:
        room = client.join("room:lobby")
        room.on("shout", lambda payload: inbox(payload["n"]))
        sender = other.join("room:lobby")
        expected = []
        for number in range(200):
            if number % 2:
                sender.push("shout", {"n": number})  # arrives while `client` may be lent
            else:
                room.push("shout", {"n": number})  # read by the caller itself, most likely
            expected.append(number)
        items = inbox.wait_count(len(expected), timeout=10)
        assert items == expected
        # An event that arrives while nobody pushes any more is read too (the reader takes
        # the connection back).
        sender.push("shout", {"n": 1000})
        assert inbox.wait_count(len(expected) + 1, timeout=5)[-1] == 1000


def test_replies_of_other_callers_reach_them_while_one_caller_reads(phoenix_server):
    errors: list[BaseException] = []
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")

        def caller(index: int) -> None:
            try:
                for number in range(150):
                    payload = {"caller": index, "n": number}
                    assert room.push("echo", payload).response == payload
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not [t for t in threads if t.is_alive()]
    assert errors == []


def _raw_server() -> RawPhoenixServer:
    """A raw Phoenix server that answers joins, heartbeats and leaves, and nothing else by itself."""
    return RawPhoenixServer()


def _wait_for_push(server: RawPhoenixServer, event: str, count: int = 1, timeout: float = 5.0) -> list:
    """The ``count``-th ``event`` push the server received."""
    received = server.wait_received(lambda messages: len([m for m in messages if m[3] == event]) >= count, timeout)
    return [m for m in received if m[3] == event][count - 1]


def test_a_push_times_out_while_its_caller_reads_a_silent_connection():
    server = _raw_server()
    with server, fast_client(server.url, heartbeat_interval=0) as client:
        room = client.join("room:raw")
        # One answered push first, so the connection is lent to this caller.
        pending = room.push_nowait("first", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "first")
        server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
        pending.wait(5)
        started = time.monotonic()
        with pytest.raises(maxsdk.ReplyTimeoutError):
            room.push("never_answered", {}, timeout=0.3)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.0, elapsed
        assert client.diagnostics().counters["read_by_caller"] >= 1
        # The connection still works afterwards.
        pending = room.push_nowait("second", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "second")
        server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"n": 2}})
        assert pending.wait(5).response == {"n": 2}


def test_a_connection_dropped_while_its_caller_reads_fails_the_push_and_reconnects():
    server = _raw_server()
    with server, fast_client(server.url, heartbeat_interval=0) as client:
        room = client.join("room:raw")
        for round_number in range(3):
            pending = room.push_nowait("warm", {"round": round_number})
            join_ref, ref, topic, _, _ = _wait_for_push(server, "warm", round_number + 1)
            server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
            pending.wait(5)
        connections_before = len(server.connections)
        outcome: list[BaseException] = []

        def blocked_caller() -> None:
            try:
                room.push("dropped", {}, timeout=5)
            except maxsdk.MaxsdkError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=blocked_caller)
        caller.start()
        _wait_for_push(server, "dropped")
        server.connections[-1].sock.shutdown(2)  # the peer goes away, no close frame
        caller.join(5)
        assert not caller.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], maxsdk.ReplyLostError), outcome
        # The reader (not the caller) reconnects and rejoins.
        server.wait_received(lambda messages: len([m for m in messages if m[3] == "phx_join"]) >= 2)
        assert room.wait_joined(5).state is ChannelState.JOINED
        assert len(server.connections) > connections_before


def test_close_ends_a_wait_in_which_the_caller_reads():
    server = _raw_server()
    with server:
        client = fast_client(server.url, heartbeat_interval=0, close_timeout=1.0)
        try:
            room = client.join("room:raw")
            pending = room.push_nowait("warm", {})
            join_ref, ref, topic, _, _ = _wait_for_push(server, "warm")
            server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
            pending.wait(5)
            outcome: list[BaseException] = []

            def blocked_caller() -> None:
                try:
                    room.push("never_answered", {}, timeout=30)
                except maxsdk.MaxsdkError as exc:
                    outcome.append(exc)

            caller = threading.Thread(target=blocked_caller)
            caller.start()
            _wait_for_push(server, "never_answered")
        finally:
            started = time.monotonic()
            client.close()
            closed_in = time.monotonic() - started
        caller.join(5)
        assert not caller.is_alive()
        assert closed_in < 1.5, closed_in
        assert len(outcome) == 1 and isinstance(outcome[0], (maxsdk.ClientClosedError, maxsdk.ReplyLostError)), outcome
        assert not [t for t in client.threads if t.is_alive()]


def test_frames_read_by_a_caller_are_routed_like_the_readers(phoenix_server):
    """Malformed frames read by a caller are counted and skipped like the reader does."""
    seen_errors = Inbox()
    server = _raw_server()
    with server, fast_client(server.url, heartbeat_interval=0) as client:
        client.on_signal(maxsdk.signals.protocol_error, lambda _sender, error: seen_errors(error))
        room = client.join("room:raw")
        pending = room.push_nowait("warm", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "warm")
        server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
        pending.wait(5)
        pending = room.push_nowait("answered_after_junk", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "answered_after_junk")
        conn = server.connections[-1]
        conn.send_text(b"not json")
        conn.send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"fine": True}})
        assert pending.wait(5).response == {"fine": True}
        errors = seen_errors.wait_count(1)
        assert isinstance(errors[0], maxsdk.RemoteProtocolError)
        assert room.state is ChannelState.JOINED


def _lend_to_this_thread(server: RawPhoenixServer, room: maxsdk.Channel, event: str = "warm") -> None:
    """One answered push from this thread: the reader then lends it the connection."""
    pending = room.push_nowait(event, {})
    join_ref, ref, topic, _, _ = _wait_for_push(server, event)
    server.connections[-1].send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}})
    pending.wait(5)


@pytest.mark.parametrize("cut", [1, 2, 30], ids=["in-header", "after-header", "in-payload"])
def test_a_frame_stalled_halfway_does_not_hold_a_reading_caller_past_its_timeout(cut):
    """A peer stops in the middle of a frame: the caller's push still times out on time,
    and the frame, once finished, is read whole (nothing was lost by giving up)."""
    server = _raw_server()
    inbox = Inbox()
    with server, fast_client(server.url, heartbeat_interval=0) as client:
        room = client.join("room:raw")
        room.on("late", lambda payload: inbox(payload))
        _lend_to_this_thread(server, room)
        conn = server.connections[-1]
        from tests.security.rawphoenix import frame

        event = json.dumps([room.join_ref, None, "room:raw", "late", {"text": "x" * 200}]).encode()
        whole = frame(event)
        conn.send_raw(whole[:cut])
        started = time.monotonic()
        with pytest.raises(maxsdk.ReplyTimeoutError):
            room.push("never_answered", {}, timeout=0.4)
        assert time.monotonic() - started < 1.2
        conn.send_raw(whole[cut:])
        assert inbox.wait_count(1) == [{"text": "x" * 200}]
        pending = room.push_nowait("after", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "after")
        conn.send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"fine": True}})
        assert pending.wait(5).response == {"fine": True}
        assert client.diagnostics().counters["protocol_errors"] == 0


def test_an_oversize_frame_stalled_halfway_does_not_hold_a_reading_caller_past_its_timeout():
    """Skipping an oversize frame that stops arriving: the push times out on time, the skip
    resumes where it stopped, the frame is reported once and the next message is read."""
    server = _raw_server()
    errors = Inbox()
    with server, fast_client(server.url, heartbeat_interval=0, max_message_size=1024) as client:
        client.on_signal(maxsdk.signals.protocol_error, lambda _sender, error: errors(error))
        room = client.join("room:raw")
        _lend_to_this_thread(server, room)
        conn = server.connections[-1]
        from tests.security.rawphoenix import frame

        oversize = frame(json.dumps([None, None, "room:raw", "big", {"data": "y" * 5000}]).encode())
        conn.send_raw(oversize[:3000])
        started = time.monotonic()
        with pytest.raises(maxsdk.ReplyTimeoutError):
            room.push("never_answered", {}, timeout=0.4)
        assert time.monotonic() - started < 1.2
        pending = room.push_nowait("after", {})
        join_ref, ref, topic, _, _ = _wait_for_push(server, "after")
        conn.send_raw(oversize[3000:])
        conn.send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"fine": True}})
        assert pending.wait(5).response == {"fine": True}
        reported = errors.wait_count(1)
        assert len(reported) == 1 and isinstance(reported[0], maxsdk.MessageTooLargeError)
        assert room.state is ChannelState.JOINED


def test_a_caller_waiting_through_a_flood_leaves_it_to_the_reader_and_nothing_is_lost(phoenix_server):
    """A push whose reply comes after thousands of events: the caller reads a few batches at
    most, the reader the rest; every event arrives once, in order."""
    inbox = Inbox()
    with fast_client(phoenix_server.url, overflow="block") as client:
        room = client.join("room:lobby")
        room.on("flood_msg", lambda payload: inbox(payload["i"]))
        assert room.push("echo", {}).ok  # the connection is now lent to this thread
        assert room.push("flood", {"n": 3000, "size": 50}, timeout=20).response == {"sent": 3000}
        assert inbox.wait_count(3000, timeout=20) == list(range(1, 3001))
