"""Backoff schedules as immutable values: they compute delays and never sleep.

Two shapes:

* stepped (phoenix.js): a list of delays, the last one repeating forever
  (``Backoff.phoenix_reconnect()``: 10, 50, 100, 150, 200, 250, 500 ms, 1, 2,
  then 5 s; ``Backoff.phoenix_rejoin()``: 1, 2, 5, then 10 s — reference §5.1);
* exponential: ``initial * multiplier ** (attempt - 1)``, capped.

Jitter spreads a fleet of clients so that they do not all retry in lockstep
after a server restart (reference §7, "thundering herd"):

* ``"none"``: the exact delay;
* ``"full"``: uniform in ``[0, delay]``;
* ``"proportional"``: uniform in ``[delay * (1 - ratio), delay * (1 + ratio)]``.

The random source is passed in (``rng``), so tests use a seeded
``random.Random(...).random`` and get the same delays every run.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Union

from maxsdk.errors import ConfigurationError

__all__ = ["Backoff", "BackoffLike", "Jitter"]

Jitter = Literal["none", "full", "proportional"]

PHOENIX_RECONNECT_STEPS = (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)
PHOENIX_REJOIN_STEPS = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class Backoff:
    """An immutable retry schedule.

    Attributes:
        steps: stepped delays in seconds; the last repeats. Ignored when
            ``initial`` is set.
        initial: first delay of an exponential schedule, in seconds.
        multiplier: growth factor of the exponential schedule.
        cap: largest delay of the exponential schedule, in seconds.
        jitter: ``"none"``, ``"full"`` or ``"proportional"``.
        jitter_ratio: spread of proportional jitter, between 0 and 1.
        max_attempts: retries allowed before giving up; ``None`` = forever.
        function: a custom ``attempt -> seconds`` function (like phoenix.js's
            ``reconnectAfterMs``); overrides ``steps``/``initial``.

    """

    steps: tuple[float, ...] = PHOENIX_RECONNECT_STEPS
    initial: float | None = None
    multiplier: float = 2.0
    cap: float = 30.0
    jitter: Jitter = "proportional"
    jitter_ratio: float = 0.5
    max_attempts: int | None = None
    function: Callable[[int], float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.function is None and self.initial is None and not self.steps:
            raise ConfigurationError("Backoff needs steps, an initial delay or a function")
        if any(step < 0 for step in self.steps) or (self.initial is not None and self.initial < 0):
            raise ConfigurationError("Backoff delays must be >= 0")
        if self.jitter not in ("none", "full", "proportional"):
            raise ConfigurationError(f"unknown jitter {self.jitter!r}")
        if not 0 <= self.jitter_ratio <= 1:
            raise ConfigurationError("jitter_ratio must be between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ConfigurationError("max_attempts must be >= 0 or None")
        if self.multiplier < 1 or self.cap < 0:
            raise ConfigurationError("multiplier must be >= 1 and cap >= 0")

    # -- constructors -------------------------------------------------------

    @classmethod
    def phoenix_reconnect(cls, *, jitter: Jitter = "proportional", max_attempts: int | None = None) -> Backoff:
        """phoenix.js's socket reconnect schedule, with jitter on by default."""
        return cls(steps=PHOENIX_RECONNECT_STEPS, jitter=jitter, max_attempts=max_attempts)

    @classmethod
    def phoenix_rejoin(cls, *, jitter: Jitter = "none") -> Backoff:
        """phoenix.js's channel rejoin schedule (1, 2, 5, then 10 s)."""
        return cls(steps=PHOENIX_REJOIN_STEPS, jitter=jitter)

    @classmethod
    def exponential(
        cls,
        initial: float = 0.1,
        *,
        multiplier: float = 2.0,
        cap: float = 30.0,
        jitter: Jitter = "full",
        max_attempts: int | None = None,
    ) -> Backoff:
        """An exponential schedule ``initial * multiplier**(n-1)``, capped."""
        return cls(initial=initial, multiplier=multiplier, cap=cap, jitter=jitter, max_attempts=max_attempts)

    @classmethod
    def constant(cls, delay: float, *, jitter: Jitter = "none", max_attempts: int | None = None) -> Backoff:
        """The same delay every time."""
        return cls(steps=(delay,), jitter=jitter, max_attempts=max_attempts)

    @classmethod
    def coerce(cls, value: BackoffLike, *, default: Backoff) -> Backoff:
        """Turn a user setting into a :class:`Backoff`.

        ``True``/``None`` → ``default``; ``False`` → never retry;
        an ``int`` → ``default`` limited to that many attempts;
        a callable ``attempt -> seconds`` → a custom schedule; a
        :class:`Backoff` → itself.
        """
        if value is None or value is True:
            return default
        if value is False:
            return replace(default, max_attempts=0)
        if isinstance(value, Backoff):
            return value
        if isinstance(value, int):
            return replace(default, max_attempts=value)
        if callable(value):
            return cls(function=value, jitter="none")
        raise ConfigurationError(f"cannot use {value!r} as a backoff")

    # -- queries ------------------------------------------------------------

    def exhausted(self, attempt: int) -> bool:
        """Whether retry number ``attempt`` (1-based) is beyond ``max_attempts``."""
        return self.max_attempts is not None and attempt > self.max_attempts

    def base_delay(self, attempt: int) -> float:
        """The delay before retry ``attempt`` (1-based), before jitter."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        if self.function is not None:
            return max(0.0, float(self.function(attempt)))
        if self.initial is not None:
            # Avoid float overflow for very large attempt numbers.
            exponent = min(attempt - 1, 64)
            try:
                return float(min(self.cap, self.initial * self.multiplier**exponent))
            except OverflowError:
                return float(self.cap)
        return self.steps[min(attempt, len(self.steps)) - 1]

    def delay(self, attempt: int, rng: Callable[[], float] = _random.random) -> float | None:
        """The delay before retry ``attempt`` (1-based) with jitter, or ``None`` if exhausted.

        Args:
            attempt: 1 for the first retry.
            rng: a source of floats in ``[0, 1)``; pass a seeded one in tests.

        """
        if self.exhausted(attempt):
            return None
        base = self.base_delay(attempt)
        if self.jitter == "full":
            return base * rng()
        if self.jitter == "proportional":
            return base * (1 - self.jitter_ratio + 2 * self.jitter_ratio * rng())
        return base

    def __repr__(self) -> str:
        if self.function is not None:
            shape = f"function={getattr(self.function, '__name__', self.function)!r}"
        elif self.initial is not None:
            shape = f"exponential(initial={self.initial:g}, multiplier={self.multiplier:g}, cap={self.cap:g})"
        else:
            shape = "steps=(" + ", ".join(f"{s:g}" for s in self.steps) + ")"
        limit = "forever" if self.max_attempts is None else f"max_attempts={self.max_attempts}"
        return f"Backoff({shape}, jitter={self.jitter!r}, {limit})"


BackoffLike = Union[Backoff, bool, int, Callable[[int], float], None]
