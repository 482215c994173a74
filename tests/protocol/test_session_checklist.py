# mypy: disable-error-code="comparison-overlap"
# (a channel's state changes inside session calls; mypy's narrowing of `ch.state` cannot see that)
"""The conformance checklist of reference §8, as far as the pure session is concerned.

One test (or a few) per item; the name carries the item number. Items that
need a network or the public API (1-5, 7-8 are codec items covered in the
serializer tests, 12, 26, 28, 32-33) are not here. A fake clock drives every
timer; nothing sleeps.
"""

from __future__ import annotations

import json

import pytest

from maxsdk.errors import ChannelClosedError, LocalProtocolError
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.protocol.phoenix.events import ChannelMessage, HeartbeatReplied, Outcome, RawMessage

from .harness import FakeClient, reply, server

S = ChannelState
LOBBY = "room:lobby"
CRASH = {"reason": "channel_crash"}


def is_ref(value: object) -> bool:
    return isinstance(value, str) and value.isdigit()


# -- envelope -------------------------------------------------------------------------------


def test_checklist_06_sends_five_element_arrays_with_string_refs_and_parses_null_refs() -> None:
    h = FakeClient()
    ch, _, join = h.joined(LOBBY, {"token": "x"})
    h.recv(server(None, None, LOBBY, "new_msg", {"body": "hi"}))  # broadcast: both refs null
    h.recv(server(join.join_ref, None, LOBBY, "presence_state", {}))  # channel push: ref null
    assert h.delivered(ch) == [("new_msg", {"body": "hi"}), ("presence_state", {})]
    h.push(ch, "new_msg", {"body": "hi"})
    h.ping()
    h.leave(ch)
    frames = [s.raw for s in h.wire]
    assert len(frames) == 4
    for raw in frames:
        assert isinstance(raw, str)
        value = json.loads(raw)
        assert isinstance(value, list) and len(value) == 5
        join_ref, ref, topic, event, _ = value
        assert is_ref(ref)
        assert join_ref is None or is_ref(join_ref)
        assert isinstance(topic, str) and isinstance(event, str)
    refs = [json.loads(raw)[1] for raw in frames]
    assert len(set(refs)) == len(refs)


# -- heartbeat -------------------------------------------------------------------------------


def test_checklist_09_heartbeat_30_s_after_open_and_30_s_after_each_reply() -> None:
    h = FakeClient(start=100.0)
    h.at(129.999)
    assert h.sent() == []
    h.at(130.0)
    (hb,) = h.sent()
    assert (hb.join_ref, hb.topic, hb.event, hb.payload) == (None, "phoenix", "heartbeat", {})
    assert is_ref(hb.ref)
    h.at(130.75)
    h.recv(reply(hb, "ok"))
    assert [e for e in h.session.events if isinstance(e, HeartbeatReplied)] == [HeartbeatReplied(hb.ref, 0.75)]
    assert h.session.last_heartbeat_rtt == 0.75
    h.at(160.0)  # 30 s after the *send* would be now: the next one is scheduled from the reply
    assert h.sent() == []
    h.at(160.75)
    (hb2,) = h.sent()
    assert hb2.event == "heartbeat" and hb2.ref != hb.ref and is_ref(hb2.ref)


def test_checklist_09_heartbeat_refs_are_unique_among_all_refs() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    refs = []
    for _ in range(5):
        h.push(ch, "x")
        h.advance(30.0)
        sent = h.sent()
        hb = next(s for s in sent if s.event == "heartbeat")
        h.recv(reply(hb, "ok"))
        refs += [s.ref for s in sent]
    assert len(refs) == len(set(refs)) == 10


def test_checklist_09_no_heartbeats_when_disabled() -> None:
    h = FakeClient(heartbeat_interval=None)
    h.advance(3600.0)
    assert h.sent() == [] and h.session.next_deadline() is None


def test_checklist_40_no_heartbeats_on_a_transport_without_them() -> None:
    h = FakeClient(connect=False, start=100.0)
    h.open(heartbeats=False)  # long-poll (reference §1.8)
    h.at(1000.0)
    assert h.sent() == []
    h.ping()  # an explicit ping still works and does not start the heartbeat
    (ping,) = h.sent()
    h.recv(reply(ping, "ok"))
    h.at(2000.0)
    assert h.sent() == [] and h.session.close_request is None
    h.drop()
    h.open()  # a WebSocket again: heartbeats resume
    h.at(2030.0)
    assert [s.event for s in h.sent()] == ["heartbeat"]


