# mypy: disable-error-code="comparison-overlap"
# (a channel's state changes inside session calls; mypy's narrowing of `ch.state` cannot see that)
"""PhoenixSession behaviour beyond the checklist: leave, limits, bad input, V1, binary, shutdown."""

from __future__ import annotations

import pytest

from maxsdk.errors import CapacityError, ChannelClosedError, LocalProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.protocol.phoenix.events import ChannelStateChanged, Outcome, ProtocolErrorReceived

from .harness import FakeClient, reply, server

S = ChannelState
LOBBY = "room:lobby"
CRASH = {"reason": "channel_crash"}


# -- join ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["unauthorized", "join crashed"])
def test_initial_join_refused_closes_the_channel_and_the_waiter_gets_error(reason: str) -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel("room:private")
    waiter = h.join(ch, {"password": "nope"})
    (join,) = h.sent()
    buffered = h.push(ch, "early")
    h.recv(reply(join, "error", {"reason": reason}))
    assert h.outcome(waiter) == Outcome("error", {"reason": reason}, "room:private", "phx_join", join.ref)
    assert ch.state is S.CLOSED and h.changes(ch)[-1] == ("joining", "closed", "refused")
    assert h.status(buffered) == "closed"  # never sent, ended at once
    assert h.session.channels() == [] and h.session.pending_count == 0
    h.advance(60.0)
    assert h.sent() == []  # no retry of a refusal the caller has seen


def test_join_while_disconnected_is_sent_on_open() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    waiter = h.join(ch, {"a": 1})
    assert h.sent() == [] and ch.state is S.JOINING and ch.join_ref is None
    h.open()
    (join,) = h.sent()
    assert join.payload == {"a": 1} and join.join_ref == join.ref == ch.join_ref
    h.recv(reply(join, "ok"))
    assert h.status(waiter) == "ok"


def test_initial_join_timeout_counts_from_the_call_even_if_sent_later() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    start = h.now
    waiter = h.join(ch, timeout=10.0)
    h.at(start + 8.0)
    h.open()
    (join,) = h.sent()
    h.at(start + 10.0)
    assert h.status(waiter) == "timeout"
    (leave,) = h.sent()
    assert leave.event == "phx_leave" and leave.join_ref == join.join_ref
    assert ch.state is S.CLOSED


def test_initial_join_survives_a_connection_drop_and_completes_on_the_retry() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel(LOBBY)
    waiter = h.join(ch, timeout=30.0)
    (first,) = h.sent()
    h.drop()
    h.advance(1.0)
    h.open()
    (second,) = h.sent()
    assert second.join_ref != first.join_ref
    h.recv(reply(second, "ok", {"n": 2}))
    assert h.outcome(waiter) == Outcome("ok", {"n": 2}, LOBBY, "phx_join", second.ref)


def test_join_needs_a_closed_channel() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    with pytest.raises(LocalProtocolError):
        h.join(ch)


def test_a_closed_channel_object_can_join_again_with_a_new_join_ref() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.leave(ch)
    (leave,) = h.sent()
    h.recv(reply(leave, "ok"))
    waiter = h.join(ch)
    (again,) = h.sent()
    assert again.join_ref != join.join_ref
    h.recv(reply(again, "ok"))
    assert h.status(waiter) == "ok" and ch.state is S.JOINED


def test_rejoin_gives_up_after_max_attempts() -> None:
    h = FakeClient(heartbeat_interval=None, rejoin=Backoff.constant(1.0, max_attempts=2))
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    for _ in range(2):
        h.advance(1.0)
        (rejoin,) = h.sent()
        h.recv(reply(rejoin, "error"))
    assert ch.state is S.CLOSED and h.changes(ch)[-1] == ("errored", "closed", "rejoin_exhausted")
    assert h.session.channels() == []
    h.advance(60.0)
    assert h.sent() == []


