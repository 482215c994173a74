"""Backoff: an immutable schedule that computes delays and never sleeps (reference §5.1, §7)."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.errors import ConfigurationError
from maxsdk.protocol.backoff import Backoff

deterministic = settings(derandomize=True, database=None, deadline=None)

RECONNECT_MS = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000, 5000]
REJOIN_S = [1.0, 2.0, 5.0, 10.0, 10.0, 10.0]


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"Backoff slept {seconds} s")

    monkeypatch.setattr(time, "sleep", refuse)


def never_called() -> float:
    raise AssertionError("the rng must not be used without jitter")


def test_checklist_29_phoenix_reconnect_schedule_without_jitter() -> None:
    backoff = Backoff.phoenix_reconnect(jitter="none")
    delays = [backoff.delay(attempt, never_called) for attempt in range(1, len(RECONNECT_MS) + 1)]
    assert delays == [ms / 1000 for ms in RECONNECT_MS]
    assert backoff.delay(10_000, never_called) == 5.0


def test_phoenix_rejoin_schedule_is_exact_by_default() -> None:
    backoff = Backoff.phoenix_rejoin()
    assert [backoff.delay(n, never_called) for n in range(1, 7)] == REJOIN_S
    assert backoff.max_attempts is None


def test_phoenix_reconnect_has_jitter_by_default() -> None:
    assert Backoff.phoenix_reconnect().jitter == "proportional"
    assert Backoff().steps == tuple(ms / 1000 for ms in RECONNECT_MS[:10])


def test_constant_schedule() -> None:
    backoff = Backoff.constant(0.25)
    assert [backoff.delay(n, never_called) for n in (1, 2, 100)] == [0.25, 0.25, 0.25]


def test_full_jitter_is_within_zero_and_the_delay_with_a_seeded_rng() -> None:
    backoff = Backoff.phoenix_rejoin(jitter="full")
    rng = random.Random(1234).random
    for attempt in range(1, 200):
        delay = backoff.delay(attempt, rng)
        assert delay is not None
        assert 0.0 <= delay < backoff.base_delay(attempt)


def test_proportional_jitter_bounds_with_a_seeded_rng() -> None:
    backoff = Backoff(steps=(1.0, 4.0), jitter="proportional", jitter_ratio=0.25)
    rng = random.Random(99).random
    delays = [backoff.delay(2, rng) for _ in range(500)]
    assert all(d is not None and 3.0 <= d < 5.0 for d in delays)
    assert min(d for d in delays if d is not None) < 3.1 and max(d for d in delays if d is not None) > 4.9


def test_jitter_extremes_of_the_rng() -> None:
    full = Backoff.constant(2.0, jitter="full")
    assert full.delay(1, lambda: 0.0) == 0.0
    assert full.delay(1, lambda: 0.5) == 1.0
    proportional = Backoff(steps=(2.0,), jitter="proportional", jitter_ratio=0.5)
    assert proportional.delay(1, lambda: 0.0) == 1.0
    assert proportional.delay(1, lambda: 0.5) == 2.0


def test_seeded_rng_gives_the_same_delays_every_run() -> None:
    backoff = Backoff.phoenix_reconnect()
    first = [backoff.delay(n, random.Random(7).random) for n in range(1, 12)]
    second = [backoff.delay(n, random.Random(7).random) for n in range(1, 12)]
    assert first == second


def test_exponential_grows_and_is_capped() -> None:
    backoff = Backoff.exponential(0.1, multiplier=2.0, cap=1.0, jitter="none")
    delays = [backoff.delay(n, never_called) for n in range(1, 8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert backoff.delay(10**9, never_called) == 1.0  # no overflow for huge attempt numbers


def test_exponential_full_jitter_stays_below_the_cap() -> None:
    backoff = Backoff.exponential(0.5, cap=3.0)
    assert backoff.jitter == "full"
    rng = random.Random(3).random
    assert all(0 <= (backoff.delay(n, rng) or 0) < 3.0 for n in range(1, 100))


@deterministic
@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 64),
    cap=st.floats(0, 3600),
    attempt=st.integers(1, 10**6),
)
def test_exponential_never_exceeds_the_cap(initial: float, multiplier: float, cap: float, attempt: int) -> None:
    backoff = Backoff.exponential(initial, multiplier=multiplier, cap=cap, jitter="none")
    delay = backoff.delay(attempt)
    assert delay is not None and 0 <= delay <= cap


@pytest.mark.parametrize("multiplier", [1e5, 10**6])
def test_exponential_with_a_large_multiplier_is_capped_not_overflowing(multiplier: float) -> None:
    backoff = Backoff.exponential(0.1, multiplier=multiplier, cap=30.0, jitter="none")
    assert backoff.delay(100) == 30.0


def test_max_attempts_returns_none_after_the_limit() -> None:
    backoff = Backoff.phoenix_reconnect(jitter="none", max_attempts=3)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.01, 0.05, 0.1, None, None]
    assert not backoff.exhausted(3) and backoff.exhausted(4)


def test_zero_max_attempts_never_retries() -> None:
    assert Backoff.constant(1.0, max_attempts=0).delay(1) is None


def test_custom_function_overrides_steps_and_negative_results_are_zero() -> None:
    backoff = Backoff(function=lambda n: n * 0.5 - 1.0, jitter="none")
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.0, 0.0, 0.5, 1.0]


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError):
        Backoff.constant(1.0).delay(0)


def test_coerce() -> None:
    default = Backoff.phoenix_rejoin()
    assert Backoff.coerce(None, default=default) is default
    assert Backoff.coerce(True, default=default) is default
    never = Backoff.coerce(False, default=default)
    assert never.max_attempts == 0 and never.delay(1) is None
    limited = Backoff.coerce(3, default=default)
    assert limited.max_attempts == 3 and limited.steps == default.steps and default.max_attempts is None
    custom = Backoff.exponential(1.0)
    assert Backoff.coerce(custom, default=default) is custom

    def after(attempt: int) -> float:
        return attempt * 2.0

    function = Backoff.coerce(after, default=default)
    assert function.delay(3, never_called) == 6.0 and function.jitter == "none"


@pytest.mark.parametrize("value", [1.5, "fast", [1.0], -1])
def test_coerce_refuses_other_values(value: object) -> None:
    with pytest.raises(ConfigurationError):
        Backoff.coerce(value, default=Backoff.phoenix_rejoin())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": ()},
        {"steps": (1.0, -0.5)},
        {"initial": -1.0},
        {"jitter": "sometimes"},
        {"jitter_ratio": 1.5},
        {"jitter_ratio": -0.1},
        {"max_attempts": -1},
        {"initial": 1.0, "multiplier": 0.5},
        {"initial": 1.0, "cap": -1.0},
    ],
)
def test_invalid_settings_raise_configuration_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_immutable_and_hashable() -> None:
    backoff = Backoff.phoenix_rejoin()
    with pytest.raises(dataclasses.FrozenInstanceError):
        backoff.max_attempts = 3  # type: ignore[misc]
    assert backoff == Backoff.phoenix_rejoin()
    assert hash(backoff) == hash(Backoff.phoenix_rejoin())
    limited = dataclasses.replace(backoff, max_attempts=2)
    assert backoff.max_attempts is None and limited.max_attempts == 2


def test_repr_is_readable() -> None:
    assert repr(Backoff.phoenix_rejoin()) == "Backoff(steps=(1, 2, 5, 10), jitter='none', forever)"
    assert repr(Backoff.exponential(0.5, cap=8, max_attempts=4)) == (
        "Backoff(exponential(initial=0.5, multiplier=2, cap=8), jitter='full', max_attempts=4)"
    )

    def schedule(attempt: int) -> float:
        return 1.0

    assert "function='schedule'" in repr(Backoff(function=schedule))