def test_checklist_10_only_the_reply_with_the_heartbeat_ref_counts() -> None:
    h = FakeClient(start=100.0)
    ch, _, join = h.joined(LOBBY)
    h.at(130.0)
    assert [s.event for s in h.sent()] == ["heartbeat"]
    # Other traffic: a push and its reply, a broadcast, a channel push, a ping and its reply.
    h.push(ch, "echo")
    (push,) = h.sent()
    h.recv(reply(push, "ok"))
    h.recv(server(None, None, LOBBY, "shout", {}))
    h.recv(server(join.join_ref, None, LOBBY, "flood_msg", {}))
    h.ping()
    (ping,) = h.sent()
    h.recv(reply(ping, "ok"))
    h.at(159.999)
    assert h.session.close_request is None
    h.at(160.0)
    h.at(190.0)  # silence since 130 s: at most one postponement
    assert h.session.close_request == "heartbeat_timeout"
    assert [s.event for s in h.sent()] == []  # no new heartbeat was scheduled by that traffic


def test_checklist_10_busy_traffic_postpones_the_timeout_a_bounded_number_of_times() -> None:
    # Deliberate SDK choice (session.py, _MAX_HEARTBEAT_EXTENSIONS): while frames keep arriving
    # the reply may be queued behind them, so the timeout is postponed, at most 3 times.
    h = FakeClient(start=100.0)
    h.joined(LOBBY)
    h.at(130.0)
    assert [s.event for s in h.sent()] == ["heartbeat"]
    now = 130.0
    while h.session.close_request is None and now < 1000.0:
        now += 1.0
        h.at(now)
        h.recv(server(None, None, LOBBY, "shout", {}))  # a busy channel: a broadcast every second
    assert h.session.close_request == "heartbeat_timeout"
    assert 160.0 <= now <= 130.0 + 4 * 30.0
    assert [s.event for s in h.sent()] == []  # other traffic never counts as the reply


def test_checklist_10_the_heartbeat_reply_cancels_the_timeout_whatever_its_status() -> None:
    h = FakeClient(start=100.0)
    h.at(130.0)
    (hb,) = h.sent()
    h.recv(reply(hb, "error"))
    h.at(159.0)
    assert h.session.close_request is None
    assert [s.event for s in h.sent()] == []


def test_checklist_11_missing_heartbeat_reply_closes_then_channels_error_and_rejoin() -> None:
    h = FakeClient(start=100.0)
    ch, _, join = h.joined(LOBBY, {"token": "x"})
    in_flight = h.push(ch, "slow", timeout=120.0)
    h.at(130.0)
    assert [s.event for s in h.sent()] == ["slow", "heartbeat"]
    h.at(159.999)
    assert h.session.close_request is None
    h.at(160.0)
    assert h.session.close_request == "heartbeat_timeout"
    assert h.session.counters["heartbeat_timeouts"] == 1
    h.at(200.0)
    assert h.sent() == []  # nothing more is sent on a connection declared dead
    h.drop()  # the runtime closes the socket and reports it
    assert ch.state is S.ERRORED
    assert h.changes(ch)[-1] == ("joined", "errored", "heartbeat_timeout")
    assert h.status(in_flight) == "lost"
    assert h.session.close_request is None
    h.at(200.01)
    h.open()  # reconnected
    (rejoin,) = h.sent()
    assert rejoin.event == "phx_join" and rejoin.join_ref == rejoin.ref != join.join_ref
    assert rejoin.payload == {"token": "x"}
    h.recv(reply(rejoin, "ok"))
    assert ch.state is S.JOINED and h.changes(ch)[-2:] == [
        ("errored", "joining", "rejoin"),
        ("joining", "joined", "rejoined"),
    ]


