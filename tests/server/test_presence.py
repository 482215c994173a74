"""Presence tracking (reference §6.1): refs, diffs, state, cleanup on every way out."""

from __future__ import annotations

from typing import Any

from maxsdk.server import PhoenixServer
from maxsdk.server.presence import Presence, new_phx_ref

from .conftest import ClientFactory
from .test_channels import join_room
from .wire import WireClient


def metas(state: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = state[key]["metas"]
    return found


def test_second_joiner_sees_both_and_first_sees_the_diff(server: PhoenixServer, connect: ClientFactory) -> None:
    alice, bob = connect(server, user_id="alice"), connect(server, user_id="bob")
    _, own_diff, state = join_room(alice)
    assert list(own_diff[4]["joins"]) == ["alice"] and own_diff[4]["leaves"] == {}
    _, _, bob_state = join_room(bob, ref="7")
    assert sorted(bob_state[4]) == ["alice", "bob"]
    assert bob_state[0] == "7"  # presence_state is a push: it carries the join_ref
    diff = alice.recv_json()
    assert diff[:4] == [None, None, "room:lobby", "presence_diff"]
    assert list(diff[4]["joins"]) == ["bob"]
    assert metas(bob_state[4], "alice") == metas(state[4], "alice")


def leave_diff(client: WireClient) -> dict[str, Any]:
    diff = client.recv_json()
    assert diff[3] == "presence_diff" and diff[4]["joins"] == {}, diff
    leaves: dict[str, Any] = diff[4]["leaves"]
    return leaves


def test_leaves_on_leave_crash_drop_and_close(server: PhoenixServer, connect: ClientFactory) -> None:
    watcher = connect(server, user_id="w")
    join_room(watcher)
    for way_out in ("leave", "crash", "drop", "close", "kill"):
        other = connect(server, user_id=way_out)
        _, _, state = join_room(other, ref="5")
        ref = metas(state[4], way_out)[0]["phx_ref"]
        assert list(watcher.recv_json()[4]["joins"]) == [way_out]
        if way_out == "leave":
            other.send(["5", "6", "room:lobby", "phx_leave", {}])
        elif way_out == "crash":
            other.send(["5", "6", "room:lobby", "crash", {}])
        elif way_out == "drop":
            other.abort()
        elif way_out == "close":
            other.close()
        else:
            assert server.crash_channel("room:lobby", connection_id=server.connections[-1].connection_id) == 1
        leaves = leave_diff(watcher)
        assert [m["phx_ref"] for m in metas(leaves, way_out)] == [ref]
    assert list(server.presence("room:lobby")) == ["w"]


def test_update_sends_join_and_leave_with_phx_ref_prev(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server, user_id="u")
    _, _, state = join_room(client)
    old_ref = metas(state[4], "u")[0]["phx_ref"]
    client.send(["1", "2", "room:lobby", "presence_update", {"status": "away"}])
    diff = client.recv_json()
    reply = client.recv_json()
    joined = metas(diff[4]["joins"], "u")[0]
    assert joined["phx_ref_prev"] == old_ref and joined["status"] == "away"
    assert joined["phx_ref"] == reply[4]["response"]["phx_ref"] != old_ref
    assert [m["phx_ref"] for m in metas(diff[4]["leaves"], "u")] == [old_ref]
    assert server.presence("room:lobby")["u"]["metas"] == [joined]


def test_same_key_from_two_connections_keeps_two_metas(server: PhoenixServer, connect: ClientFactory) -> None:
    one, two = connect(server, user_id="same"), connect(server, user_id="same")
    join_room(one)
    _, _, state = join_room(two)
    refs = [m["phx_ref"] for m in metas(state[4], "same")]
    assert len(refs) == 2 and len(set(refs)) == 2


def test_tracker_unit() -> None:
    published: list[tuple[str, str, Any]] = []
    presence = Presence(lambda topic, event, payload: published.append((topic, event, payload)))
    owner_a, owner_b = object(), object()
    ref_a = presence.track(owner_a, "t", "k", {"x": 1})
    presence.track(owner_b, "t", "k", {"x": 2})
    presence.track(owner_a, "u", "k2", {})
    assert len(presence.state("t")["k"]["metas"]) == 2
    try:
        presence.track(owner_a, "t", "k", {})
        raise AssertionError("tracking twice must fail")
    except ValueError:
        pass
    new_ref = presence.update(owner_a, "t", "k", {"x": 3})
    assert published[-1][2]["joins"]["k"]["metas"][0]["phx_ref_prev"] == ref_a
    presence.untrack_all(owner_a)
    assert presence.state("u") == {}
    assert [m["x"] for m in presence.state("t")["k"]["metas"]] == [2]
    leaves = [p for _, _, p in published if p["leaves"]]
    assert any(m["phx_ref"] == new_ref for p in leaves for m in p["leaves"].get("k", {}).get("metas", []))
    assert {topic for topic, _, _ in published} == {"t", "u"}


def test_phx_refs_are_unique() -> None:
    refs = {new_phx_ref() for _ in range(10_000)}
    assert len(refs) == 10_000
    assert all(len(ref) == 16 for ref in refs)
