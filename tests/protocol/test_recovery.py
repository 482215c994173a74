"""The pure stream-recovery core: positions, exactly-once ordering, discontinuities."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.protocol.recovery import Deliver, Discontinuity, Position, StreamCursor

pytestmark = pytest.mark.timeout(60)

E = "e1"


def _marker(head: int, oldest: int, recovered: bool, reason: str | None = None, epoch: str = E) -> dict[str, Any]:
    return {"epoch": epoch, "offset": head, "oldest": oldest, "recovered": recovered, "reason": reason}


def _run(cursor: StreamCursor[int], steps: list[tuple[str, Any]]) -> tuple[list[int], list[Discontinuity]]:
    delivered: list[int] = []
    gaps: list[Discontinuity] = []
    for kind, value in steps:
        if kind == "event":
            out = cursor.receive(value, Position(E, value))
        elif kind == "joined":
            out = cursor.joined(True)
        else:
            out = cursor.marker(value)
        for item in out:
            if isinstance(item, Deliver):
                delivered.append(item.item)
            else:
                gaps.append(item)
    return delivered, gaps


def _assert_resumes_once(delivered: list[int], gap: Discontinuity, head: int, n: int) -> None:
    """After the gap: one unbroken run up to ``n``, starting at or before the head's successor."""
    assert gap.resumed is not None
    start = gap.resumed.offset + 1
    assert start <= head + 1
    assert delivered == list(range(start, n + 1))


@st.composite
def _scenarios(draw: Any) -> tuple[int, int, int, int, list[tuple[str, Any]], bool]:
    """A rejoin: the client has k, the server head H at the replay, N at the end, oldest O."""
    n = draw(st.integers(0, 40))
    k = draw(st.integers(0, n))
    head = draw(st.integers(k, n))
    oldest = draw(st.integers(1, head + 1))  # at the snapshot the history ends at the head
    recovered = k >= oldest - 1
    # Live events start at the subscription, before the snapshot; those up to the head are
    # still in the history (a history shorter than the traffic of one join is not modelled).
    live_from = draw(st.integers(1 if recovered else min(oldest, head + 1), head + 1))
    replay: list[tuple[str, Any]] = [("joined", None)]
    if recovered:
        replay += [("event", i) for i in range(k + 1, head + 1)]
    replay.append(("marker", _marker(head, oldest, recovered, None if recovered else "trimmed")))
    stale = [("event", i) for i in draw(st.lists(st.integers(1, max(k, 1)), max_size=5)) if k]
    live = stale + [("event", i) for i in range(live_from, n + 1)]
    steps: list[tuple[str, Any]] = []
    order = draw(st.permutations([0] * len(replay) + [1] * len(live)))
    streams = [iter(replay), iter(live)]
    for which in order:
        steps.append(next(streams[which]))
    return n, k, head, oldest, steps, recovered


@settings(max_examples=400, deadline=None)
@given(_scenarios())
def test_any_interleaving_delivers_each_position_once_in_order_or_one_discontinuity(scenario: Any) -> None:
    n, k, head, _oldest, steps, recovered = scenario
    cursor: StreamCursor[int] = StreamCursor(Position(E, k))
    cursor.rejoining()
    delivered, gaps = _run(cursor, steps)
    if recovered:
        assert gaps == []
        assert delivered == list(range(k + 1, n + 1))
    else:
        assert len(gaps) == 1
        assert gaps[0].reason == "trimmed" and gaps[0].last == Position(E, k)
        _assert_resumes_once(delivered, gaps[0], head, n)
        assert all(i > k for i in delivered)
    assert cursor.position == Position(E, n)
    assert not cursor.awaiting


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.data())
def test_epoch_change_is_one_discontinuity_then_live(k: int, extra: int, data: Any) -> None:
    head = data.draw(st.integers(0, 30))
    cursor: StreamCursor[int] = StreamCursor(Position("old", k))
    cursor.rejoining()
    live = [("event", i) for i in range(data.draw(st.integers(1, head + 1)), head + extra + 1)]
    replay = [("joined", None), ("marker", _marker(head, 1, False, "epoch_changed"))]
    order = data.draw(st.permutations([0] * len(replay) + [1] * len(live)))
    streams = [iter(replay), iter(live)]
    delivered, gaps = _run(cursor, [next(streams[w]) for w in order])
    assert [g.reason for g in gaps] == ["epoch_changed"]
    assert gaps[0].last == Position("old", k)
    _assert_resumes_once(delivered, gaps[0], head, head + extra)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 60), max_size=120))