def test_checklist_11_heartbeat_timeout_waits_while_the_reader_is_paused() -> None:
    h = FakeClient(start=100.0)
    h.at(130.0)
    assert [s.event for s in h.sent()] == ["heartbeat"]
    h.session.heartbeat_timeout_suspended = True  # backpressure: the reply may be unread
    h.at(160.0)
    assert h.session.close_request is None
    h.session.heartbeat_timeout_suspended = False
    h.at(190.0)
    assert h.session.close_request == "heartbeat_timeout"


def test_checklist_11_late_heartbeat_reply_after_the_timeout_is_ignored() -> None:
    h = FakeClient(start=100.0)
    h.at(130.0)
    (hb,) = h.sent()
    h.at(160.0)
    h.recv(reply(hb, "ok"))
    assert h.session.close_request == "heartbeat_timeout"
    assert h.session.counters["unknown_replies"] == 0  # late heartbeat replies are expected noise


# -- channels ---------------------------------------------------------------------------------


def test_checklist_13_join_ref_equals_ref_and_ok_joins_with_the_response() -> None:
    h = FakeClient()
    ch = h.channel(LOBBY)
    waiter = h.join(ch, {"token": "x"})
    (join,) = h.sent()
    assert join.event == "phx_join" and join.topic == LOBBY and join.payload == {"token": "x"}
    assert join.join_ref == join.ref == ch.join_ref
    assert ch.state is S.JOINING
    h.recv(reply(join, "ok", {"id": 7}))
    assert ch.state is S.JOINED
    assert h.outcome(waiter) == Outcome("ok", {"id": 7}, LOBBY, "phx_join", join.ref)
    assert h.changes(ch) == [("closed", "joining", "join"), ("joining", "joined", "joined")]
    assert ch.last_join_response == {"id": 7}


def test_checklist_14_unmatched_topic_refuses_the_initial_join() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel("nope:topic")
    waiter = h.join(ch)
    (join,) = h.sent()
    # Recorded: the unmatched-topic reply has a null join_ref.
    h.recv(
        server(
            None, join.ref, "nope:topic", "phx_reply", {"response": {"reason": "unmatched topic"}, "status": "error"}
        )
    )
    assert h.outcome(waiter) == Outcome("error", {"reason": "unmatched topic"}, "nope:topic", "phx_join", join.ref)
    # By design the first join's refusal closes the channel (the caller sees it; no retry loop).
    assert ch.state is S.CLOSED and h.session.channels() == []
    h.advance(60.0)
    assert h.sent() == []


def test_checklist_14_unmatched_topic_on_a_rejoin_leaves_the_channel_errored() -> None:
    h = FakeClient()
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.recv(server(None, rejoin.ref, LOBBY, "phx_reply", {"response": {"reason": "unmatched topic"}, "status": "error"}))
    assert ch.state is S.ERRORED
    assert h.changes(ch)[-1] == ("joining", "errored", "rejoin_refused")
    assert h.session.next_deadline() is not None


def test_checklist_15_refused_rejoins_retry_after_1_2_5_then_10_s() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    last = h.now
    join_refs = {join.join_ref}
    for delay in (1.0, 2.0, 5.0, 10.0, 10.0, 10.0):
        h.at(last + delay - 0.001)
        assert h.sent() == []
        h.at(last + delay)
        (rejoin,) = h.sent()
        assert rejoin.event == "phx_join" and rejoin.join_ref == rejoin.ref
        join_refs.add(rejoin.join_ref)
        h.recv(reply(rejoin, "error", {"reason": "unauthorized"}))
        assert ch.state is S.ERRORED
        last = h.now
    assert len(join_refs) == 7  # a new join_ref every time
    assert h.changes(ch)[-1] == ("joining", "errored", "rejoin_refused")


