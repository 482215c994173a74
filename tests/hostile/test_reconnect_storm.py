"""A server that accepts every upgrade and drops it at once must not get a reconnect storm."""

from __future__ import annotations

import json
import threading

import pytest

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer

pytestmark = pytest.mark.timeout(60)

STEPS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32)


class Attempts:
    """The ``reconnecting`` signals of a client: attempt numbers and delays, with a condition to wait on."""

    def __init__(self, client: maxsdk.Client) -> None:
        self.seen: list[tuple[int, float]] = []
        self.cond = threading.Condition()
        client.on_signal(maxsdk.signals.reconnecting, self._record)

    def _record(self, sender: object, *, attempt: int, delay: float, **_: object) -> None:
        with self.cond:
            self.seen.append((attempt, delay))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[tuple[int, float]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen) >= count, timeout), self.seen
            return list(self.seen[:count])


def accept_and_drop(conn: RawConnection) -> None:
    conn.accept_upgrade()


def accept_join_then_drop(conn: RawConnection) -> None:
    """Answer the upgrade and a join like Phoenix (a healthy connection), then drop it."""
    conn.accept_upgrade()
    while True:
        opcode, payload = conn.read_frame()
        if opcode == 0x1:
            join_ref, ref, topic, event, _ = json.loads(payload)
            if event == "phx_join":
                conn.send_frame(
                    0x1, json.dumps([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}]).encode()
                )
                return


def test_a_flapping_server_sees_the_same_backoff_curve_as_one_that_refuses() -> None:
    with RawServer(accept_and_drop) as server:
        client = maxsdk.Client(server.url + "/socket", reconnect=Backoff(steps=STEPS, jitter="none"))
        attempts = Attempts(client)
        try:
            client.connect_nowait()
            seen = attempts.wait_for(6)
        finally:
            client.close()
    # Every connection opened, none proved healthy: the schedule goes on instead of starting over.
    assert [attempt for attempt, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [delay for _, delay in seen] == list(STEPS)


def test_the_schedule_starts_over_after_a_connection_that_proved_healthy() -> None:
    with RawServer(accept_join_then_drop) as server:
        client = maxsdk.Client(server.url + "/socket", reconnect=Backoff(steps=STEPS, jitter="none"))
        attempts = Attempts(client)
        room = client.channel("room:flap")
        try:
            client.connect_nowait()
            room.join_nowait()
            seen = attempts.wait_for(4)
        finally:
            client.close()
    # Each connection got its join answered before the drop: every reconnect is a first attempt.
    assert [attempt for attempt, _ in seen] == [1, 1, 1, 1]
