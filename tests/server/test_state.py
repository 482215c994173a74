"""Replicated state topics of the embedded server, frame by frame (docs/state.md)."""

from __future__ import annotations

from typing import Any

from maxsdk.server import PhoenixServer

from .conftest import ClientFactory
from .wire import WireClient

TOPIC = "state:game"


def join_state(client: WireClient, topic: str = TOPIC, ref: str = "1") -> Any:
    reply = client.join(topic, {}, ref=ref)
    assert reply[3] == "phx_reply" and reply[4]["status"] == "ok", reply
    return reply[4]["response"]


def push(client: WireClient, event: str, payload: Any, ref: str, join_ref: str = "1") -> None:
    client.send([join_ref, ref, TOPIC, event, payload])


def recv_until(client: WireClient, event: str, ref: str | None = None) -> Any:
    while True:
        frame = client.recv_json()
        if frame[3] == event and (ref is None or frame[1] == ref):
            return frame


def test_join_then_snapshot_gives_version_document_and_epoch(server: PhoenixServer, connect: ClientFactory) -> None:
    server.state(TOPIC).reset({"score": 1})
    client = connect(server)
    joined = join_state(client)
    assert joined == {"version": 0, "epoch": server.state(TOPIC).epoch}
    push(client, "state_snapshot", {}, "2")
    reply = recv_until(client, "phx_reply", "2")
    assert reply[4] == {
        "status": "ok",
        "response": {"version": 0, "document": {"score": 1}, "epoch": server.state(TOPIC).epoch},
    }


def test_an_update_on_the_current_version_is_broadcast_then_replied(
    server: PhoenixServer, connect: ClientFactory
) -> None:
    alice, bob = connect(server), connect(server)
    join_state(alice)
    join_state(bob)
    epoch = server.state(TOPIC).epoch
    update = {"id": "a-1", "base": 0, "format": "json", "patch": [{"op": "add", "path": "/x", "value": 1}]}
    push(alice, "state_update", update, "2")
    delta = alice.recv_json()
    assert delta == [
        None,
        None,
        TOPIC,
        "state_delta",
        {"version": 1, "format": "json", "patch": update["patch"], "epoch": epoch, "id": "a-1"},
    ]
    assert alice.recv_json() == ["1", "2", TOPIC, "phx_reply", {"status": "ok", "response": {"version": 1}}]
    assert bob.recv_json() == delta
    assert server.state(TOPIC).document == {"x": 1}


def test_a_stale_base_is_refused_with_conflict_and_changes_nothing(
    server: PhoenixServer, connect: ClientFactory
) -> None:
    client = connect(server)
    join_state(client)
    document = server.state(TOPIC)
    document.change({"a": 1})  # version 1, server-side
    assert recv_until(client, "state_delta")[4]["id"] is None
    push(client, "state_update", {"id": "c-1", "base": 0, "format": "merge", "patch": {"a": 2}}, "2")
    reply = recv_until(client, "phx_reply", "2")
    assert reply[4] == {"status": "error", "response": {"reason": "conflict", "version": 1, "epoch": document.epoch}}
    assert document.document == {"a": 1} and document.version == 1 and document.refused == 1


def test_malformed_updates_get_typed_error_reasons(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server)
    join_state(client)
    cases = [
        ({"base": "0", "patch": {}}, "invalid update"),
        ({"id": "x", "base": 0, "format": "xml", "patch": {}}, "invalid update"),
        ({"id": "x", "base": 0, "format": "json", "patch": [{"op": "remove", "path": "/nope"}]}, "invalid patch"),
        ({"id": "x", "base": 0, "format": "json", "patch": {"op": "add"}}, "invalid patch"),
    ]
    for index, (payload, reason) in enumerate(cases):
        push(client, "state_update", payload, str(10 + index))
        reply = recv_until(client, "phx_reply", str(10 + index))
        assert reply[4]["status"] == "error" and reply[4]["response"]["reason"] == reason, reply
    assert server.state(TOPIC).version == 0
    push(client, "nonsense", {}, "20")
    assert recv_until(client, "phx_reply", "20")[4]["response"]["reason"] == "unknown event"


def test_reset_starts_a_new_epoch_at_version_zero(server: PhoenixServer) -> None:
    document = server.state("state:other")
    document.change({"a": 1})
    old_epoch = document.epoch
    document.reset({"b": 2})
    assert (document.version, document.document) == (0, {"b": 2})
    assert document.epoch != old_epoch
    assert document.change([{"op": "replace", "path": "/b", "value": 3}], "json")["version"] == 1
    assert document.document == {"b": 3}
