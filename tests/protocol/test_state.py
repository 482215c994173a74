"""The replicated-state core (maxsdk.protocol.state): versions, gaps, optimistic updates, rollback."""

from __future__ import annotations

import copy

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.errors import LocalProtocolError, PatchError, RemoteProtocolError
from maxsdk.protocol.state import (
    Accepted,
    Changed,
    Delta,
    FetchSnapshot,
    RolledBack,
    Snapshot,
    StateReplica,
    parse_delta,
    parse_snapshot,
)

KEYS = st.sampled_from(["a", "b", "c", "d"])
VALUES = st.one_of(st.integers(0, 9), st.none(), st.dictionaries(KEYS, st.integers(0, 9), max_size=2))
MERGE = st.dictionaries(KEYS, VALUES, min_size=1, max_size=3)
DOCUMENTS = st.dictionaries(KEYS, st.one_of(st.integers(0, 9), st.lists(st.integers(0, 9), max_size=3)), max_size=4)


def oracle_merge(target, patch):
    """RFC 7396 §2 written independently of the code under test."""
    if type(patch) is not dict:
        return copy.deepcopy(patch)
    result = dict(target) if type(target) is dict else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = oracle_merge(result.get(key), value)
    return result


class ModelServer:
    """The server's side of docs/state.md, kept naively: a list of every version's document."""

    def __init__(self, document, epoch="e1"):
        self.documents = [copy.deepcopy(document)]
        self.epoch = epoch
        self.applied: list[str] = []

    @property
    def version(self):
        return len(self.documents) - 1

    def change(self, fmt, patch, update_id=None):
        current = self.documents[-1]
        new = oracle_merge(current, patch) if fmt == "merge" else jsonpatch.apply_patch(current, patch)
        self.documents.append(new)
        if update_id is not None:
            self.applied.append(update_id)
        return Delta(self.version, fmt, patch, self.epoch, update_id)

    def submit(self, payload):
        if payload["base"] != self.version:
            return "error", {"reason": "conflict", "version": self.version}, None
        delta = self.change(payload["format"], payload["patch"], payload["id"])
        return "ok", {"version": delta.version}, delta

    def snapshot(self):
        return Snapshot(self.version, copy.deepcopy(self.documents[-1]), self.epoch)


def fetches(effects):
    return [effect for effect in effects if isinstance(effect, FetchSnapshot)]


def synced_replica(server, **kwargs):
    replica = StateReplica(**kwargs)
    (fetch,) = fetches(replica.resync())
    effects = replica.snapshot_received(fetch.request, server.snapshot())
    assert Changed(("",), server.version, "snapshot") in effects
    return replica


# -- parsing -------------------------------------------------------------------------


def test_parse_accepts_the_documented_fields_and_refuses_the_rest():
    assert parse_snapshot({"version": 3, "document": {"a": 1}, "epoch": "x"}) == Snapshot(3, {"a": 1}, "x")
    assert parse_delta({"version": 4, "format": "json", "patch": [], "id": "k"}) == Delta(4, "json", [], None, "k")
    assert parse_delta({"version": 1, "patch": {"a": 1}}).format == "merge"
    for bad in [None, {"version": 1}, {"version": -1, "document": 1}, {"version": "1", "document": 1}]:
        with pytest.raises(RemoteProtocolError):
            parse_snapshot(bad)
    for bad in [{"version": 1, "format": "json", "patch": {}}, {"version": 1.5, "patch": {}}, {"patch": {}}]:
        with pytest.raises(RemoteProtocolError):
            parse_delta(bad)
    with pytest.raises(RemoteProtocolError):
        parse_delta({"version": 1, "patch": {}, "epoch": 7})


# -- deltas, duplicates, gaps ------------------------------------------------------------


def test_contiguous_deltas_apply_duplicates_drop_and_a_gap_asks_for_a_snapshot():
    server = ModelServer({"a": 1})
    replica = synced_replica(server)
    d1 = server.change("merge", {"b": 2})
    assert replica.delta_received(d1) == [Changed(("/b",), 1, "delta")]
    assert replica.delta_received(d1) == []  # duplicate
    server.change("merge", {"a": None})  # lost
    d3 = server.change("json", [{"op": "add", "path": "/c", "value": [1]}])
    (fetch,) = replica.delta_received(d3)
    assert fetch.reason == "gap" and replica.fetching
    d4 = server.change("merge", {"c": [2]})
    assert replica.delta_received(d4) == []  # buffered while the snapshot is awaited
    snapshot_at_3 = Snapshot(3, copy.deepcopy(server.documents[3]), "e1")
    effects = replica.snapshot_received(fetch.request, snapshot_at_3)
    assert effects == [Changed(("/a", "/c"), 4, "snapshot")]
    assert replica.document == server.documents[-1] and replica.version == 4
    assert replica.resyncs == {"join": 1, "gap": 1}


