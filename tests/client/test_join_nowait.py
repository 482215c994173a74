"""join_nowait (pushes buffered behind a join in progress) and the heartbeat_interval convention."""

from __future__ import annotations

import pytest

import maxsdk
from maxsdk import ChannelState
from maxsdk.config import ClientConfig
from tests.client.helpers import fast_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(phoenix_server):
    client = fast_client(phoenix_server.url)
    client.connect()
    yield client
    client.close()


def test_join_nowait_returns_while_joining_and_pushes_wait_behind_the_join(client, phoenix_server):
    phoenix_server.withhold_replies()
    room = client.join_nowait("room:lobby", {"k": "v"})
    assert room.state is ChannelState.JOINING
    first = room.push_nowait("echo", {"n": 1})
    second = room.push_nowait("echo", {"n": 2})
    phoenix_server.wait_for_message(event="phx_join", topic="room:lobby")
    assert [m.event for m in phoenix_server.messages() if m.topic == "room:lobby"] == ["phx_join"]
    phoenix_server.release_replies()
    assert room.wait_joined(5.0) is room and room.joined
    assert room.join_response == {"joined": "room:lobby"}
    assert first.wait().response == {"n": 1} and second.wait().response == {"n": 2}
    events = [m.event for m in phoenix_server.messages() if m.topic == "room:lobby"]
    assert events == ["phx_join", "echo", "echo"]


def test_join_nowait_connects_a_client_that_was_never_started(phoenix_server):
    client = fast_client(phoenix_server.url)
    try:
        room = client.join_nowait("room:lobby")
        reply = room.push("echo", {"a": 1}, timeout=5.0)
        assert reply.response == {"a": 1} and room.joined
    finally:
        client.close()


def test_a_refused_join_nowait_raises_in_wait_joined_and_fails_buffered_pushes(client, phoenix_server):
    phoenix_server.withhold_replies()
    room = client.join_nowait("room:private", {"password": "nope"})
    pending = room.push_nowait("echo", {"n": 1})
    phoenix_server.wait_for_message(event="phx_join", topic="room:private")
    phoenix_server.release_replies()
    with pytest.raises(maxsdk.JoinError) as info:
        room.wait_joined(5.0)
    assert info.value.reason == "unauthorized"
    with pytest.raises(maxsdk.ChannelClosedError):
        pending.wait()
    assert room.state is ChannelState.CLOSED
    with pytest.raises(maxsdk.JoinError):
        room.wait_joined(1.0)  # the outcome is kept


def test_wait_joined_gives_up_on_its_own_timeout_while_the_join_goes_on(client, phoenix_server):
    phoenix_server.withhold_replies()
    room = client.join_nowait("room:lobby", timeout=10.0)
    phoenix_server.wait_for_message(event="phx_join", topic="room:lobby")
    with pytest.raises(maxsdk.JoinTimeoutError):
        room.wait_joined(0.2)
    assert room.state is ChannelState.JOINING
    phoenix_server.release_replies()
    assert room.wait_joined(5.0).joined


def test_join_after_join_nowait_waits_for_the_same_join(client, phoenix_server):
    phoenix_server.withhold_replies()
    room = client.join_nowait("room:lobby")
    phoenix_server.wait_for_message(event="phx_join", topic="room:lobby")
    phoenix_server.release_replies()
    assert room.join(5.0).joined
    assert len([m for m in phoenix_server.messages() if m.event == "phx_join"]) == 1


def test_wait_joined_on_a_channel_never_joined_is_an_error(client):
    with pytest.raises(maxsdk.ChannelClosedError):
        client.channel("room:lobby").wait_joined(0.5)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 30.0), (15, 15.0), (2.5, 2.5), (0, None), (0.0, None), (False, None)],
)
def test_heartbeat_interval_none_is_the_default_and_zero_or_false_is_off(given, expected):
    client = maxsdk.Client("ws://127.0.0.1:1/socket", heartbeat_interval=given)
    assert client.config.heartbeat_interval == expected
    rpc = maxsdk.JsonRpcClient("ws://127.0.0.1:1", ping_interval=given)
    assert rpc.config.heartbeat_interval == expected


@pytest.mark.parametrize("bad", [-1, "30", True, float("nan")])
def test_a_bad_heartbeat_interval_is_a_configuration_error(bad):
    with pytest.raises(maxsdk.ConfigurationError):
        ClientConfig.build("ws://127.0.0.1:1/socket", heartbeat_interval=bad)


def test_heartbeats_turned_off_send_none(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=False)
    try:
        client.join("room:lobby").push("echo", {})
        assert client.config.heartbeat_interval is None
        assert not [m for m in phoenix_server.messages() if m.event == "heartbeat"]
    finally:
        client.close()
