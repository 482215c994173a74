"""Presence sync (reference §6, checklist 35-38): unit cases and properties against a server model."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.protocol.phoenix.presence import PresenceTracker, list_presences, sync_diff, sync_state


def meta(ref: str, **extra) -> dict:
    return {"phx_ref": ref, **extra}


def refs(state: dict) -> dict[str, set[str]]:
    return {key: {m["phx_ref"] for m in entry["metas"]} for key, entry in state.items()}


# -- unit cases --------------------------------------------------------------------------


def test_checklist_35_diffs_before_the_first_state_are_buffered_and_applied_after_it():
    tracker = PresenceTracker()
    assert tracker.apply_diff({"joins": {"b": {"metas": [meta("2")]}}, "leaves": {}}, "1") is None
    changes = tracker.apply_state({"a": {"metas": [meta("1")]}}, "1")
    assert refs(tracker.state) == {"a": {"1"}, "b": {"2"}}
    assert [(c.kind, c.key) for c in changes] == [("join", "a"), ("join", "b")]


def test_checklist_36_after_a_rejoin_diffs_wait_for_the_next_state_and_resync_reports_real_changes():
    tracker = PresenceTracker()
    tracker.apply_state({"a": {"metas": [meta("1")]}, "b": {"metas": [meta("2")]}}, "1")
    assert tracker.apply_diff({"joins": {"c": {"metas": [meta("3")]}}, "leaves": {}}, "5") is None  # new join_ref
    changes = tracker.apply_state({"a": {"metas": [meta("1")]}, "c": {"metas": [meta("3")]}}, "5")
    assert sorted((c.kind, c.key) for c in changes) == [("join", "c"), ("join", "c"), ("leave", "b")]
    assert refs(tracker.state) == {"a": {"1"}, "c": {"3"}}


def test_checklist_37_a_metadata_update_keeps_the_key_with_only_the_new_meta():
    state = {"u": {"metas": [meta("old", status="away")]}}
    state, changes = sync_diff(
        state,
        {
            "joins": {"u": {"metas": [meta("new", status="online", phx_ref_prev="old")]}},
            "leaves": {"u": {"metas": [meta("old")]}},
        },
    )
    assert state == {"u": {"metas": [meta("new", status="online", phx_ref_prev="old")]}}
    assert [c.kind for c in changes] == ["join", "leave"]


def test_checklist_38_list_has_one_entry_per_key_and_empty_keys_disappear_after_on_leave():
    state = {"a": {"metas": [meta("1")]}, "b": {"metas": [meta("2"), meta("3")]}}
    assert list_presences(state) == [{"metas": [meta("1")]}, {"metas": [meta("2"), meta("3")]}]
    assert list_presences(state, lambda key, entry: (key, len(entry["metas"]))) == [("a", 1), ("b", 2)]
    state, changes = sync_diff(state, {"joins": {}, "leaves": {"a": {"metas": [meta("1")]}}})
    assert "a" not in state
    assert changes[0].kind == "leave" and changes[0].current == {"metas": []}


def test_the_recorded_diff_then_state_order_syncs_once():
    """transcript_v2: presence_diff (our own join) arrives before presence_state."""
    golden = (Path(__file__).parent.parent / "golden" / "transcript_v2.txt").read_text()
    frames = [json.loads(line.split("<< text", 1)[1]) for line in golden.splitlines() if "<< text" in line]
    diff = next(f[4] for f in frames if f[3] == "presence_diff")
    state = next(f[4] for f in frames if f[3] == "presence_state")
    tracker = PresenceTracker()
    assert tracker.apply_diff(diff, "1") is None
    changes = tracker.apply_state(state, "1")
    assert set(tracker.state) == {"anon", "lp1"}
    assert all(len(entry["metas"]) == 1 for entry in tracker.state.values())
    assert sorted(c.key for c in changes if c.kind == "join") == ["anon", "anon", "lp1"]


def test_resync_with_the_same_state_reports_nothing():
    state = {"a": {"metas": [meta("1")]}}
    _, changes = sync_state(state, {"a": {"metas": [meta("1")]}})
    assert changes == []


# -- properties against a model of Phoenix.Presence -----------------------------------------


class Truth:
    """What the server tracks, and the diff it broadcasts for each operation."""

    def __init__(self) -> None:
        self.state: dict[str, list[dict]] = {}
        self.next_ref = 0

    def _ref(self) -> str:
        self.next_ref += 1
        return f"r{self.next_ref}"

    def apply(self, op: tuple[str, int, int]) -> dict | None:
        kind, key_index, pick = op
        key = f"user{key_index}"
        metas = self.state.get(key, [])
        if kind == "join":
            new = meta(self._ref(), n=pick)
            self.state[key] = [*metas, new]
            return {"joins": {key: {"metas": [new]}}, "leaves": {}}
        if not metas:
            return None
        old = metas[pick % len(metas)]
        if kind == "leave":
            rest = [m for m in metas if m is not old]
            if rest:
                self.state[key] = rest
            else:
                del self.state[key]
            return {"joins": {}, "leaves": {key: {"metas": [old]}}}
        new = meta(self._ref(), n=pick, phx_ref_prev=old["phx_ref"])
        self.state[key] = [m for m in metas if m is not old] + [new]
        return {"joins": {key: {"metas": [new]}}, "leaves": {key: {"metas": [old]}}}

    def snapshot(self) -> dict:
        return json.loads(json.dumps({key: {"metas": metas} for key, metas in self.state.items()}))


operations = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "update"]), st.integers(0, 4), st.integers(0, 5)), max_size=40
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(operations, st.data())
def test_any_split_into_state_and_diffs_converges_to_the_server_truth(ops, data):
    truth = Truth()
    diffs = [truth.apply(op) for op in ops]
    steps = [(op, d) for op, d in zip(ops, diffs) if d is not None]
    # The state snapshot is taken after `cut` operations; diffs from `early` on arrive before it
    # (already reflected in it: the race of phoenix #2255), the rest after it.
    cut = data.draw(st.integers(0, len(steps)))
    early = data.draw(st.integers(0, cut))
    replay = Truth()
    for op, _ in steps[:cut]:
        replay.apply(op)
    snapshot = replay.snapshot()
    tracker = PresenceTracker()
    for _, diff in steps[early:cut]:
        assert tracker.apply_diff(diff, "j1") is None
    tracker.apply_state(snapshot, "j1")
    for _, diff in steps[cut:]:
        assert tracker.apply_diff(diff, "j1") is not None
    assert refs(tracker.state) == refs(truth.snapshot())


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(operations, operations, st.data())
def test_a_rejoin_resyncs_to_the_truth_with_only_real_changes_reported(before, during, data):
    truth = Truth()
    for op in before:
        truth.apply(op)
    tracker = PresenceTracker()
    tracker.apply_state(truth.snapshot(), "j1")
    seen_before = refs(tracker.state)
    # While we were away (rejoin pending), things changed; some diffs of the new
    # incarnation arrive before its state and must wait for it.
    missed = [d for d in (truth.apply(op) for op in during) if d is not None]
    early = data.draw(st.integers(0, len(missed)))
    for diff in missed[len(missed) - early :]:
        assert tracker.apply_diff(diff, "j2") is None
    changes = tracker.apply_state(truth.snapshot(), "j2")
    assert refs(tracker.state) == refs(truth.snapshot())
    final = refs(truth.snapshot())
    # Buffered diffs replayed after the state may report a meta joining then leaving again;
    # what counts is that the last report about every meta matches the truth.
    last: dict[tuple[str, str], str] = {}
    for change in changes:
        for m in change.changed["metas"]:
            last[(change.key, m["phx_ref"])] = change.kind
    for (key, ref), kind in last.items():
        assert (kind == "join") == (ref in final.get(key, set())), (key, ref, kind)
    unreported = {(key, ref) for key, ids in final.items() for ref in ids} - {
        (key, ref) for key, ids in seen_before.items() for ref in ids
    }
    assert unreported <= {pair for pair, kind in last.items() if kind == "join"}, "every new meta was reported"
