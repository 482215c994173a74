# mypy: disable-error-code="comparison-overlap"
# (a channel's state changes inside session calls; mypy's narrowing of `ch.state` cannot see that)
"""The channel state machine table (reference §5.2, with the SDK's documented choices)."""

from __future__ import annotations

import itertools

import pytest

from maxsdk.errors import LocalProtocolError
from maxsdk.protocol.phoenix.channel import TRANSITIONS, ChannelCore, ChannelState, Trigger, transition

S, T = ChannelState, Trigger

EXPECTED = {
    (S.CLOSED, T.JOIN): S.JOINING,
    (S.JOINING, T.JOIN_OK): S.JOINED,
    (S.JOINING, T.JOIN_FAILED): S.CLOSED,  # the first join: its caller sees the refusal
    (S.JOINING, T.REJOIN_FAILED): S.ERRORED,  # a rejoin: retried on the schedule
    (S.JOINING, T.SERVER_ERROR): S.ERRORED,
    (S.JOINED, T.SERVER_ERROR): S.ERRORED,
    (S.JOINING, T.CONNECTION_LOST): S.ERRORED,
    (S.JOINED, T.CONNECTION_LOST): S.ERRORED,
    (S.ERRORED, T.CONNECTION_LOST): S.ERRORED,
    (S.ERRORED, T.REJOIN): S.JOINING,
    (S.ERRORED, T.JOIN_FAILED): S.CLOSED,
    (S.JOINING, T.SERVER_CLOSE): S.CLOSED,
    (S.JOINED, T.SERVER_CLOSE): S.CLOSED,
    (S.ERRORED, T.SERVER_CLOSE): S.CLOSED,
    (S.LEAVING, T.SERVER_CLOSE): S.CLOSED,
    (S.JOINING, T.LEAVE): S.LEAVING,
    (S.JOINED, T.LEAVE): S.LEAVING,
    (S.ERRORED, T.LEAVE): S.LEAVING,
    (S.LEAVING, T.LEAVE_DONE): S.CLOSED,
    (S.LEAVING, T.CONNECTION_LOST): S.CLOSED,
}


def test_the_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(S, T)), ids=str)
def test_every_pair_is_either_in_the_table_or_illegal(state: ChannelState, trigger: Trigger) -> None:
    if (state, trigger) in TRANSITIONS:
        assert transition(state, trigger) is TRANSITIONS[(state, trigger)]
    else:
        with pytest.raises(LocalProtocolError, match=f"{state}.*{trigger}"):
            transition(state, trigger)


def test_closed_is_only_left_by_join_and_leaving_never_goes_back() -> None:
    assert {t for (s, t) in TRANSITIONS if s is S.CLOSED} == {T.JOIN}
    assert {new for (s, _), new in TRANSITIONS.items() if s is S.LEAVING} == {S.CLOSED}
    assert (S.LEAVING, T.REJOIN) not in TRANSITIONS  # rejoin attempts while leaving are ignored


def test_every_state_can_reach_closed() -> None:
    reachable = {S.CLOSED}
    changed = True
    while changed:
        changed = False
        for (state, _), new in TRANSITIONS.items():
            if new in reachable and state not in reachable:
                reachable.add(state)
                changed = True
    assert reachable == set(S)


def test_core_apply_returns_the_previous_state_and_refuses_illegal_moves() -> None:
    core = ChannelCore("room:1", owner=None, timeout=10.0)
    assert core.state is S.CLOSED and not core.is_active
    assert core.apply(T.JOIN) is S.CLOSED and core.state is S.JOINING and core.is_active
    with pytest.raises(LocalProtocolError):
        core.apply(T.REJOIN)
    assert core.state is S.JOINING  # unchanged by the refused move
    core.apply(T.JOIN_OK)
    core.apply(T.SERVER_ERROR)
    assert core.state is S.ERRORED and core.is_active
    core.apply(T.LEAVE)
    assert not core.is_active
    assert repr(core) == "<ChannelCore 'room:1' leaving join_ref=None>"


def test_state_and_trigger_print_as_their_values() -> None:
    assert str(S.JOINED) == "joined" and str(T.JOIN_OK) == "join_ok"
    assert S("errored") is S.ERRORED