def test_checklist_15_schedule_restarts_after_a_successful_rejoin() -> None:
    h = FakeClient(heartbeat_interval=None)
    _ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.recv(reply(rejoin, "error"))
    h.advance(2.0)
    (rejoin,) = h.sent()
    h.recv(reply(rejoin, "ok"))
    h.recv(server(rejoin.join_ref, rejoin.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(0.999)
    assert h.sent() == []
    h.advance(0.001)
    assert [s.event for s in h.sent()] == ["phx_join"]  # 1 s again, not 5 s


def test_checklist_15_rejoin_timer_runs_only_while_connected() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(0.5)
    h.drop()
    h.advance(3600.0)
    assert h.sent() == [] and ch.state is S.ERRORED
    h.open()
    (rejoin,) = h.sent()  # at once on reconnect (checklist 30)
    assert rejoin.event == "phx_join"


def test_checklist_16_rejoin_timeout_sends_leave_errors_and_schedules_a_rejoin() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    sent_at = h.now
    h.at(sent_at + 9.999)
    assert h.sent() == [] and ch.state is S.JOINING
    h.at(sent_at + 10.0)
    (leave,) = h.sent()
    assert leave.event == "phx_leave" and leave.join_ref == rejoin.join_ref and leave.topic == LOBBY
    assert ch.state is S.ERRORED
    assert h.changes(ch)[-1] == ("joining", "errored", "timeout")
    h.at(sent_at + 10.0 + 2.0)  # second retry of the schedule
    (again,) = h.sent()
    assert again.event == "phx_join" and again.join_ref not in (join.join_ref, rejoin.join_ref)
    h.recv(reply(again, "ok"))
    assert ch.state is S.JOINED


def test_checklist_16_late_ok_for_a_timed_out_rejoin_is_ignored() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.advance(10.0)
    h.sent()
    h.recv(reply(rejoin, "ok"))
    assert ch.state is S.ERRORED


def test_checklist_16_phx_close_answering_the_timeout_leave_does_not_close_the_channel() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.advance(10.0)  # the rejoin times out: phx_leave for it
    (leave,) = h.sent()
    # The slow server did join, then handles our leave: ok reply, then phx_close (reference §3.6).
    h.recv(reply(leave, "ok"))
    h.recv(server(rejoin.join_ref, rejoin.join_ref, LOBBY, "phx_close", {}))
    assert ch.state is S.ERRORED
    h.advance(2.0)
    assert [s.event for s in h.sent()] == ["phx_join"]


def test_checklist_16_pushes_of_a_timed_out_rejoin_are_dropped() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.advance(10.0)
    h.recv(server(rejoin.join_ref, None, LOBBY, "presence_state", {"late": {"metas": []}}))
    assert h.delivered(ch)[-1][0] != "presence_state"


def test_checklist_16_initial_join_timeout_sends_leave_and_closes() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel(LOBBY)
    start = h.now
    waiter = h.join(ch, timeout=10.0)
    (join,) = h.sent()
    h.at(start + 9.999)
    assert h.outcome(waiter) is None
    h.at(start + 10.0)
    (leave,) = h.sent()
    assert leave.event == "phx_leave" and leave.join_ref == join.join_ref
    assert h.status(waiter) == "timeout"
    assert ch.state is S.CLOSED and h.session.channels() == []
    h.recv(reply(join, "ok"))  # too late
    assert ch.state is S.CLOSED and h.outcome(waiter) == Outcome("timeout", None, LOBBY, "phx_join", join.ref)


def test_checklist_17_pushes_before_the_join_completes_are_flushed_in_order_after_ok() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    h.join(ch)
    a = h.push(ch, "a", {"n": 1})
    b = h.push(ch, "b", {"n": 2})
    assert h.sent() == []
    h.open()
    (join,) = h.sent()  # the join goes out; the pushes wait for its reply
    assert join.event == "phx_join"
    c = h.push(ch, "c", {"n": 3})
    assert h.sent() == []
    h.recv(reply(join, "ok"))
    flushed = h.sent()
    assert [(s.event, s.payload) for s in flushed] == [("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})]
    assert [s.ref for s in flushed] == [a.ref, b.ref, c.ref]
    assert {s.join_ref for s in flushed} == {join.join_ref}
    for waiter, sent in zip((a, b, c), flushed):
        h.recv(reply(sent, "ok", {"echo": sent.event}))
        assert h.outcome(waiter) == Outcome("ok", {"echo": sent.event}, LOBBY, sent.event, sent.ref)


def test_checklist_17_buffered_push_times_out_from_creation_and_is_never_sent() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel(LOBBY)
    h.join(ch, timeout=30.0)
    (join,) = h.sent()
    created = h.now
    early = h.push(ch, "early", timeout=5.0)
    late = h.push(ch, "late", timeout=60.0)
    h.at(created + 4.999)
    assert h.outcome(early) is None
    h.at(created + 5.0)
    assert early.ref is not None
    assert h.outcome(early) == Outcome("timeout", None, LOBBY, "early", early.ref)
    assert h.session.counters["push_timeouts"] == 1
    h.at(created + 6.0)
    h.recv(reply(join, "ok"))
    assert [s.event for s in h.sent()] == ["late"]  # the timed-out push never goes out
    assert h.outcome(late) is None


def test_checklist_17_buffered_push_times_out_while_disconnected() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    h.join(ch, timeout=60.0)
    waiter = h.push(ch, "x", timeout=2.0)
    h.advance(2.0)
    assert h.status(waiter) == "timeout"
    h.open()
    (join,) = h.sent()
    h.recv(reply(join, "ok"))
    assert h.sent() == []


def test_checklist_18_replies_match_by_ref_with_ok_error_and_custom_statuses() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    ok, error, custom = h.push(ch, "echo", {"a": 1}), h.push(ch, "echo_error"), h.push(ch, "custom")
    s_ok, s_error, s_custom = h.sent()
    h.recv(reply(s_custom, "accepted", {"queued": True}))  # out of order
    h.recv(reply(s_ok, "ok", {"a": 1}))
    h.recv(reply(s_error, "error", {"why": "because"}))
    assert h.outcome(ok) == Outcome("ok", {"a": 1}, LOBBY, "echo", s_ok.ref)
    assert h.outcome(error) == Outcome("error", {"why": "because"}, LOBBY, "echo_error", s_error.ref)
    assert h.outcome(custom) == Outcome("accepted", {"queued": True}, LOBBY, "custom", s_custom.ref)
    assert h.session.pending_count == 0


def test_checklist_18_push_without_a_reply_times_out_after_10_s() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    sent_at = h.now
    waiter = h.push(ch, "noreply", timeout=10.0)
    (push,) = h.sent()
    h.at(sent_at + 9.999)
    assert h.outcome(waiter) is None
    h.at(sent_at + 10.0)
    assert h.outcome(waiter) == Outcome("timeout", None, LOBBY, "noreply", push.ref)
    h.recv(reply(push, "ok"))  # late: ignored, counted
    assert h.session.counters["unknown_replies"] == 1
    assert ch.state is S.JOINED


def test_checklist_19_every_outgoing_channel_message_carries_the_current_join_ref() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.push(ch, "text", {"a": 1})
    h.push(ch, "bin", b"\x00\x01")
    first = h.sent()
    assert [s.join_ref for s in first] == [join.join_ref] * 2
    assert isinstance(first[1].raw, bytes)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.push(ch, "while_errored")
    h.advance(1.0)
    (rejoin,) = h.sent()
    h.recv(reply(rejoin, "ok"))
    h.push(ch, "after")
    h.leave(ch)
    second = h.sent()
    assert [s.event for s in second] == ["while_errored", "after", "phx_leave"]
    assert {s.join_ref for s in second} == {rejoin.join_ref} != {join.join_ref}
    channel_frames = [s for s in h.wire if s.topic == LOBBY]
    assert all(s.join_ref is not None for s in channel_frames)


def test_checklist_20_stale_join_ref_dropped_null_join_ref_delivered() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    current = join.join_ref
    h.recv(server("999", None, LOBBY, "stale_push", {}))
    h.recv(server(current, None, LOBBY, "fresh_push", {}))
    h.recv(server(None, None, LOBBY, "broadcast", {}))
    h.recv(server("999", "999", LOBBY, "phx_error", CRASH))
    h.recv(server("999", "999", LOBBY, "phx_close", {}))
    assert h.delivered(ch) == [("fresh_push", {}), ("broadcast", {})]
    assert ch.state is S.JOINED
    assert h.session.counters["stale_dropped"] == 3


def test_checklist_20_reply_with_a_foreign_join_ref_is_dropped() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    waiter = h.push(ch, "echo")
    (push,) = h.sent()
    h.recv(reply(push, "ok", join_ref="999"))
    assert h.outcome(waiter) is None and h.session.counters["stale_dropped"] == 1
    h.recv(reply(push, "ok"))
    assert h.status(waiter) == "ok"


def test_checklist_21_push_to_a_never_joined_channel_is_refused_before_sending() -> None:
    h = FakeClient()
    ch = h.channel("room:not_joined")
    with pytest.raises(ChannelClosedError) as caught:
        h.push(ch, "echo")
    assert caught.value.topic == "room:not_joined"
    assert h.sent() == [] and h.session.pending_count == 0


@pytest.mark.parametrize("event", ["phx_join", "phx_leave", "phx_reply", "phx_close", "phx_error"])
def test_checklist_21_reserved_events_cannot_be_pushed(event: str) -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    with pytest.raises(LocalProtocolError):
        h.push(ch, event)
    assert h.sent() == []


def test_checklist_22_leave_closes_on_ok_and_ignores_the_following_phx_close() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    waiter = h.leave(ch)
    (leave,) = h.sent()
    assert (leave.join_ref, leave.topic, leave.event, leave.payload) == (join.join_ref, LOBBY, "phx_leave", {})
    assert ch.state is S.LEAVING
    with pytest.raises(ChannelClosedError):
        h.push(ch, "too_late")
    h.recv(reply(leave, "ok"))
    assert ch.state is S.CLOSED and h.session.channels() == []
    assert h.outcome(waiter) == Outcome("ok", {}, LOBBY, "phx_leave", leave.ref)
    assert h.changes(ch)[-2:] == [("joined", "leaving", "left"), ("leaving", "closed", "left")]
    changes = len(h.changes(ch))
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_close", {}))
    assert len(h.changes(ch)) == changes and h.delivered(ch) == []
    assert h.session.counters["unroutable"] == 1


def test_checklist_22_leave_completes_on_timeout() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    start = h.now
    waiter = h.leave(ch, timeout=5.0)
    (leave,) = h.sent()
    h.at(start + 5.0)
    assert h.outcome(waiter) == Outcome("timeout", None, LOBBY, "phx_leave", leave.ref)
    assert ch.state is S.CLOSED and h.session.channels() == []


def test_checklist_22_phx_close_before_the_leave_reply_also_closes() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    waiter = h.leave(ch)
    (leave,) = h.sent()
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_close", {}))
    assert ch.state is S.CLOSED and h.changes(ch)[-1] == ("leaving", "closed", "left")
    h.recv(reply(leave, "ok"))
    assert h.status(waiter) == "ok"


def test_checklist_23_joining_a_topic_again_leaves_the_old_channel_and_its_late_phx_close_is_dropped() -> None:
    h = FakeClient(heartbeat_interval=None)
    old, _, old_join = h.joined(LOBBY)
    new = h.channel(LOBBY)
    waiter = h.join(new)
    leave, join = h.sent()
    assert (leave.event, leave.join_ref) == ("phx_leave", old_join.join_ref)
    assert join.event == "phx_join" and join.join_ref == join.ref != old_join.join_ref
    assert h.changes(old)[-1] == ("joined", "leaving", "replaced")
    # The recorded server order (transcript_v2, duplicate join): new ok first, then the old phx_close.
    h.recv(reply(join, "ok", {"joined": LOBBY}))
    h.recv(server(old_join.join_ref, old_join.join_ref, LOBBY, "phx_close", {}))
    h.recv(reply(leave, "ok"))
    assert new.state is S.JOINED and h.status(waiter) == "ok"
    assert old.state is S.CLOSED
    assert h.session.channels() == [new]
    assert ("phx_close", {}) not in h.delivered(new)
    h.recv(server(None, None, LOBBY, "shout", {"msg": "hi"}))
    h.recv(server(join.join_ref, None, LOBBY, "presence_state", {}))
    assert h.delivered(new) == [("shout", {"msg": "hi"}), ("presence_state", {})]
    assert ("shout", {"msg": "hi"}) not in h.delivered(old)


def test_checklist_23_late_phx_error_of_the_replaced_join_does_not_error_the_new_channel() -> None:
    h = FakeClient(heartbeat_interval=None)
    _old, _, old_join = h.joined(LOBBY)
    new = h.channel(LOBBY)
    h.join(new)
    leave, join = h.sent()
    assert leave.event == "phx_leave"
    h.recv(reply(join, "ok"))
    h.recv(server(old_join.join_ref, old_join.join_ref, LOBBY, "phx_error", CRASH))
    assert new.state is S.JOINED
    h.advance(5.0)
    assert all(s.event != "phx_join" for s in h.sent())


def test_checklist_23_replacing_an_errored_channel_closes_it_without_a_leave_frame() -> None:
    h = FakeClient(heartbeat_interval=None)
    old, _, old_join = h.joined(LOBBY)
    h.recv(server(old_join.join_ref, old_join.join_ref, LOBBY, "phx_error", CRASH))
    new = h.channel(LOBBY)
    h.join(new)
    assert [s.event for s in h.sent()] == ["phx_join"]
    assert old.state is S.CLOSED
    assert h.changes(old)[-2:] == [("errored", "leaving", "replaced"), ("leaving", "closed", "replaced")]
    h.advance(5.0)  # the old channel's rejoin timer is gone
    assert h.sent() == []


def test_checklist_24_phx_error_rejoins_after_1_s_with_a_new_join_ref_and_the_same_params() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, join_waiter, join = h.joined(LOBBY, {"token": "x"})
    in_flight = h.push(ch, "crash")
    h.sent()
    crashed_at = h.now
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    assert ch.state is S.ERRORED and h.changes(ch)[-1] == ("joined", "errored", "crashed")
    assert h.delivered(ch) == [("phx_error", CRASH)]
    assert h.status(in_flight) == "lost"  # its reply can never come
    h.at(crashed_at + 0.999)
    assert h.sent() == []
    h.at(crashed_at + 1.0)
    (rejoin,) = h.sent()
    assert rejoin.event == "phx_join" and rejoin.join_ref == rejoin.ref != join.join_ref
    assert rejoin.payload == join.payload == {"token": "x"}
    h.recv(reply(rejoin, "ok"))
    assert ch.state is S.JOINED and h.changes(ch)[-2:] == [
        ("errored", "joining", "rejoin"),
        ("joining", "joined", "rejoined"),
    ]
    assert h.status(join_waiter) == "ok"  # completed once, by the first join


def test_checklist_24_phx_error_without_reason_payload_is_handled_the_same() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", {}))  # Phoenix < 1.8.10
    assert ch.state is S.ERRORED
    h.advance(1.0)
    assert [s.event for s in h.sent()] == ["phx_join"]


def test_checklist_25_phx_close_for_the_current_join_ref_closes_without_rejoin() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined("room:closeme")
    in_flight = h.push(ch, "close_channel")
    h.sent()
    h.recv(server(join.join_ref, join.join_ref, "room:closeme", "phx_close", {}))
    assert ch.state is S.CLOSED and h.changes(ch)[-1] == ("joined", "closed", "closed_by_server")
    assert h.session.channels() == []
    assert h.delivered(ch) == [("phx_close", {})]
    assert h.status(in_flight) == "lost"
    h.advance(60.0)
    h.drop()
    h.open()
    assert h.sent() == []


def test_checklist_27_hooks_see_every_channel_event_and_every_frame() -> None:
    h = FakeClient(heartbeat_interval=30.0, start=100.0)
    h.session.emit_raw = True
    ch, _, join = h.joined(LOBBY)
    h.push(ch, "echo")
    (push,) = h.sent()
    frames = [
        server(None, None, LOBBY, "shout", {"msg": "hi"}),
        server(join.join_ref, None, LOBBY, "presence_state", {}),
        reply(push, "ok"),
        server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH),
    ]
    for frame in frames:
        h.recv(frame)
    h.at(130.0)
    (hb,) = [s for s in h.sent() if s.event == "heartbeat"]
    h.recv(reply(hb, "ok"))
    raw = [e.message for e in h.session.events if isinstance(e, RawMessage)]
    assert [(m.event, m.ref) for m in raw] == [
        ("phx_reply", join.ref),
        ("shout", None),
        ("presence_state", None),
        ("phx_reply", push.ref),
        ("phx_error", join.join_ref),
        ("phx_reply", hb.ref),
    ]
    # The channel's hook gets every channel event; replies complete their pushes instead.
    channel_events = [e for e in h.session.events if isinstance(e, ChannelMessage)]
    assert [e.message.event for e in channel_events] == ["shout", "presence_state", "phx_error"]
    assert {e.join_ref for e in channel_events} == {join.join_ref}


# -- reconnect ------------------------------------------------------------------------------


def test_checklist_29_connection_loss_errors_active_channels() -> None:
    h = FakeClient(heartbeat_interval=None)
    joined, _, _ = h.joined("room:joined")
    joining = h.channel("room:joining")
    join_waiter = h.join(joining)
    h.sent()
    errored, _, errored_join = h.joined("room:errored")
    h.recv(server(errored_join.join_ref, errored_join.join_ref, "room:errored", "phx_error", CRASH))
    leaving, _, _ = h.joined("room:leaving")
    leave_waiter = h.leave(leaving)
    h.sent()
    h.drop()
    assert joined.state is S.ERRORED and h.changes(joined)[-1] == ("joined", "errored", "connection_closed")
    assert joining.state is S.ERRORED and h.changes(joining)[-1] == ("joining", "errored", "connection_closed")
    assert errored.state is S.ERRORED and h.changes(errored)[-1] == ("joined", "errored", "crashed")
    assert leaving.state is S.CLOSED and h.status(leave_waiter) == "lost"
    assert h.outcome(join_waiter) is None  # the first join still waits: it is retried on reconnect
    h.advance(3600.0)
    assert h.sent() == []


def test_checklist_30_reopen_rejoins_errored_channels_at_once_then_flushes_the_buffer() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.drop()
    buffered = h.push(ch, "queued", {"n": 1})
    h.advance(0.01)
    h.open()
    (rejoin,) = h.sent()  # no rejoin delay on reconnect
    assert rejoin.event == "phx_join" and rejoin.join_ref != join.join_ref
    h.recv(reply(rejoin, "ok"))
    (push,) = h.sent()
    assert (push.event, push.join_ref, push.ref) == ("queued", rejoin.join_ref, buffered.ref)


def test_checklist_30_reconnect_overrides_a_pending_rejoin_timer() -> None:
    h = FakeClient(heartbeat_interval=None)
    _ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    for delay in (1.0, 2.0):  # two refusals: the next retry is 5 s away
        h.advance(delay)
        (rejoin,) = h.sent()
        h.recv(reply(rejoin, "error"))
    h.advance(1.0)
    h.drop()
    h.open()
    assert [s.event for s in h.sent()] == ["phx_join"]
    h.advance(5.0)
    assert h.sent() == []  # the old timer does not fire a second join


def test_checklist_31_after_disconnect_a_new_connection_rejoins_the_previous_channels() -> None:
    h = FakeClient(heartbeat_interval=None)
    a, _, join_a = h.joined("room:a", {"p": "a"})
    _b, _, join_b = h.joined("room:b", {"p": "b"})
    h.drop("disconnected")  # explicit disconnect: the runtime stops reconnecting
    assert {c.state for c in h.session.channels()} == {S.ERRORED}
    assert h.changes(a)[-1] == ("joined", "errored", "disconnected")
    h.advance(3600.0)
    assert h.sent() == []
    h.open()  # a later connect()
    rejoins = h.sent()
    assert sorted((s.topic, s.event, s.payload["p"]) for s in rejoins) == [
        ("room:a", "phx_join", "a"),
        ("room:b", "phx_join", "b"),
    ]
    assert {s.join_ref for s in rejoins}.isdisjoint({join_a.join_ref, join_b.join_ref})


def test_checklist_34_in_flight_pushes_end_lost_and_are_never_sent_twice() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    in_flight = h.push(ch, "slow", {"ms": 300})
    (push,) = h.sent()
    h.drop()
    assert h.outcome(in_flight) == Outcome("lost", None, LOBBY, "slow", push.ref)
    h.open()
    (rejoin,) = h.sent()
    h.recv(reply(rejoin, "ok"))
    assert h.sent() == []  # not re-sent after the rejoin
    h.recv(reply(push, "ok"))  # a reply cannot come on a new connection; if it did it is ignored
    assert h.status(in_flight) == "lost"