def test_an_epoch_change_or_a_delta_that_does_not_apply_refetches():
    server = ModelServer({"a": 1})
    replica = synced_replica(server)
    (fetch,) = replica.delta_received(Delta(1, "merge", {"a": 2}, "other-epoch"))
    assert fetch.reason == "epoch"
    replica.snapshot_received(fetch.request, server.snapshot())
    (fetch,) = replica.delta_received(Delta(1, "json", [{"op": "remove", "path": "/zzz"}], "e1"))
    assert fetch.reason == "mismatch"
    assert replica.version == 0 and replica.document == {"a": 1}


def test_a_stale_or_failed_snapshot_request_is_ignored_and_the_next_delta_asks_again():
    server = ModelServer({"a": 1})
    replica = StateReplica()
    (first,) = fetches(replica.resync())
    (second,) = fetches(replica.resync("manual"))
    assert replica.snapshot_received(first.request, server.snapshot()) == []
    assert not replica.synced
    assert replica.snapshot_failed(second.request) == []
    (again,) = fetches(replica.delta_received(server.change("merge", {"a": 2})))
    replica.snapshot_received(again.request, server.snapshot())
    assert replica.document == {"a": 2} and replica.synced


@settings(max_examples=200, deadline=None)
@given(st.data(), DOCUMENTS)
def test_any_delivery_of_deltas_converges_on_the_servers_document(data, initial):
    """Drops, duplicates, reorders and late snapshots: the copy is always some server version, finally the last."""
    server = ModelServer(initial)
    replica = StateReplica(max_buffer=data.draw(st.integers(1, 8)))
    in_flight: list[Delta] = []
    requests = [fetch.request for fetch in fetches(replica.resync())]
    for _ in range(data.draw(st.integers(1, 40))):
        action = data.draw(st.sampled_from(["change", "change", "deliver", "drop", "dup", "snapshot"]))
        if action == "change":
            fmt = data.draw(st.sampled_from(["merge", "json"]))
            if fmt == "merge":
                patch = data.draw(MERGE)
            else:
                patch = jsonpatch.make_patch(server.documents[-1], data.draw(DOCUMENTS)).patch
            in_flight.append(server.change(fmt, patch))
        elif action in ("deliver", "drop", "dup") and in_flight:
            index = data.draw(st.integers(0, min(2, len(in_flight) - 1)))  # mostly in order, sometimes not
            delta = in_flight[index] if action == "dup" else in_flight.pop(index)
            if action != "drop":
                requests += [fetch.request for fetch in fetches(replica.delta_received(delta))]
        elif action == "snapshot" and requests:
            replica.snapshot_received(requests.pop(0), server.snapshot())
        if replica.synced:
            assert replica.document == server.documents[replica.version]
    # Quiesce: deliver what is in flight, then answer every outstanding request.
    for delta in in_flight:
        requests += [fetch.request for fetch in fetches(replica.delta_received(delta))]
    while requests or not replica.synced or replica.version != server.version:
        if not requests:  # the replica believes it is current: one more (live) delta shows otherwise
            requests += [fetch.request for fetch in fetches(replica.delta_received(server.change("merge", {"z": 1})))]
            continue
        replica.snapshot_received(requests.pop(0), server.snapshot())
    assert replica.document == server.documents[-1]
    assert replica.version == server.version


# -- optimistic updates ----------------------------------------------------------------


def test_an_optimistic_update_shows_at_once_and_its_delta_confirms_it():
    server = ModelServer({"score": 0})
    replica = synced_replica(server)
    update, effects = replica.update("merge", {"score": 5})
    assert effects == [Changed(("/score",), 0, "local")]
    assert replica.document == {"score": 5} and replica.confirmed == {"score": 0}
    status, response, delta = server.submit(update.payload())
    assert status == "ok"
    assert replica.delta_received(delta) == [Accepted(update, 1)]  # no Changed: nothing new to show
    assert replica.update_accepted(update.id, response["version"]) == []
    assert replica.pending == () and replica.document == {"score": 5} and replica.version == 1