def test_rejoin_not_sent_when_params_fail_retries_on_the_schedule() -> None:
    h = FakeClient(heartbeat_interval=None, auto_rejoin=False)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    assert h.rejoins_due == [ch]
    h.session.rejoin_not_sent(ch, h.now)  # the runtime's params callable raised
    assert ch.state is S.ERRORED and h.sent() == []
    h.advance(2.0)
    assert h.rejoins_due == [ch, ch]
    assert h.session.send_rejoin(ch, "{}", h.now)
    assert [s.event for s in h.sent()] == ["phx_join"]


def test_exhausted_rejoins_complete_the_waiting_first_join() -> None:
    never = Backoff.coerce(False, default=Backoff.phoenix_rejoin())
    h = FakeClient(connect=False, heartbeat_interval=None, rejoin=never)
    h.auto_rejoin = False
    ch = h.channel(LOBBY)
    waiter = h.join(ch, timeout=10.0)
    h.open()
    assert h.rejoins_due == [ch]
    h.session.rejoin_not_sent(ch, h.now)  # the join params callable raised; rejoins are disabled
    assert ch.state is S.CLOSED and h.changes(ch)[-1][2] == "rejoin_exhausted"
    h.advance(60.0)
    assert h.status(waiter) is not None


def test_send_rejoin_is_a_no_op_when_no_longer_wanted() -> None:
    h = FakeClient(heartbeat_interval=None, auto_rejoin=False)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    h.advance(1.0)
    h.leave(ch)  # left while the runtime was building the rejoin
    assert h.session.send_rejoin(ch, "{}", h.now) is False
    h.drop()
    assert h.session.send_rejoin(ch, "{}", h.now) is False
    assert h.sent() == []


# -- leave -----------------------------------------------------------------------------------


def test_leave_of_a_closed_channel_completes_at_once() -> None:
    h = FakeClient()
    ch = h.channel(LOBBY)
    waiter = h.leave(ch)
    assert h.status(waiter) == "ok" and h.sent() == []


def test_leave_of_an_errored_channel_closes_at_once_without_a_frame() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(server(join.join_ref, join.join_ref, LOBBY, "phx_error", CRASH))
    waiter = h.leave(ch)
    assert h.sent() == [] and h.status(waiter) == "ok" and ch.state is S.CLOSED
    h.advance(10.0)
    assert h.sent() == []  # the rejoin timer went with it


def test_leave_while_disconnected_is_never_undone_by_a_reconnect() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    h.drop()
    waiter = h.leave(ch)
    assert h.status(waiter) == "ok" and ch.state is S.CLOSED
    h.open()
    assert h.sent() == []


def test_leave_while_joining_ends_the_join_wait_and_ignores_the_late_join_ok() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel(LOBBY)
    join_waiter = h.join(ch)
    (join,) = h.sent()
    buffered = h.push(ch, "early")
    leave_waiter = h.leave(ch)
    (leave,) = h.sent()
    assert leave.join_ref == join.join_ref
    assert h.status(join_waiter) == "closed" and h.status(buffered) == "closed"
    h.recv(reply(join, "ok"))
    assert ch.state is S.LEAVING and h.sent() == []
    h.recv(reply(leave, "ok"))
    assert ch.state is S.CLOSED and h.status(leave_waiter) == "ok"


def test_leave_while_joining_before_the_join_was_sent_closes_at_once() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    join_waiter = h.join(ch)
    leave_waiter = h.leave(ch)
    assert h.status(join_waiter) == "closed" and h.status(leave_waiter) == "ok"
    h.open()
    assert h.sent() == []


def test_pushes_sent_before_leave_may_still_get_their_replies() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    waiter = h.push(ch, "echo")
    (push,) = h.sent()
    h.leave(ch)
    (leave,) = h.sent()
    h.recv(reply(push, "ok", {"late": True}))
    assert h.outcome(waiter) == Outcome("ok", {"late": True}, LOBBY, "echo", push.ref)
    h.recv(reply(leave, "ok"))


def test_closing_a_channel_ends_its_unanswered_pushes_as_lost() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    waiter = h.push(ch, "noreply")
    h.leave(ch)
    leave = h.sent()[-1]
    h.recv(reply(leave, "ok"))
    assert h.status(waiter) == "lost"


