"""Deadlines: named timers the pure core sets, moves and cancels (no clock inside)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.protocol.deadlines import Deadlines

deterministic = settings(derandomize=True, database=None, deadline=None)


def test_empty() -> None:
    deadlines: Deadlines[str] = Deadlines()
    assert deadlines.next() is None
    assert deadlines.due(1e9) == []
    assert len(deadlines) == 0 and "a" not in deadlines and deadlines.get("a") is None


def test_due_returns_expired_keys_earliest_first_and_removes_them() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("c", 3.0)
    deadlines.set("a", 1.0)
    deadlines.set("b", 2.0)
    assert deadlines.next() == 1.0
    assert deadlines.due(2.0) == ["a", "b"]  # inclusive of `now`
    assert deadlines.due(2.0) == []
    assert deadlines.next() == 3.0 and len(deadlines) == 1 and "c" in deadlines


def test_equal_deadlines_come_out_in_the_order_they_were_set() -> None:
    deadlines: Deadlines[str] = Deadlines()
    for key in "zyxw":
        deadlines.set(key, 5.0)
    assert deadlines.due(5.0) == ["z", "y", "x", "w"]


def test_nothing_is_due_before_its_time() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 10.0)
    assert deadlines.due(9.999) == []
    assert deadlines.due(10.0) == ["a"]


def test_moving_a_deadline_later_and_earlier() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 1.0)
    deadlines.set("b", 2.0)
    deadlines.set("a", 3.0)  # later
    assert deadlines.next() == 2.0
    assert deadlines.due(2.5) == ["b"]
    deadlines.set("a", 0.5)  # earlier than its previous place
    assert deadlines.get("a") == 0.5 and deadlines.next() == 0.5
    assert deadlines.due(5.0) == ["a"]  # once, despite the stale entries
    assert deadlines.next() is None


def test_key_set_again_to_the_same_time_fires_once() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 1.0)
    deadlines.cancel("a")
    deadlines.set("a", 1.0)
    deadlines.set("a", 1.0)
    assert deadlines.due(1.0) == ["a"]
    assert len(deadlines) == 0


def test_cancel() -> None:
    deadlines: Deadlines[tuple[str, str]] = Deadlines()
    deadlines.set(("push", "1"), 1.0)
    deadlines.set(("push", "2"), 2.0)
    deadlines.cancel(("push", "1"))
    deadlines.cancel(("push", "404"))  # unknown: a no-op
    assert deadlines.next() == 2.0
    assert deadlines.due(10.0) == [("push", "2")]


def test_clear() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("a", 1.0)
    deadlines.clear()
    assert deadlines.next() is None and deadlines.due(2.0) == [] and len(deadlines) == 0


def test_compaction_keeps_the_heap_bounded_under_many_moves() -> None:
    deadlines: Deadlines[int] = Deadlines()
    for i in range(10):
        deadlines.set(i, 1000.0 + i)
    for step in range(10_000):
        deadlines.set(step % 10, float(step))  # each set leaves a stale heap entry behind
    assert len(deadlines) == 10
    assert len(deadlines._heap) <= max(64, 4 * len(deadlines)) + 1
    expected = sorted(range(10), key=lambda k: deadlines.get(k) or 0.0)
    assert deadlines.due(1e9) == expected


def test_cancelled_keys_do_not_pile_up_in_the_heap() -> None:
    deadlines: Deadlines[int] = Deadlines()
    deadlines.set(-1, 1e9)
    for i in range(5_000):
        deadlines.set(i, float(i))
        deadlines.cancel(i)
    assert len(deadlines) == 1 and len(deadlines._heap) <= 65
    assert deadlines.next() == 1e9


@deterministic
@given(
    st.lists(
        st.tuples(st.sampled_from(["set", "cancel", "due"]), st.integers(0, 8), st.integers(0, 50)),
        max_size=200,
    )
)
def test_matches_a_dictionary_model(operations: list[tuple[str, int, int]]) -> None:
    deadlines: Deadlines[int] = Deadlines()
    model: dict[int, float] = {}
    order: dict[int, int] = {}  # when each key was last set (ties fire in set order)
    for counter, (op, key, when) in enumerate(operations):
        if op == "set":
            deadlines.set(key, float(when))
            model[key] = float(when)
            order[key] = counter
        elif op == "cancel":
            deadlines.cancel(key)
            model.pop(key, None)
        else:
            expected = sorted((k for k, w in model.items() if w <= when), key=lambda k: (model[k], order[k]))
            assert deadlines.due(float(when)) == expected
            for k in expected:
                del model[k]
        assert deadlines.next() == (min(model.values()) if model else None)
        assert len(deadlines) == len(model)


def test_random_workload_against_the_model() -> None:
    rng = random.Random(2024)
    deadlines: Deadlines[int] = Deadlines()
    model: dict[int, float] = {}
    now = 0.0
    for _ in range(20_000):
        key = rng.randrange(100)
        if rng.random() < 0.7:
            when = now + rng.random() * 10
            deadlines.set(key, when)
            model[key] = when
        else:
            deadlines.cancel(key)
            model.pop(key, None)
        if rng.random() < 0.05:
            now += rng.random()
            fired = deadlines.due(now)
            assert set(fired) == {k for k, w in model.items() if w <= now}
            for k in fired:
                del model[k]
    assert len(deadlines) == len(model)