def test_live_stream_drops_duplicates_and_reports_every_gap_once(arrivals: list[int]) -> None:
    cursor: StreamCursor[int] = StreamCursor(Position(E, 0))
    cursor.joined(False)
    delivered, gaps = _run(cursor, [("event", i) for i in arrivals])
    assert delivered == sorted(set(delivered))  # strictly increasing: never twice, never backwards
    expected_gaps = sum(1 for a, b in zip([0, *delivered], delivered) if b != a + 1)
    assert len(gaps) == expected_gaps
    for gap in gaps:
        assert gap.reason == "gap" and gap.last is not None and gap.resumed is not None


def test_first_join_without_position_starts_at_the_head_without_discontinuity() -> None:
    cursor: StreamCursor[str] = StreamCursor()
    assert cursor.join_param() == {}
    assert cursor.receive("early", Position(E, 8)) == []
    out = cursor.marker(_marker(7, 1, True))
    assert out == [Deliver("early", Position(E, 8))]
    assert cursor.position == Position(E, 8)
    assert cursor.join_param() == {"epoch": E, "offset": 8}


def test_server_without_recovery_goes_live_with_what_was_held() -> None:
    cursor: StreamCursor[str] = StreamCursor(Position(E, 3))
    assert cursor.receive("c", Position(E, 6)) == []
    assert cursor.receive("e", Position(E, 8)) == []
    out = cursor.joined(False)
    gap, delivered = out[0], [o.item for o in out if isinstance(o, Deliver)]
    assert isinstance(gap, Discontinuity) and gap.reason == "gap" and gap.resumed == Position(E, 5)
    assert delivered == ["c", "e"] and len(out) == 4  # 7 is missing: a second gap


def test_while_awaiting_the_next_position_is_delivered_at_once_with_what_it_unblocks() -> None:
    cursor: StreamCursor[str] = StreamCursor(Position(E, 3))
    assert cursor.receive("b", Position(E, 5)) == []
    out = cursor.receive("a", Position(E, 4))
    assert [(o.item, o.position.offset) for o in out if isinstance(o, Deliver)] == [("a", 4), ("b", 5)]
    assert cursor.awaiting and cursor.buffered == 0 and cursor.position == Position(E, 5)
    assert cursor.marker(_marker(5, 1, True)) == []


def test_buffer_overflow_gives_up_waiting_in_order() -> None:
    cursor: StreamCursor[int] = StreamCursor(Position(E, 0), max_buffer=3)
    for i in (2, 3, 4):
        assert cursor.receive(i, Position(E, i)) == []
    out = cursor.receive(5, Position(E, 5))
    assert isinstance(out[0], Discontinuity) and out[0].reason == "overflow"
    assert [o.item for o in out[1:] if isinstance(o, Deliver)] == [2, 3, 4, 5]
    assert not cursor.awaiting


def test_malformed_marker_and_position_raise_value_error() -> None:
    cursor: StreamCursor[int] = StreamCursor()
    with pytest.raises(ValueError):
        cursor.marker({"epoch": 3, "offset": "x"})
    with pytest.raises(ValueError):
        cursor.marker([1])
    with pytest.raises(ValueError):
        Position.from_wire({"epoch": "e", "offset": -1})
    assert cursor.awaiting
    assert Position.from_wire({"epoch": "e", "offset": 2}) == Position("e", 2)
    with pytest.raises(ValueError):
        StreamCursor(max_buffer=0)
