"""Malformed presence payloads from a raw server: a protocol error on the channel, nothing else (issue 13, item 11)."""

from __future__ import annotations

import threading

import pytest

import maxsdk
from maxsdk import signals
from maxsdk.protocol.phoenix.presence import diff_problem, state_problem

from .rawphoenix import RawConnection, RawPhoenixServer

pytestmark = pytest.mark.timeout(30)

ALICE = {"alice": {"metas": [{"phx_ref": "a1", "online_at": 1}]}}
BOB = {"bob": {"metas": [{"phx_ref": "b1"}]}}

MALFORMED_STATES = [
    ["alice"],  # not an object
    {"alice": ["a1"]},  # entry not an object
    {"alice": {"metas": {"phx_ref": "a1"}}},  # metas not a list
    {"alice": {"metas": ["a1", 2]}},  # metas that are not objects
    {"alice": {}},  # no metas
]
MALFORMED_DIFFS = [
    {"joins": [["bob", {"metas": []}]], "leaves": {}},  # joins as a list
    {"joins": {"bob": {"metas": [1, 2]}}, "leaves": {}},  # metas not objects
    {"joins": {}, "leaves": "alice"},  # leaves as a string
    {"joins": {"bob": "here"}},  # entry not an object
    {"joins": {}, "leaves": {"alice": {"metas": [None]}}},  # a leave with a null meta
    ["joins", "leaves"],  # the diff itself not an object
    "presence",
]


@pytest.mark.parametrize("state", MALFORMED_STATES)
def test_state_problem_names_every_malformed_state(state):
    assert state_problem(state) is not None


@pytest.mark.parametrize("diff", MALFORMED_DIFFS)
def test_diff_problem_names_every_malformed_diff(diff):
    assert diff_problem(diff) is not None


def test_well_formed_payloads_have_no_problem():
    assert state_problem(ALICE) is None and state_problem({}) is None
    assert diff_problem({"joins": BOB, "leaves": ALICE}) is None and diff_problem({}) is None
    assert diff_problem({"joins": None, "leaves": {}}) is None


def _script(conn: RawConnection, topic: str, join_ref: str) -> None:
    if topic != "room:hostile":
        return
    for state in MALFORMED_STATES:  # refused before anything is synced
        conn.send(join_ref, None, topic, "presence_state", state)
    conn.send(join_ref, None, topic, "presence_state", ALICE)
    for diff in MALFORMED_DIFFS:
        conn.send(join_ref, None, topic, "presence_diff", diff)
    conn.send(join_ref, None, topic, "presence_diff", {"joins": BOB, "leaves": {}})
    conn.send(join_ref, None, topic, "done", {})


def test_malformed_presence_is_a_protocol_error_and_user_handlers_still_run():
    with RawPhoenixServer(_script) as server:
        client = maxsdk.Client(server.url, reconnect=False)
        errors: list[maxsdk.RemoteProtocolError] = []
        failures: list[BaseException] = []
        all_reported = threading.Event()
        expected = len(MALFORMED_STATES) + len(MALFORMED_DIFFS)

        def on_error(sender: object, error: maxsdk.RemoteProtocolError) -> None:
            errors.append(error)
            if len(errors) >= expected:
                all_reported.set()

        client.on_signal(signals.protocol_error, on_error)
        client.on_signal(signals.handler_failed, lambda sender, error, **kw: failures.append(error))
        states: list[object] = []
        diffs: list[object] = []
        done = threading.Event()
        try:
            client.connect(timeout=10)
            room = client.channel("room:hostile")
            room.on("presence_state", states.append)
            room.on("presence_diff", diffs.append)
            room.on("done", lambda payload: done.set())
            room.join(timeout=10)
            assert done.wait(10), "the script never finished"
            # Every handler ran, with every payload, malformed or not.
            assert states == [*MALFORMED_STATES, ALICE]
            assert diffs == [*MALFORMED_DIFFS, {"joins": BOB, "leaves": {}}]
            # Each malformed payload is one protocol error naming the channel.
            assert all_reported.wait(10), errors
            assert len(errors) == expected, errors
            assert all(isinstance(e, maxsdk.RemoteProtocolError) and e.topic == "room:hostile" for e in errors)
            assert all("room:hostile" in str(e) and "malformed presence_" in str(e) for e in errors)
            assert client.diagnostics().protocol_errors == len(errors)
            assert failures == []
            # The presence state is exactly what the well-formed payloads say.
            assert room.presence.synced
            assert room.presence.snapshot() == {**ALICE, **BOB}
            assert client.connected
        finally:
            client.close()
