"""The stream-recovery chapter of ``maxsdk demo``: a cut, a replay and a discontinuity."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Any

from maxsdk._runtime.threads import wait_slice
from maxsdk.cli.common import parse_params
from maxsdk.cli.output import Printer
from maxsdk.client import Client

__all__ = ["recovery_steps"]

TOPIC = "stream:demo"
WAIT = 10.0


class _Ticks:
    """Collects delivered ``n`` values and discontinuities; waits on a condition (never sleep-polls)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ticks: list[int] = []
        self.gaps: list[Any] = []

    def tick(self, payload: Any) -> None:
        with self.cond:
            self.ticks.append(payload["n"])
            self.cond.notify_all()

    def gap(self, gap: Any) -> None:
        with self.cond:
            self.gaps.append(gap)
            self.cond.notify_all()

    def wait(self, what: str, predicate: Any) -> None:
        deadline = time.monotonic() + WAIT
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"gave up waiting for {what}")
                self.cond.wait(wait_slice(left))


def recovery_steps(printer: Printer, url: str, token: str | None, server: Any, history: Any, stack: ExitStack) -> None:
    """Narrate a recoverable stream on the embedded server (``history``: its ``StreamHistory``)."""
    step = printer.step
    step(f"Client 'carol' joins {TOPIC} with recover=True: events carry a position (epoch + offset)")
    carol = Client(url, params=parse_params(["user_id=carol"], token), name="carol")
    stack.callback(carol.close)
    feed = carol.channel(TOPIC, recover=True)
    seen = _Ticks()
    feed.on("tick", seen.tick)
    feed.on_discontinuity(seen.gap)
    feed.join()

    def publish(numbers: range) -> None:
        for n in numbers:
            history.publish(server.endpoint, TOPIC, "tick", {"n": n})

    publish(range(1, 4))
    seen.wait("ticks 1-3", lambda: len(seen.ticks) >= 3)
    printer.good(f"carol got {seen.ticks}; position {feed.position}")

    step("A cut: the server drops carol and broadcasts 4, 5, 6 while she is away")
    _away(server, lambda: publish(range(4, 7)))
    seen.wait("the replay", lambda: 6 in seen.ticks)
    publish(range(7, 9))
    seen.wait("ticks 7-8", lambda: 8 in seen.ticks)
    printer.good(f"after the rejoin the server replayed what she missed: {seen.ticks} (each once, in order)")

    step("The history is trimmed while carol is away: a discontinuity, never a silent loss")

    def publish_then_trim() -> None:
        publish(range(9, 21))
        history.trim(TOPIC, keep=3)

    _away(server, publish_then_trim)
    seen.wait("the discontinuity", lambda: seen.gaps)
    gap = seen.gaps[0]
    printer.good(f"on_discontinuity: reason={gap.reason}, last={gap.last}, server's oldest={gap.oldest}")
    publish(range(21, 23))
    seen.wait("live ticks", lambda: 22 in seen.ticks)
    printer.good(f"then live events again: {seen.ticks[-2:]}; history() still has {_retained(feed)}")
    carol.close()


def _away(server: Any, while_away: Any) -> None:
    """Cut every connection, keep new ones out while ``while_away()`` runs, then let them back."""
    server.refuse_connections(503)
    try:
        server.drop_connections()
        while_away()
    finally:
        server.accept_connections()


def _retained(feed: Any) -> list[int]:
    return [event.payload["n"] for event in feed.history(limit=10)]
