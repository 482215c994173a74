"""Channel semantics over a real connection (reference §2.3, §3)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from maxsdk.server import Channel, ChannelSocket, JoinRefCheck, PhoenixServer, Reply, ServerSettings, Stop, error, ok
from maxsdk.server.reference_app import EchoChannel, RoomChannel

from .conftest import ClientFactory, ServerFactory
from .wire import WireClient

OK_EMPTY = {"response": {}, "status": "ok"}
UNMATCHED = {"response": {"reason": "unmatched topic"}, "status": "error"}


def join_room(client: WireClient, topic: str = "room:lobby", ref: str = "1", payload: Any = None) -> list[Any]:
    """Join a reference room; returns [reply, presence_diff, presence_state]."""
    reply = client.join(topic, payload, ref=ref)
    assert reply[4]["status"] == "ok", reply
    return [reply, *client.recv_many(2)]


def test_join_reply_then_presence(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    reply, diff, state = join_room(client)
    assert reply == ["1", "1", "room:lobby", "phx_reply", {"response": {"joined": "room:lobby"}, "status": "ok"}]
    assert diff[:4] == [None, None, "room:lobby", "presence_diff"]
    assert state[:4] == ["1", None, "room:lobby", "presence_state"]
    assert list(state[4]) == ["anon"]


def test_replies_carry_the_channel_join_ref_and_the_message_ref(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, ref="5")
    client.send(["5", "6", "room:lobby", "echo", {"a": 1}])
    assert client.recv_json() == ["5", "6", "room:lobby", "phx_reply", {"response": {"a": 1}, "status": "ok"}]
    client.send(["5", "7", "room:lobby", "echo_error", {"b": 2}])
    assert client.recv_json() == ["5", "7", "room:lobby", "phx_reply", {"response": {"b": 2}, "status": "error"}]
    client.send(["5", "8", "room:lobby", "no_such", {}])
    assert client.recv_json()[4] == {"response": {"event": "no_such", "reason": "unknown event"}, "status": "error"}


def test_heartbeat_with_null_ref(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    client.send([None, None, "phoenix", "heartbeat", {}])
    assert client.recv_json() == [None, None, "phoenix", "phx_reply", OK_EMPTY]


def test_unmatched_topics(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    client.send(["3", "3", "nope:topic", "phx_join", {}])
    assert client.recv_json() == [None, "3", "nope:topic", "phx_reply", UNMATCHED]
    client.send(["3", "4", "room:not_joined", "echo", {}])
    assert client.recv_json() == [None, "4", "room:not_joined", "phx_reply", UNMATCHED]
    # Leaving what is not joined: plain ok, no phx_close (§3.3).
    client.send(["9", "5", "room:not_joined", "phx_leave", {}])
    assert client.recv_json() == ["9", "5", "room:not_joined", "phx_reply", OK_EMPTY]
    client.heartbeat()


def test_leave_replies_then_closes(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, "room:x", ref="11")
    client.send(["11", "12", "room:x", "phx_leave", {}])
    assert client.recv_json() == ["11", "12", "room:x", "phx_reply", OK_EMPTY]
    assert client.recv_json() == ["11", "11", "room:x", "phx_close", {}]
    client.send(["11", "13", "room:x", "echo", {}])
    assert client.recv_json() == [None, "13", "room:x", "phx_reply", UNMATCHED]


def test_duplicate_join_reply_first_then_close_of_the_old_join(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, ref="16")
    client.send(["17", "17", "room:lobby", "phx_join", {}])
    joined = {"response": {"joined": "room:lobby"}, "status": "ok"}
    assert client.recv_json() == ["17", "17", "room:lobby", "phx_reply", joined]
    assert client.recv_json() == ["16", "16", "room:lobby", "phx_close", {}]
    diff, state = client.recv_many(2)
    assert diff[3] == "presence_diff" and diff[4]["leaves"] == {}
    assert state[0] == "17" and len(state[4]["anon"]["metas"]) == 1


def test_duplicate_join_waits_for_the_old_channel_and_calls_terminate(
    make_server: ServerFactory, connect: ClientFactory
) -> None:
    terminated: list[tuple[str, Any]] = []

    class Tracked(Channel):
        def terminate(self, reason: str, socket: ChannelSocket) -> None:
            terminated.append((reason, socket.join_ref))

    server = make_server([("t:*", Tracked)])
    client = connect(server)
    assert client.join("t:1", ref="1")[4]["status"] == "ok"
    assert client.join("t:1", ref="2") == ["2", "2", "t:1", "phx_reply", OK_EMPTY]
    assert client.recv_json() == ["1", "1", "t:1", "phx_close", {}]
    assert terminated == [("shutdown:duplicate_join", "1")]


def test_failed_duplicate_join_still_closes_the_old_one(make_server: ServerFactory, connect: ClientFactory) -> None:
    class Once(Channel):
        joins = 0

        def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
            Once.joins += 1
            return ok() if Once.joins == 1 else error({"reason": "no"})

    server = make_server([("t:*", Once)])
    client = connect(server)
    client.join("t:1", ref="1")
    assert client.join("t:1", ref="2")[4] == {"response": {"reason": "no"}, "status": "error"}
    assert client.recv_json() == ["1", "1", "t:1", "phx_close", {}]
    client.send(["1", "3", "t:1", "x", {}])
    assert client.recv_json() == [None, "3", "t:1", "phx_reply", UNMATCHED]


def stale_outcome(client: WireClient, join_ref: Any, ref: str) -> Any:
    """Send an echo with ``join_ref``; the echo reply, or None if it was dropped (heartbeat barrier).

    The join_ref check runs on the reader thread before the heartbeat is read,
    and echo replies come from the same channel, so a second, valid echo acts
    as a barrier for the first.
    """
    client.send([join_ref, ref, "room:lobby", "echo", {"n": ref}])
    client.send(["17", "barrier" + ref, "room:lobby", "echo", {}])
    first = client.recv_json()
    if first[1] == "barrier" + ref:
        return None
    assert client.recv_json()[1] == "barrier" + ref
    return first


@pytest.mark.parametrize(
    ("mode", "stale", "null"),
    [("1.8.12", False, True), ("1.8.3", False, False), ("none", True, True)],
)
def test_stale_join_ref_modes(
    make_server: ServerFactory, connect: ClientFactory, mode: JoinRefCheck, stale: bool, null: bool
) -> None:
    server = make_server(settings=ServerSettings(join_ref_check=mode))
    client = connect(server)
    join_room(client, ref="17")
    reply = stale_outcome(client, "16", "1")
    assert (reply is not None) == stale
    if reply is not None:
        assert reply[0] == "17"  # replies carry the channel's join_ref, not the message's
    assert (stale_outcome(client, None, "2") is not None) == null
    assert stale_outcome(client, "17", "3") is not None


def test_stale_leave_is_ignored_without_join_ref_check(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(join_ref_check="none"))
    client = connect(server)
    join_room(client, ref="17")
    client.send(["16", "1", "room:lobby", "phx_leave", {}])
    client.send(["17", "2", "room:lobby", "echo", {}])
    assert client.recv_json()[1] == "2"


def test_max_channels_per_transport(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(max_channels_per_transport=3))
    client = connect(server)
    for n in range(3):
        assert client.join(f"echo:{n}", ref=str(n))[4]["status"] == "ok"
    assert client.join("echo:3", ref="3") == [
        "3",
        "3",
        "echo:3",
        "phx_reply",
        {"response": {"reason": "too many channels joined"}, "status": "error"},
    ]
    # A duplicate join replaces, it does not count twice.
    assert client.join("echo:0", ref="4")[4]["status"] == "ok"
    assert client.recv_json()[3] == "phx_close"
    client.send(["1", "5", "echo:1", "phx_leave", {}])
    client.recv_many(2)
    assert client.join("echo:3", ref="6")[4]["status"] == "ok"


def test_default_limit_is_100(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    for n in range(100):
        client.send([str(n), str(n), f"echo:{n}", "phx_join", {}])
    replies = client.recv_many(100)
    assert all(r[4]["status"] == "ok" for r in replies)
    assert client.join("echo:100", ref="x")[4]["response"] == {"reason": "too many channels joined"}


def test_crash_sends_phx_error_and_the_channel_is_gone(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, ref="1")
    client.send(["1", "15", "room:lobby", "crash", {}])
    assert client.recv_json() == ["1", "1", "room:lobby", "phx_error", {"reason": "channel_crash"}]
    client.send(["1", "16", "room:lobby", "echo", {}])
    assert client.recv_json() == [None, "16", "room:lobby", "phx_reply", UNMATCHED]
    join_room(client, ref="17")


def test_legacy_crash_payload(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(crash_payload={}))
    client = connect(server)
    join_room(client, ref="1")
    client.send(["1", "2", "room:lobby", "crash", {}])
    assert client.recv_json() == ["1", "1", "room:lobby", "phx_error", {}]


def test_join_crash_and_refusal(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    assert client.join("room:crash_on_join", ref="13")[4] == {"response": {"reason": "join crashed"}, "status": "error"}
    assert client.join("room:private", {"password": "nope"}, ref="10")[4]["response"] == {"reason": "unauthorized"}
    join_room(client, "room:private", ref="11", payload={"password": "pw"})


def test_stop_with_and_without_reply(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, "room:c1", ref="19")
    client.send(["19", "20", "room:c1", "close_channel", {}])
    assert client.recv_json() == ["19", "19", "room:c1", "phx_close", {}]
    join_room(client, "room:c2", ref="21")
    client.send(["21", "22", "room:c2", "close_channel_reply", {}])
    assert client.recv_json() == ["21", "22", "room:c2", "phx_reply", {"response": {"closing": True}, "status": "ok"}]
    assert client.recv_json() == ["21", "21", "room:c2", "phx_close", {}]


class Stopper(Channel):
    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        if event == "custom":
            return Reply("accepted", {"x": 1})
        return Stop(event, reply=ok({"stopping": event}))


@pytest.mark.parametrize(
    ("reason", "exit_event"), [("shutdown", "phx_close"), ("shutdown:bye", "phx_close"), ("boom", "phx_error")]
)
def test_stop_reason_decides_close_or_error(
    make_server: ServerFactory, connect: ClientFactory, reason: str, exit_event: str
) -> None:
    server = make_server([("s:*", Stopper)])
    client = connect(server)
    client.join("s:1", ref="1")
    client.send(["1", "2", "s:1", "custom", {}])
    assert client.recv_json()[4] == {"response": {"x": 1}, "status": "accepted"}
    client.send(["1", "3", "s:1", reason, {}])
    assert client.recv_json()[4] == {"response": {"stopping": reason}, "status": "ok"}
    assert client.recv_json()[3] == exit_event


def test_slow_handler_blocks_neither_heartbeats_nor_other_channels(
    server: PhoenixServer, connect: ClientFactory
) -> None:
    client = connect(server)
    join_room(client, "room:a", ref="1")
    join_room(client, "room:b", ref="2")
    started = time.monotonic()
    client.send(["1", "10", "room:a", "slow", {"ms": 1500}])
    client.send(["1", "11", "room:a", "echo", {"after": "slow"}])
    client.heartbeat()
    client.send(["2", "12", "room:b", "echo", {"b": True}])
    assert client.recv_json()[1] == "12"
    assert time.monotonic() - started < 1.0
    # The slow channel keeps its own order.
    assert client.recv_json()[:2] == ["1", "10"]
    assert client.recv_json()[:2] == ["1", "11"]
    assert time.monotonic() - started >= 1.5


def test_broadcast_reaches_every_subscriber(server: PhoenixServer, connect: ClientFactory) -> None:
    alice, bob = connect(server, user_id="alice"), connect(server, user_id="bob")
    join_room(alice, ref="1")
    join_room(bob, ref="9")
    alice.recv_json()  # bob's presence_diff
    alice.send(["1", "2", "room:lobby", "shout", {"msg": "hi"}])
    assert alice.recv_json() == [None, None, "room:lobby", "shout", {"msg": "hi"}]
    assert alice.recv_json() == ["1", "2", "room:lobby", "phx_reply", OK_EMPTY]
    assert bob.recv_json() == [None, None, "room:lobby", "shout", {"msg": "hi"}]
    assert server.broadcast("room:lobby", "news", {"n": 1}) == 2
    assert bob.recv_json() == [None, None, "room:lobby", "news", {"n": 1}]


class Gossip(Channel):
    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        sent = socket.broadcast_from(event, payload)
        return ok({"sent": sent})


def test_broadcast_from_skips_the_sender(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server([("g:*", Gossip)])
    one, two = connect(server), connect(server)
    one.join("g:1")
    two.join("g:1")
    one.send(["1", "2", "g:1", "psst", {"a": 1}])
    assert one.recv_json() == ["1", "2", "g:1", "phx_reply", {"response": {"sent": 1}, "status": "ok"}]
    assert two.recv_json() == [None, None, "g:1", "psst", {"a": 1}]


def test_binary_kinds(server: PhoenixServer, connect: ClientFactory) -> None:
    client, other = connect(server), connect(server, user_id="o")
    join_room(client, ref="17")
    join_room(other, ref="3")
    client.recv_json()  # other's presence_diff
    head = bytes([0, 2, 2, 10, 11]) + b"1724room:lobbybinary_echo"
    client.send(head + b"\x00\x01\x02\xfa\xff")
    assert client.recv() == bytes([1, 2, 2, 10, 2]) + b"1724room:lobbyok" + b"\x00\x01\x02\xfa\xff"
    client.send(["17", "25", "room:lobby", "push_binary", {}])
    assert client.recv() == bytes([0, 2, 10, 3]) + b"17room:lobbybin\x01\x02\x03\xff"
    assert client.recv_json() == ["17", "25", "room:lobby", "phx_reply", OK_EMPTY]
    client.send(bytes([0, 2, 2, 10, 5]) + b"1726room:lobbyshout" + b"\x00bin\xff")
    broadcast = bytes([2, 10, 5]) + b"room:lobbyshout\x00bin\xff"
    assert client.recv() == broadcast
    assert other.recv() == broadcast
    assert client.recv_json() == ["17", "26", "room:lobby", "phx_reply", OK_EMPTY]


def test_v1_binary_push_crashes_the_channel(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server, vsn="1.0.0")
    client.send({"topic": "room:lobby", "event": "phx_join", "payload": {}, "ref": "1", "join_ref": "1"})
    client.recv_many(3)
    client.send({"topic": "room:lobby", "event": "push_binary", "payload": {}, "ref": "2", "join_ref": "1"})
    crashed = {"event": "phx_error", "payload": {"reason": "channel_crash"}, "ref": "1", "topic": "room:lobby"}
    assert client.recv_json() == crashed


def test_v1_binary_frame_closes_with_1011(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server, vsn="1.0.0")
    client.send(bytes([0, 1, 1, 10, 4]) + b"12room:lobbyecho")
    assert client.expect_close() == (1011, "")


@pytest.mark.parametrize("frame", ["this is not json", '["1","1","room:lobby"]', '{"a":1}', "[1,2,3,4,5]"])
def test_malformed_frames_close_with_1011(server: PhoenixServer, connect: ClientFactory, frame: str) -> None:
    client = connect(server)
    client.send(frame)
    assert client.expect_close() == (1011, "")
    closed = server.wait_for_event(lambda e: e.kind == "closed")
    assert closed.code == 1011


class Later(Channel):
    """Replies later via socket_ref, and pushes from handle_info."""

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> None:
        socket.send_self(("answer", socket.socket_ref(), payload), delay=0.05)
        return None

    def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        _, ref, payload = message
        socket.push("note", {"before": "reply"})
        socket.reply(ref, ok(payload))
        return None


def test_async_reply_via_socket_ref(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server([("l:*", Later)])
    client = connect(server)
    client.join("l:1", ref="1")
    client.send(["1", "2", "l:1", "ask", {"q": 1}])
    assert client.recv_json() == ["1", None, "l:1", "note", {"before": "reply"}]
    assert client.recv_json() == ["1", "2", "l:1", "phx_reply", {"response": {"q": 1}, "status": "ok"}]


class PushInJoin(Channel):
    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        socket.push("early", {})
        return None


def test_push_during_join_is_an_error_like_phoenix(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server([("p:*", PushInJoin)])
    client = connect(server)
    assert client.join("p:1")[4] == {"response": {"reason": "join crashed"}, "status": "error"}


@pytest.mark.timeout(60)
def test_a_thousand_channels_on_one_connection(make_server: ServerFactory, connect: ClientFactory) -> None:
    # A bounded worker pool serves every channel: no thread per channel (the pool may grow
    # to its bound under load, which is why the bound is set here rather than assumed).
    server = make_server(
        [("echo:*", EchoChannel)], settings=ServerSettings(max_channels_per_transport=None, max_workers=32)
    )
    client = connect(server)
    threads_before = threading.active_count()
    for n in range(1000):
        client.send([str(n), str(n), f"echo:{n}", "phx_join", {}])
    assert all(reply[4]["status"] == "ok" for reply in client.recv_many(1000))
    for n in range(1000):
        client.send([str(n), f"m{n}", f"echo:{n}", "ping", {"n": n}])
    replies = client.recv_many(1000)
    assert sorted(r[4]["response"]["n"] for r in replies) == list(range(1000))
    assert threading.active_count() - threads_before <= 32


def test_room_channel_is_importable_for_custom_routes(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server([("lobby", RoomChannel)])
    client = connect(server)
    assert client.join("lobby")[4]["status"] == "ok"
    client.recv_many(2)
    assert client.join("lobby2", ref="2")[4]["response"] == {"reason": "unmatched topic"}


def test_join_while_leaving_sends_one_close_for_the_old_join(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client, ref="1")
    client.send(["1", "2", "room:lobby", "phx_leave", {}])
    client.send(["3", "3", "room:lobby", "phx_join", {}])
    frames = client.recv_many(5)
    events = [(f[0], f[1], f[3]) for f in frames]
    assert events.count(("1", "1", "phx_close")) == 1
    assert ("1", "2", "phx_reply") in events and ("3", "3", "phx_reply") in events
    client.heartbeat()