def test_leave_reply_error_still_closes() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    waiter = h.leave(ch)
    (leave,) = h.sent()
    h.recv(reply(leave, "error", {"reason": "whatever"}))
    assert ch.state is S.CLOSED and h.status(waiter) == "error"


# -- limits and bad input ----------------------------------------------------------------------


def test_max_pending_raises_capacity_error() -> None:
    h = FakeClient(heartbeat_interval=None, max_pending=3)
    ch, _, _ = h.joined(LOBBY)
    h.push(ch, "a")
    h.push(ch, "b")
    h.push(ch, "c")
    sent = h.sent()
    with pytest.raises(CapacityError):
        h.push(ch, "d")
    with pytest.raises(CapacityError):
        h.ping()
    assert h.sent() == [] and h.session.pending_count == 3
    h.recv(reply(sent[0], "ok"))
    h.push(ch, "d")  # room again
    assert [s.event for s in h.sent()] == ["d"]


def test_max_pending_counts_buffered_pushes() -> None:
    h = FakeClient(connect=False, max_pending=2)
    ch = h.channel(LOBBY)
    h.join(ch)
    h.push(ch, "a")
    h.push(ch, "b")
    with pytest.raises(CapacityError):
        h.push(ch, "c")


@pytest.mark.parametrize(
    "frame",
    ["this is not json", "[]", '[null,null,"t","e"]', '["1","2","t","phx_reply",{}]', b"", b"\x07", b"\x02\x09t"],
    ids=repr,
)
def test_malformed_frames_are_counted_and_reported_and_the_session_carries_on(frame: str | bytes) -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(frame)
    assert h.session.counters["protocol_errors"] == 1
    (reported,) = [e for e in h.session.events if isinstance(e, ProtocolErrorReceived)]
    assert reported.error.frame is not None
    assert ch.state is S.JOINED
    h.recv(server(join.join_ref, None, LOBBY, "fine", {}))
    assert h.delivered(ch) == [("fine", {})]


def test_unknown_replies_and_unroutable_messages_are_counted() -> None:
    h = FakeClient(heartbeat_interval=None)
    h.joined(LOBBY)
    h.recv(server(None, "9", "room:not_joined", "phx_reply", {"status": "error", "response": {}}))
    h.recv(server(None, "404", LOBBY, "phx_reply", {"status": "ok", "response": {}}))
    h.recv(server(None, None, "room:elsewhere", "shout", {}))
    assert h.session.counters["unknown_replies"] == 2
    assert h.session.counters["unroutable"] == 1


def test_reply_for_another_topic_does_not_complete_a_push() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, _ = h.joined(LOBBY)
    waiter = h.push(ch, "echo")
    (push,) = h.sent()
    h.recv(server(push.join_ref, push.ref, "room:other", "phx_reply", {"status": "ok", "response": {}}))
    assert h.outcome(waiter) is None


def test_a_buffered_push_cannot_be_completed_by_a_reply_with_its_ref() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch = h.channel(LOBBY)
    h.join(ch)
    (join,) = h.sent()
    waiter = h.push(ch, "early")
    h.recv(server(join.join_ref, waiter.ref, LOBBY, "phx_reply", {"status": "ok", "response": {}}))
    assert h.outcome(waiter) is None  # it was never sent


def test_messages_for_a_leaving_channel_are_not_delivered() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.leave(ch)
    h.recv(server(None, None, LOBBY, "shout", {}))
    h.recv(server(join.join_ref, None, LOBBY, "push", {}))
    assert h.delivered(ch) == []


@pytest.mark.parametrize("where", ["event", "topic"])
def test_push_with_an_unencodable_event_or_topic_is_refused(where: str) -> None:
    h = FakeClient(heartbeat_interval=None)
    topic, event = ("room:\ud800", "e") if where == "topic" else (LOBBY, "e\ud800")
    ch = h.channel(topic)
    try:
        h.join(ch)
    except LocalProtocolError:
        return
    h.recv(reply(h.sent()[0], "ok"))
    with pytest.raises(LocalProtocolError):
        h.push(ch, event)
    assert all(isinstance(s.raw, bytes) or s.raw.encode("utf-8") for s in h.wire)