def test_a_refused_update_is_rolled_back_with_the_servers_reason():
    server = ModelServer({"score": 0})
    replica = synced_replica(server)
    update, _ = replica.update("merge", {"score": 5})
    other = server.change("merge", {"score": 7})  # someone else wins
    assert replica.delta_received(other) == []  # the shown value is still the pending one
    assert replica.document == {"score": 5} and replica.confirmed == {"score": 7}
    status, response, _ = server.submit(update.payload())
    assert status == "error"
    effects = replica.update_refused(update.id, response["reason"], response["version"], response)
    assert effects == [RolledBack(update, "conflict", 1, response), Changed(("/score",), 1, "rollback")]
    assert replica.document == {"score": 7} and replica.pending == ()


def test_local_updates_chain_their_base_versions_and_bad_input_changes_nothing():
    server = ModelServer({"n": [1]})
    replica = synced_replica(server, id_prefix="me-")
    first, _ = replica.update("json", [{"op": "add", "path": "/n/-", "value": 2}])
    second, _ = replica.update("merge", {"m": 1})
    assert (first.id, first.base, second.id, second.base) == ("me-1", 0, "me-2", 1)
    with pytest.raises(PatchError):
        replica.update("json", [{"op": "remove", "path": "/missing"}])
    assert replica.pending == (first, second) and replica.document == {"n": [1, 2], "m": 1}
    with pytest.raises(LocalProtocolError):
        StateReplica().update("merge", {"a": 1})


def test_an_accepted_reply_before_a_snapshot_that_covers_it_settles_the_update():
    server = ModelServer({"a": 0})
    replica = synced_replica(server)
    update, _ = replica.update("merge", {"a": 1})
    _, response, _lost_delta = server.submit(update.payload())
    assert replica.update_accepted(update.id, response["version"]) == [Accepted(update, 1)]
    (fetch,) = replica.resync("rejoin")
    replica.snapshot_received(fetch.request, server.snapshot())
    assert replica.pending == () and replica.document == {"a": 1}


class ModelClient:
    def __init__(self, server, name):
        self.replica = synced_replica(server, id_prefix=f"{name}-")
        self.inbox: list[tuple[str, object]] = []  # ("delta", Delta) | ("reply", (id, status, response))
        self.outcomes: dict[str, list[object]] = {}

    def record(self, effects):
        for effect in effects:
            if isinstance(effect, (Accepted, RolledBack)):
                self.outcomes.setdefault(effect.update.id, []).append(effect)
            assert not isinstance(effect, FetchSnapshot)  # no gaps on a lossless, ordered link


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_concurrent_optimistic_updates_each_end_accepted_or_rolled_back_exactly_once(data):
    server = ModelServer({"a": 0, "b": 0})
    clients = [ModelClient(server, "A"), ModelClient(server, "B")]
    uplink: list[tuple[ModelClient, dict]] = []
    made: dict[str, ModelClient] = {}
    for _ in range(data.draw(st.integers(1, 30))):
        client = data.draw(st.sampled_from(clients))
        action = data.draw(st.sampled_from(["update", "send", "receive"]))
        if action == "update":
            update, effects = client.replica.update("merge", data.draw(MERGE))
            client.record(effects)
            made[update.id] = client
            uplink.append((client, update.payload()))
        elif action == "send" and uplink:
            sender, payload = uplink.pop(0)
            status, response, delta = server.submit(payload)
            if delta is not None:
                for each in clients:
                    each.inbox.append(("delta", delta))
            sender.inbox.append(("reply", (payload["id"], status, response)))
        elif action == "receive" and client.inbox:
            deliver(client, client.inbox.pop(0))
    while uplink:
        sender, payload = uplink.pop(0)
        status, response, delta = server.submit(payload)
        for each in clients if delta is not None else ():
            each.inbox.append(("delta", delta))
        sender.inbox.append(("reply", (payload["id"], status, response)))
    for client in clients:
        while client.inbox:
            deliver(client, client.inbox.pop(0))
        assert client.replica.pending == ()
        assert client.replica.document == server.documents[-1]
    for update_id, client in made.items():
        (outcome,) = client.outcomes[update_id]  # told exactly once
        assert isinstance(outcome, Accepted) == (update_id in server.applied)


def deliver(client, item):
    kind, body = item
    if kind == "delta":
        client.record(client.replica.delta_received(body))
        return
    update_id, status, response = body
    if status == "ok":
        client.record(client.replica.update_accepted(update_id, response["version"]))
    else:
        client.record(client.replica.update_refused(update_id, response["reason"], response["version"], response))
