"""Thundering herd: a fleet of clients does not reconnect in lockstep after a server restart."""

from __future__ import annotations

import statistics
import threading

import pytest

from maxsdk import Backoff, Client, signals


@pytest.mark.timeout(120)
def test_fifty_clients_spread_their_reconnects_with_jitter(phoenix_server):
    delays: dict[int, list[float]] = {}
    rejoined = threading.Semaphore(0)
    lock = threading.Condition()
    schedule = Backoff(steps=(0.05, 0.1, 0.2, 0.4), jitter="proportional", jitter_ratio=0.5)
    clients = []
    for n in range(50):
        client = Client(phoenix_server.url, reconnect=schedule, name=f"herd-{n}")

        def on_reconnecting(_client, n=n, **kw):
            with lock:
                delays.setdefault(n, []).append(kw["delay"])
                lock.notify_all()

        client.on_signal(signals.reconnecting, on_reconnecting)
        client.on_signal(signals.channel_joined, lambda _c, **kw: kw["rejoined"] and rejoined.release())
        clients.append(client)
    try:
        for client in clients:
            client.connect()
            client.join("room:herd")
        phoenix_server.stop(abrupt=True)
        # Wait until every client has failed at least twice while the server is down.
        with lock:
            assert lock.wait_for(lambda: len(delays) == 50 and all(len(d) >= 2 for d in delays.values()), 30)
        phoenix_server.start()
        for _ in range(50):
            assert rejoined.acquire(timeout=30), "every client rejoins after the restart"
        with lock:
            first = [d[0] for d in delays.values()]
            second = [d[1] for d in delays.values()]
        # Scheduled delays, not wall-clock times: each attempt is spread over ±50 % of its step.
        for attempt, values, base in ((1, first, 0.05), (2, second, 0.1)):
            assert min(values) >= base * 0.5 - 1e-9 and max(values) <= base * 1.5 + 1e-9
            assert max(values) - min(values) > base * 0.6, f"attempt {attempt} not spread: {sorted(values)}"
            assert statistics.pstdev(values) > base * 0.15
            assert len(set(values)) > 40, "clients must not share the same delay"
    finally:
        for client in clients:
            client.close()


def test_without_jitter_the_fleet_would_retry_in_lockstep():
    plain = Backoff(steps=(0.05, 0.1), jitter="none")
    jittered = Backoff(steps=(0.05, 0.1))  # the default: proportional jitter
    assert len({plain.delay(1) for _ in range(50)}) == 1
    assert len({jittered.delay(1) for _ in range(50)}) > 40
    assert Backoff.phoenix_reconnect().jitter != "none", "jitter is on by default"