# -- ping --------------------------------------------------------------------------------------


def test_ping_is_an_extra_heartbeat_answered_by_ref() -> None:
    h = FakeClient(start=100.0)
    waiter = h.ping()
    (ping,) = h.sent()
    assert (ping.join_ref, ping.topic, ping.event, ping.payload) == (None, "phoenix", "heartbeat", {})
    h.recv(reply(ping, "ok"))
    assert h.outcome(waiter) == Outcome("ok", {}, "phoenix", "heartbeat", ping.ref)
    h.at(130.0)
    assert [s.event for s in h.sent()] == ["heartbeat"]  # the regular heartbeat is unaffected


def test_ping_needs_a_connection() -> None:
    h = FakeClient(connect=False)
    with pytest.raises(LocalProtocolError):
        h.ping()


# -- binary ------------------------------------------------------------------------------------


def test_binary_push_and_binary_reply() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    waiter = h.push(ch, "binary_echo", b"\x00\x01\x02\xfa\xff")
    (push,) = h.sent()
    assert isinstance(push.raw, bytes)
    assert (push.join_ref, push.ref, push.topic, push.event, push.payload) == (
        join.join_ref,
        waiter.ref,
        LOBBY,
        "binary_echo",
        b"\x00\x01\x02\xfa\xff",
    )
    assert join.join_ref is not None
    j, r, t = join.join_ref.encode(), push.ref.encode(), LOBBY.encode()
    h.recv(bytes([1, len(j), len(r), len(t), 2]) + j + r + t + b"ok" + b"\x00\x01\x02\xfa\xff")
    assert h.outcome(waiter) == Outcome("ok", b"\x00\x01\x02\xfa\xff", LOBBY, "binary_echo", push.ref)


