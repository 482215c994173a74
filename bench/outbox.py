"""Durable outbox throughput against plain pushes, and the time to drain a backlog.

    python bench/outbox.py [--count 10000] [--repeat 3] [--synchronous full|normal]

Same Node bench server, same run, interleaved. Prints a markdown table:

* plain pushes: ``push_nowait`` N echo pushes, then wait for every reply;
* durable sends: ``send`` N messages (each on disk before ``send`` returns),
  then wait until the outbox is drained (every ok reply acknowledged on disk);
* backlog drain: N messages queued while disconnected, then the time from
  reconnecting to an empty outbox (target: >= 5,000 messages/s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import node_server
from maxsdk import Client
from maxsdk.outbox import OutboxConfig


def plain(endpoint: str, count: int) -> float:
    with Client(endpoint) as client:
        room = client.join("room:bench")
        started = time.perf_counter()
        pending = [room.push_nowait("echo", {"n": n}, timeout=60) for n in range(count)]
        for reply in pending:
            reply.wait()
        return count / (time.perf_counter() - started)


def durable(endpoint: str, count: int, synchronous: str) -> tuple[float, float]:
    directory = tempfile.mkdtemp(prefix="outbox-bench-")
    try:
        with Client(endpoint, outbox=OutboxConfig(directory, synchronous=synchronous)) as client:
            room = client.join("room:bench")
            started = time.perf_counter()
            for n in range(count):
                room.send("echo", {"n": n})
            accepted = time.perf_counter() - started
            assert client.outbox is not None and client.outbox.wait_drained(300)
            return count / accepted, count / (time.perf_counter() - started)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def durable_batched(endpoint: str, count: int, synchronous: str, batch: int = 100) -> float:
    directory = tempfile.mkdtemp(prefix="outbox-bench-")
    try:
        with Client(endpoint, outbox=OutboxConfig(directory, synchronous=synchronous)) as client:
            room = client.join("room:bench")
            started = time.perf_counter()
            for first in range(0, count, batch):
                room.send_many([("echo", {"n": n}) for n in range(first, min(first + batch, count))])
            assert client.outbox is not None and client.outbox.wait_drained(300)
            return count / (time.perf_counter() - started)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def drain(endpoint: str, count: int, synchronous: str) -> float:
    directory = tempfile.mkdtemp(prefix="outbox-bench-")
    try:
        client = Client(endpoint, outbox=OutboxConfig(directory, synchronous=synchronous))
        room = client.channel("room:bench")
        for n in range(count):
            room.send("echo", {"n": n})  # queued: not connected yet
        started = time.perf_counter()
        client.connect()
        room.join()
        assert client.outbox is not None and client.outbox.wait_drained(300)
        elapsed = time.perf_counter() - started
        client.close()
        return count / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--node", default=shutil.which("node") or "node")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"plain": [], "accept": [], "end_to_end": [], "batched": [], "drain": []}
    with node_server(args.node) as server:
        for _ in range(args.repeat):  # interleaved: A B C, A B C...
            results["plain"].append(plain(server.endpoint, args.count))
            accept, end_to_end = durable(server.endpoint, args.count, args.synchronous)
            results["accept"].append(accept)
            results["end_to_end"].append(end_to_end)
            results["batched"].append(durable_batched(server.endpoint, args.count, args.synchronous))
            results["drain"].append(drain(server.endpoint, args.count, args.synchronous))

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

    base = statistics.median(results["plain"])
    print(
        f"### Durable outbox vs plain pushes ({args.count:,} messages, synchronous={args.synchronous}, "
        f"{args.repeat} runs; median (min-max))\n"
    )
    print("| workload | messages/s | x plain |")
    print("| --- | ---: | ---: |")
    rows = [
        ("plain pushes, pipelined, all replies", "plain"),
        ("durable send() accepted (on disk)", "accept"),
        ("durable send() to acknowledged end to end", "end_to_end"),
        ("durable send_many() of 100, end to end", "batched"),
        ("backlog drain after reconnect", "drain"),
    ]
    for label, key in rows:
        print(f"| {label} | {cell(results[key])} | {statistics.median(results[key]) / base:.2f}x |")
    drain_rate = statistics.median(results["drain"])
    verdict = "meets" if drain_rate >= 5000 else "misses"
    print(f"\nBacklog drain {drain_rate:,.0f} messages/s: {verdict} the 5,000 messages/s target.")


if __name__ == "__main__":
    main()
