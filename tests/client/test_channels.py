"""Channels against the embedded server: join, push, replies, leave, crashes (checklist 13-28)."""

from __future__ import annotations

import threading

import pytest

import maxsdk
from maxsdk import ChannelState, Client, signals
from maxsdk.server import ServerSettings
from tests.client.helpers import Inbox, SignalLog, fast_client


@pytest.fixture
def client(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    yield client
    client.close()


def test_checklist_13_join_carries_join_ref_equal_to_ref(client, phoenix_server):
    room = client.join("room:lobby", {"k": "v"})
    assert room.state is ChannelState.JOINED
    assert room.join_response == {"joined": "room:lobby"}
    join = phoenix_server.wait_for_message(event="phx_join", topic="room:lobby")
    assert join.join_ref == join.ref == room.join_ref
    assert join.payload == {"k": "v"}


def test_checklist_14_unmatched_topic_join_is_refused(client):
    with pytest.raises(maxsdk.JoinError) as info:
        client.join("nope:topic")
    assert info.value.reason == "unmatched topic"
    assert info.value.topic == "nope:topic"


def test_join_refused_with_reason_leaves_the_channel_closed(client):
    channel = client.channel("room:private", {"password": "nope"})
    with pytest.raises(maxsdk.JoinError) as info:
        channel.join()
    assert info.value.reason == "unauthorized"
    assert channel.state is ChannelState.CLOSED
    channel.params = {"password": "pw"}
    assert channel.join().joined


def test_join_crash_reports_join_crashed(client):
    with pytest.raises(maxsdk.JoinError, match="join crashed"):
        client.join("room:crash_on_join")


def test_checklist_15_refused_rejoins_retry_on_the_rejoin_schedule(client, phoenix_server):
    log = SignalLog(client)
    room = client.join("room:lobby")
    phoenix_server.refuse_joins("room:*", reason="maintenance")
    phoenix_server.crash_channel("room:lobby")
    failures = log.wait_for("channel_rejoin_failed", count=3)
    assert failures["response"] == {"reason": "maintenance"}
    assert room.state is ChannelState.ERRORED
    times = [t for name, _, t, _ in log.records if name == "channel_rejoin_failed"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18, gaps  # rejoin steps 0.05, 0.1, 0.2 (+ reply time)
    phoenix_server.allow_joins()
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    assert room.push("echo", {"back": True}).response == {"back": True}


def test_checklist_16_join_timeout_leaves_and_raises(client, phoenix_server):
    phoenix_server.withhold_replies()
    channel = client.channel("room:lobby")
    with pytest.raises(maxsdk.JoinTimeoutError):
        channel.join(timeout=0.3)
    assert channel.state is ChannelState.CLOSED
    leave = phoenix_server.wait_for_message(event="phx_leave", topic="room:lobby")
    assert leave.join_ref == channel.join_ref


def test_checklist_17_pushes_while_joining_are_buffered_and_flushed_in_order(client, phoenix_server):
    phoenix_server.delay_replies(0.3)
    channel = client.channel("room:lobby")
    joiner = threading.Thread(target=channel.join)
    joiner.start()
    phoenix_server.wait_for_message(event="phx_join")
    pending = [channel.push_nowait("echo", {"n": n}) for n in range(3)]
    joiner.join(5)
    assert [p.wait().response for p in pending] == [{"n": 0}, {"n": 1}, {"n": 2}]
    pushes = [m for m in phoenix_server.messages() if m.event == "echo"]
    assert [m.payload["n"] for m in pushes] == [0, 1, 2]
    assert {m.join_ref for m in pushes} == {channel.join_ref}


def test_checklist_17_buffered_push_times_out_from_when_it_was_made(client, phoenix_server):
    phoenix_server.delay_replies(0.6)
    channel = client.channel("room:lobby")
    joiner = threading.Thread(target=channel.join)
    joiner.start()
    phoenix_server.wait_for_message(event="phx_join")
    pending = channel.push_nowait("echo", {"late": True}, timeout=0.2)
    with pytest.raises(maxsdk.ReplyTimeoutError):
        pending.wait()
    joiner.join(5)
    assert channel.joined
    channel.push("echo", {"after": True})
    assert not [m for m in phoenix_server.messages() if m.payload == {"late": True}], "a timed-out push was sent"


def test_checklist_18_replies_ok_error_and_timeout(client):
    room = client.join("room:lobby")
    assert room.push("echo", {"a": 1}).response == {"a": 1}
    with pytest.raises(maxsdk.ReplyError) as info:
        room.push("echo_error", {"why": "x"})
    assert info.value.status == "error"
    assert info.value.response == {"why": "x"}
    assert info.value.reply.ref
    with pytest.raises(maxsdk.ReplyTimeoutError) as timeout:
        room.push("noreply", {}, timeout=0.2)
    assert not isinstance(timeout.value, maxsdk.ReplyLostError)
    assert isinstance(timeout.value, TimeoutError)


def test_push_nowait_and_done_callback_runs_on_dispatcher(client):
    room = client.join("room:lobby")
    done = Inbox()
    pending = room.push_nowait("echo", {"x": 1})
    pending.add_done_callback(done)
    assert pending.wait().response == {"x": 1}
    (result,) = done.wait_count(1)
    assert result is pending and pending.done()
    assert done.threads == {f"{client._engine.name}-dispatch"}


def test_checklist_19_every_channel_message_carries_the_current_join_ref(client, phoenix_server):
    room = client.join("room:lobby")
    room.push("echo", {})
    room.push("shout", {"m": 1})
    room.leave()
    sent = [m for m in phoenix_server.messages() if m.topic == "room:lobby"]
    assert len(sent) == 4
    assert {m.join_ref for m in sent} == {sent[0].ref}


def test_checklist_20_stale_join_ref_is_dropped_null_join_ref_delivered(client, phoenix_server):
    room = client.join("room:lobby")
    inbox = Inbox()
    room.on("note", inbox)
    phoenix_server.send_raw('["999",null,"room:lobby","note",{"stale":true}]')
    phoenix_server.send_raw(f'["{room.join_ref}",null,"room:lobby","note",{{"current":true}}]')
    phoenix_server.send_raw('[null,null,"room:lobby","note",{"broadcast":true}]')
    assert inbox.wait_count(2) == [{"current": True}, {"broadcast": True}]
    room.push("echo", {})  # a round trip: anything else would have arrived by now
    assert len(inbox.items) == 2
    assert client.diagnostics().stale_dropped >= 1


def test_checklist_21_push_to_a_never_joined_topic_is_refused_locally(client, phoenix_server):
    channel = client.channel("room:never")
    with pytest.raises(maxsdk.ChannelClosedError):
        channel.push("echo", {})
    assert not [m for m in phoenix_server.messages() if m.topic == "room:never"]


def test_checklist_22_leave_completes_and_ignores_the_following_phx_close(client, phoenix_server):
    log = SignalLog(client)
    room = client.join("room:lobby")
    room.leave()
    assert room.state is ChannelState.CLOSED
    phoenix_server.wait_for_message(event="phx_leave")
    closed = log.wait_for("channel_closed")
    assert closed["reason"] == "left"
    with pytest.raises(maxsdk.ChannelClosedError):
        room.push("echo", {})
    client.join("room:other").push("echo", {})
    assert len(log.of("channel_closed")) == 1


def test_checklist_23_joining_a_topic_again_leaves_the_old_channel(client, phoenix_server):
    log = SignalLog(client)
    first = client.join("room:lobby")
    second = client.join("room:lobby")
    assert first.state is ChannelState.CLOSED
    assert second.joined
    assert log.wait_for("channel_closed")["reason"] == "replaced"
    # The server's phx_close for the first join_ref arrives after; it must not touch the second.
    assert second.push("echo", {"still": "here"}).response == {"still": "here"}
    assert second.joined


def test_checklist_24_crash_errors_then_rejoins_with_new_join_ref_and_same_params(client, phoenix_server):
    log = SignalLog(client)
    calls = []
    room = client.channel("room:lobby", lambda: calls.append(1) or {"n": len(calls)})
    room.join()
    old = room.join_ref
    room.push_nowait("crash", {})
    errored = log.wait_for("channel_errored")
    assert errored["reason"] == "crashed"
    assert errored["response"] == {"reason": "channel_crash"}
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    assert room.join_ref != old
    joins = [m.payload for m in phoenix_server.messages() if m.event == "phx_join"]
    assert joins == [{"n": 1}, {"n": 2}]


def test_checklist_25_server_close_closes_for_good(client, phoenix_server):
    log = SignalLog(client)
    room = client.join("room:closeme")
    room.push_nowait("close_channel", {})
    assert log.wait_for("channel_closed")["reason"] == "closed_by_server"
    assert room.state is ChannelState.CLOSED
    client.join("room:sync").push("echo", {})
    assert not log.of("channel_joined")[2:], "a server-closed channel must not rejoin"


def test_checklist_26_on_returns_refs_and_off_removes_one_or_all(client, phoenix_server):
    room = client.join("room:lobby")
    a, b = Inbox(), Inbox()
    ref_a = room.on("shout", a)
    room.on("shout", b)
    room.off("shout", ref_a)
    room.push("shout", {"n": 1})
    b.wait_count(1)
    room.off("shout")
    room.push("shout", {"n": 2})
    room.push("echo", {})
    assert a.items == [] and b.items == [{"n": 1}]


def test_checklist_26_on_as_decorator(client):
    room = client.join("room:lobby")
    inbox = Inbox()

    @room.on("shout")
    def handler(payload):
        inbox(payload)

    room.push("shout", {"d": 1})
    assert inbox.wait_count(1) == [{"d": 1}]


def test_checklist_27_message_hook_and_socket_level_hook(client):
    room = client.join("room:lobby")
    seen = Inbox()
    client.on_signal(signals.message_received, lambda _c, message: seen(message))
    room.message_hook = lambda event, payload: {**payload, "hooked": event}
    inbox = Inbox()
    room.on("shout", inbox)
    room.push("shout", {"m": 1})
    assert inbox.wait_count(1) == [{"m": 1, "hooked": "shout"}]
    seen.wait_until(lambda items: {"shout", "phx_reply"} <= {m.event for m in items})


def test_checklist_28_101st_channel_is_refused(phoenix_server_factory):
    # Without sharding (max_channels_per_socket=None) the server's refusal is the caller's.
    server = phoenix_server_factory(settings=ServerSettings(max_channels_per_transport=5))
    with fast_client(server.url, max_channels_per_socket=None) as client:
        for n in range(5):
            client.join(f"room:{n}")
        with pytest.raises(maxsdk.JoinError, match="too many channels joined"):
            client.join("room:5")
        assert client.sockets == 1


def test_checklist_28_a_cap_refusal_moves_the_join_to_another_socket(phoenix_server_factory):
    # The server's cap (5) is below the client's (100): its refusal opens a second socket.
    server = phoenix_server_factory(settings=ServerSettings(max_channels_per_transport=5))
    with fast_client(server.url) as client:
        rooms = [client.join(f"room:{n}") for n in range(8)]
        assert client.sockets == 2
        assert all(room.push("echo", {"n": n}).response == {"n": n} for n, room in enumerate(rooms))
        assert len(client.diagnostics().channels) == 8


def test_binary_push_reply_server_push_and_broadcast(client, phoenix_server):
    room = client.join("room:lobby")
    assert room.push("binary_echo", b"\x00\x01\x02\xfa\xff").response == b"\x00\x01\x02\xfa\xff"
    assert room.push("binary_echo", b"").response == b""
    pushes, shouts = Inbox(), Inbox()
    room.on("bin", pushes)
    room.on("shout", shouts)
    room.push("push_binary", {})
    assert pushes.wait_count(1) == [b"\x01\x02\x03\xff"]
    room.push("shout", b"\x00bin\xff")
    assert shouts.wait_count(1) == [b"\x00bin\xff"]


def test_binary_push_limits_are_checked_before_sending(client):
    room = client.join("room:lobby")
    with pytest.raises(maxsdk.LocalProtocolError):
        room.push("é" * 200, b"x")
    with pytest.raises(maxsdk.LocalProtocolError):
        room.push("echo", {"nan": float("nan")})


def test_reserved_events_cannot_be_pushed(client):
    room = client.join("room:lobby")
    with pytest.raises(maxsdk.LocalProtocolError):
        room.push("phx_join", {})


def test_v1_serializer_refuses_binary(phoenix_server):
    with Client(phoenix_server.url, vsn="1.0.0") as client, pytest.raises(maxsdk.LocalProtocolError):
        client.join("room:lobby").push("binary_echo", b"\x00")


def test_presence_is_synced_for_several_clients(phoenix_server):
    with fast_client(phoenix_server.url, params={"user_id": "ann"}) as a:
        room = a.join("room:lobby")
        assert room.presence.wait_synced(5)
        joined, left = Inbox(), Inbox()
        room.presence.on_join(lambda key, cur, new: joined(key))
        room.presence.on_leave(lambda key, cur, gone: left(key))
        with fast_client(phoenix_server.url, params={"user_id": "ben"}) as b:
            b.join("room:lobby")
            assert "ben" in joined.wait_count(1)
            assert sorted(room.presence.keys()) == ["ann", "ben"]
        assert left.wait_count(1) == ["ben"]
        assert room.presence.keys() == ["ann"]
        assert room.presence.get("ann")["metas"][0]["phx_ref"]