def test_binary_server_push_and_broadcast_reach_the_channel() -> None:
    h = FakeClient(heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    assert join.join_ref is not None
    j, t = join.join_ref.encode(), LOBBY.encode()
    h.recv(bytes([0, len(j), len(t), 3]) + j + t + b"bin" + b"\x01\x02\x03\xff")
    h.recv(bytes([2, len(t), 5]) + t + b"shout" + b"\x00bin\xff")
    h.recv(bytes([0, 2, len(t), 3]) + b"99" + t + b"old" + b"")  # stale join_ref
    assert h.delivered(ch) == [("bin", b"\x01\x02\x03\xff"), ("shout", b"\x00bin\xff")]


def test_buffered_binary_push_gets_the_join_ref_when_flushed() -> None:
    h = FakeClient(connect=False)
    ch = h.channel(LOBBY)
    h.join(ch)
    h.push(ch, "bin", b"\xff")
    h.open()
    (join,) = h.sent()
    h.recv(reply(join, "ok"))
    (push,) = h.sent()
    assert isinstance(push.raw, bytes) and push.join_ref == join.join_ref


# -- V1 ----------------------------------------------------------------------------------------


def test_v1_session_matches_replies_without_join_ref() -> None:
    h = FakeClient("1.0.0", heartbeat_interval=None)
    ch = h.channel(LOBBY)
    waiter = h.join(ch)
    (join,) = h.sent()
    assert join.raw == f'{{"topic":"{LOBBY}","event":"phx_join","payload":{{}},"ref":"1","join_ref":"1"}}'
    h.recv(reply(join, "ok", {"joined": LOBBY}, vsn="1.0.0"))
    assert h.status(waiter) == "ok"
    push_waiter = h.push(ch, "echo", {"a": 1})
    (push,) = h.sent()
    assert push.join_ref == join.join_ref
    h.recv(reply(push, "ok", {"a": 1}, vsn="1.0.0"))
    assert h.outcome(push_waiter) == Outcome("ok", {"a": 1}, LOBBY, "echo", push.ref)


def test_v1_stale_phx_close_after_a_duplicate_join_does_not_close_the_new_channel() -> None:
    h = FakeClient("1.0.0", heartbeat_interval=None)
    old, _, old_join = h.joined(LOBBY)
    new = h.channel(LOBBY)
    h.join(new)
    leave, join = h.sent()
    h.recv(reply(join, "ok", vsn="1.0.0"))
    # V1: no join_ref on the wire; the dead join's ref travels in `ref`.
    h.recv(f'{{"event":"phx_close","payload":{{}},"ref":"{old_join.ref}","topic":"{LOBBY}"}}')
    h.recv(reply(leave, "ok", vsn="1.0.0"))
    assert new.state is S.JOINED and old.state is S.CLOSED
    h.recv(f'{{"event":"phx_close","payload":{{}},"ref":"{join.ref}","topic":"{LOBBY}"}}')
    assert new.state is S.CLOSED  # the current join's close does apply


def test_v1_phx_error_for_the_current_join_errors_the_channel() -> None:
    h = FakeClient("1.0.0", heartbeat_interval=None)
    ch, _, join = h.joined(LOBBY)
    h.recv(f'{{"event":"phx_error","payload":{{}},"ref":"{join.ref}","topic":"{LOBBY}"}}')
    assert ch.state is S.ERRORED
    h.advance(1.0)
    (rejoin,) = h.sent()
    assert rejoin.event == "phx_join" and rejoin.join_ref == rejoin.ref != join.ref


def test_v1_heartbeat_frame_has_no_join_ref_key() -> None:
    h = FakeClient("1.0.0", start=100.0)
    h.at(130.0)
    (hb,) = h.sent()
    assert hb.raw == f'{{"topic":"phoenix","event":"heartbeat","payload":{{}},"ref":"{hb.ref}"}}'


# -- shutdown ----------------------------------------------------------------------------------


def test_shutdown_ends_every_wait_and_closes_every_channel() -> None:
    h = FakeClient()
    joined, _, _ = h.joined(LOBBY)
    sent_push = h.push(joined, "x")
    joining = h.channel("room:joining")
    join_waiter = h.join(joining)
    buffered = h.push(joining, "y")
    ping = h.ping()
    h.session.shutdown()
    h.advance(0.0)
    assert h.status(sent_push) == "lost"  # in flight when the connection went
    assert h.status(buffered) == "client_closed"
    assert h.status(join_waiter) == "client_closed"
    assert h.status(ping) == "lost"
    assert joined.state is S.CLOSED and joining.state is S.CLOSED
    assert h.session.channels() == [] and h.session.pending_count == 0
    assert h.session.next_deadline() is None
    closes = [e for e in h.session.events if isinstance(e, ChannelStateChanged) and e.new is S.CLOSED]
    assert {e.reason for e in closes[-2:]} == {"client_closed"}


def test_connection_closed_twice_is_harmless() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    h.drop()
    changes = len(h.changes(ch))
    h.drop()
    assert len(h.changes(ch)) == changes


def test_unsent_frames_are_dropped_with_the_connection() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    h.session.push(ch, "x", "{}", h.now, 10.0, None)
    assert h.session.outgoing
    h.session.connection_closed(h.now)
    assert not h.session.outgoing


def test_refs_are_decimal_strings_from_one_counter() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    h.push(ch, "a")
    h.ping()
    h.leave(ch)
    assert [s.ref for s in h.wire] == ["1", "2", "3", "4"]


def test_pushing_to_a_closed_or_leaving_channel_raises() -> None:
    h = FakeClient()
    ch, _, _ = h.joined(LOBBY)
    h.leave(ch)
    with pytest.raises(ChannelClosedError):
        h.push(ch, "x")


def test_moves_into_unreported_states_are_not_emitted_and_the_others_still_are() -> None:
    h = FakeClient()
    h.session.unreported_states = frozenset({S.JOINING, S.LEAVING})
    ch = h.channel(LOBBY)
    waiter = h.join(ch)
    (join,) = h.sent()
    h.recv(reply(join, "ok"))
    assert h.status(waiter) == "ok"
    leave = h.leave(ch)
    (sent_leave,) = h.sent()  # sent() drains what went out since the last call
    h.recv(reply(sent_leave, "ok"))
    assert h.status(leave) == "ok"
    assert [new for _, new, _ in h.changes(ch)] == ["joined", "closed"]
