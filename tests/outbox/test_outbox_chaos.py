"""The outbox loses nothing: connection cuts, server restarts, and a producer killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from maxsdk import Backoff
from maxsdk.outbox import OutboxConfig
from tests.client.helpers import fast_client


def first_deliveries(server, topic):
    """Keys in the order the server first saw them, and how many duplicates it got."""
    seen, order, duplicates = set(), [], 0
    for message in server.messages():
        if message.topic != topic or message.event != "echo":
            continue
        key = message.payload.get("idempotency_key")
        if key in seen:
            duplicates += 1
        else:
            seen.add(key)
            order.append(key)
    return order, duplicates


@pytest.mark.timeout(300)
def test_ten_thousand_sends_survive_a_hundred_cuts_and_two_restarts(phoenix_server, tmp_path):
    config = OutboxConfig(str(tmp_path / "outbox"), synchronous="normal", max_in_flight=50, reply_timeout=2.0)
    client = fast_client(phoenix_server.url, outbox=config, reconnect=Backoff(steps=(0.01, 0.02, 0.05), jitter="full"))
    topics = ["room:a", "room:b", "room:c"]
    sent: dict[str, list[str]] = {topic: [] for topic in topics}
    cuts = {"drops": 0, "restarts": 0}
    done = threading.Event()

    def chaos():
        rng = random.Random(20261123)
        while cuts["drops"] + cuts["restarts"] < 102 and not done.is_set():
            done.wait(rng.uniform(0.005, 0.03))
            if cuts["drops"] in (35, 70) and cuts["restarts"] < (1 if cuts["drops"] == 35 else 2):
                phoenix_server.stop(abrupt=True)
                done.wait(0.2)
                phoenix_server.start()
                cuts["restarts"] += 1
            else:
                phoenix_server.drop_connections()
                cuts["drops"] += 1

    with client:
        rooms = [client.join(topic) for topic in topics]
        chaos_thread = threading.Thread(target=chaos)
        chaos_thread.start()
        try:
            for n in range(10_000):
                room = rooms[n % 3]
                sent[room.topic].append(room.send("echo", {"seq": n}))
            chaos_thread.join(120)
        finally:
            done.set()
            chaos_thread.join(10)
        assert cuts["drops"] >= 100 and cuts["restarts"] == 2
        assert client.outbox.wait_drained(180), f"still queued: {client.outbox.stats()}"
        assert client.outbox.depth() == 0 and client.outbox.dead_letters() == []
        assert client.diagnostics().reconnects >= 50
    total_duplicates = 0
    for topic in topics:
        order, duplicates = first_deliveries(phoenix_server, topic)
        total_duplicates += duplicates
        assert len(order) == len(sent[topic]) == len(set(order)), "every key at least once, exactly once after dedup"
        assert order == sent[topic], f"per-channel order broken on {topic}"
    print(f"duplicates delivered (dropped by key on a real server): {total_duplicates}")


CHILD = textwrap.dedent(
    """
    import sys
    from maxsdk import Client
    from maxsdk.outbox import OutboxConfig

    url, path = sys.argv[1], sys.argv[2]
    client = Client(url, outbox=OutboxConfig(path, synchronous="full"))
    room = client.join("room:crash")
    n = 0
    while True:
        key = room.send("echo", {"seq": n})
        sys.stdout.write(key + "\\n")
        sys.stdout.flush()
        n += 1
    """
)


@pytest.mark.timeout(120)
def test_a_producer_killed_with_sigkill_loses_nothing(phoenix_server, tmp_path):
    path = str(tmp_path / "outbox")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, phoenix_server.url, path],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    accepted = []
    stop_after = random.Random(7).randint(150, 600)
    try:
        for line in child.stdout:
            accepted.append(line.strip())
            if len(accepted) >= stop_after:
                break
        os.kill(child.pid, signal.SIGKILL)  # mid-flight: some sent, some acked, some only on disk
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(accepted) == stop_after
    with fast_client(phoenix_server.url, outbox=path) as client:
        client.join("room:crash")
        assert client.outbox.wait_drained(60)
    order, _ = first_deliveries(phoenix_server, "room:crash")
    missing = set(accepted) - set(order)
    assert not missing, f"{len(missing)} accepted messages never reached the server"
    assert [key for key in order if key in set(accepted)] == accepted, "delivered in the order they were sent"
