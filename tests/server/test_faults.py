"""Scripted faults: each switch and action, observed by a raw client."""

from __future__ import annotations

import threading
import time

import pytest
import websocket

from maxsdk.server import PhoenixServer

from .conftest import ClientFactory, ServerFactory
from .test_channels import UNMATCHED, join_room
from .wire import WireClient

HB_OK = {"response": {}, "status": "ok"}


def test_drop_connections(server: PhoenixServer, connect: ClientFactory) -> None:
    one, two = connect(server), connect(server)
    server.wait_for_connections(2)
    assert server.drop_connections() == 2
    one.expect_drop()
    two.expect_drop()
    server.wait_for_connections(0)
    assert [e.code for e in server.events() if e.kind == "closed"] == [1006, 1006]


def test_close_connections_with_code(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    server.wait_for_connections(1)
    reading = []
    # close_connections blocks until the handshake completes, so read concurrently.
    reader = threading.Thread(target=lambda: reading.append(client.expect_close()))
    reader.start()
    assert server.close_connections(4000, "maintenance") == 1
    reader.join(5)
    assert reading == [(4000, "maintenance")]
    server.wait_for_connections(0)


def test_heartbeats_pause_and_resume(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client)
    server.pause_heartbeats()
    client.send([None, "h1", "phoenix", "heartbeat", {}])
    client.send(["1", "e1", "room:lobby", "echo", {}])
    assert client.recv_json()[1] == "e1"  # the heartbeat was never answered
    server.wait_for_message(lambda m: m.ref == "h1")
    server.resume_heartbeats()
    client.heartbeat("h2")


def test_delay_replies(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client)
    server.delay_replies(0.8)
    started = time.monotonic()
    client.send(["1", "2", "room:lobby", "echo", {}])
    client.heartbeat()  # heartbeats are not delayed by default
    assert time.monotonic() - started < 0.6
    assert client.recv_json()[1] == "2"
    assert time.monotonic() - started >= 0.8
    server.delay_replies(0.3, heartbeats=True)
    started = time.monotonic()
    client.heartbeat()
    assert time.monotonic() - started >= 0.3
    server.delay_replies(0)
    client.heartbeat()


def test_withhold_and_release_replies(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client)
    server.withhold_replies()
    client.send(["1", "2", "room:lobby", "echo", {"n": 2}])
    client.send(["1", "3", "room:lobby", "shout", {"m": 1}])
    assert client.recv_json()[3] == "shout"  # pushes and broadcasts still flow
    client.heartbeat()
    server.wait_for_message(lambda m: m.ref == "3")
    assert server.release_replies() == 2
    assert [client.recv_json()[1] for _ in range(2)] == ["2", "3"]
    server.withhold_replies(heartbeats=True)
    client.send([None, "h", "phoenix", "heartbeat", {}])
    server.wait_for_message(lambda m: m.ref == "h")
    assert server.release_replies(send=False) == 1
    client.heartbeat("h2")


def test_refuse_and_allow_joins(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    server.refuse_joins("room:secret*", reason="maintenance")
    assert client.join("room:secret1", ref="1")[4] == {"response": {"reason": "maintenance"}, "status": "error"}
    join_room(client, "room:open", ref="2")
    server.refuse_joins()
    assert client.join("room:open2", ref="3")[4]["response"] == {"reason": "join refused"}
    server.allow_joins("*")
    assert client.join("room:secret1", ref="4")[4]["status"] == "error"
    server.allow_joins()
    join_room(client, "room:secret1", ref="5")


def test_refuse_connections_until_accepted(server: PhoenixServer, connect: ClientFactory) -> None:
    server.refuse_connections(503)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(server.url + "?vsn=2.0.0", timeout=5)
    assert refused.value.status_code == 503
    server.refuse_connections(403)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(server.url + "?vsn=2.0.0", timeout=5)
    assert refused.value.status_code == 403
    server.accept_connections()
    connect(server).heartbeat()


def test_send_raw_frames(server: PhoenixServer, connect: ClientFactory) -> None:
    # "one" is registered before "two" connects, so it is connections[0] (see below).
    one = connect(server)
    server.wait_for_connections(1)
    two = connect(server)
    server.wait_for_connections(2)
    assert server.send_raw("this is not json") == 2
    assert one.recv() == "this is not json"
    assert two.recv() == "this is not json"
    target = server.connections[0].connection_id
    assert server.send_raw(b"\x07\x00garbage", connection_id=target) == 1
    assert one.recv() == b"\x07\x00garbage"


def test_crash_channel_by_topic(server: PhoenixServer, connect: ClientFactory) -> None:
    # "a" has joined (so its connection is registered) before "b" connects: the server
    # registers a connection on its own thread after the handshake, so two connections
    # opened back to back may register in either order.
    one = connect(server, user_id="a")
    join_room(one, ref="1")
    two = connect(server, user_id="b")
    join_room(two, ref="9")
    one.recv_json()  # b's presence_diff
    assert server.crash_channel("room:lobby") == 2
    assert one.recv_json() == ["1", "1", "room:lobby", "phx_error", {"reason": "channel_crash"}]
    # Channels are crashed in connection order: "b" still sees "a" leave.
    assert two.recv_json()[3] == "presence_diff"
    assert two.recv_json() == ["9", "9", "room:lobby", "phx_error", {"reason": "channel_crash"}]
    two.send(["9", "10", "room:lobby", "echo", {}])
    assert two.recv_json() == [None, "10", "room:lobby", "phx_reply", UNMATCHED]
    assert server.crash_channel("room:lobby") == 0


def test_crash_channel_while_a_handler_is_busy(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_room(client)
    client.send(["1", "2", "room:lobby", "slow", {"ms": 500}])
    server.wait_for_message(lambda m: m.event == "slow")
    assert server.crash_channel("room:lobby") == 1
    assert client.recv_json()[3] == "phx_error"
    client.heartbeat()  # the late reply of the killed channel never comes
    join_room(client, ref="3")


def test_reset_faults(server: PhoenixServer, connect: ClientFactory) -> None:
    server.pause_heartbeats()
    server.refuse_joins()
    server.delay_replies(5)
    server.reset_faults()
    client = connect(server)
    client.heartbeat()
    join_room(client)


def test_drop_me_and_kick_me(server: PhoenixServer, connect: ClientFactory) -> None:
    dropper = connect(server, user_id="dropper")
    join_room(dropper, "room:drop")
    dropper.send(["1", "2", "room:drop", "drop_me", {}])
    assert dropper.recv_json()[4] == HB_OK
    dropper.expect_drop()
    kicked = connect(server)
    join_room(kicked)
    kicked.send(["1", "2", "room:lobby", "kick_me", {}])
    assert kicked.recv_json()[4] == HB_OK
    assert kicked.expect_close() == (1001, "")


def test_faults_survive_a_restart(make_server: ServerFactory) -> None:
    server = make_server()
    server.refuse_connections(503)
    server.restart(abrupt=True)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(server.url + "?vsn=2.0.0", timeout=5)
    server.accept_connections()
    client = WireClient.open(server.url + "?vsn=2.0.0")
    try:
        client.heartbeat()
    finally:
        client.close()
