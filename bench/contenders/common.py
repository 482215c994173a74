"""What every Python contender script shares: the command line, the workload shapes, the metrics.

A contender script maps workload names to functions and calls :func:`run`::

    python CONTENDER.py --workload rtt --url ws://127.0.0.1:PORT/socket --params '{"count": 10000}'

It prints exactly one JSON line on stdout: ``{"metrics": {...}}``, ``{"na": "reason"}``
(the contender cannot do this workload) or ``{"error": "..."}``. Each run is its own
process, so memory and CPU figures belong to one contender and one workload only.

Client libraries are imported inside the workload functions, so the memory workload
can tell the cost of importing the client from the cost of a connected client (the
runner measures a bare interpreter separately, the same baseline for every client).

Workloads and their parameters (the same for every contender, and for the phoenix.js
driver in ``bench/server/phoenixjs_client.js``):

* ``rtt(count, warmup)``: sequential ``echo`` push → reply on ``room:bench``;
  metrics ``p50_us``, ``p99_us``, ``p999_us``, ``mean_us``.
* ``rtt_concurrent(count, threads, warmup)``: ``threads`` callers push at once on one
  connection; metrics ``throughput`` (replies/s) and the latency percentiles.
* ``receive(n, size)``: one ``flood`` push makes the server send ``n`` broadcasts of
  ``size`` bytes; each is delivered to a handler; metrics ``rate`` (messages/s),
  ``cpu_s_per_100k`` (process CPU seconds per 100,000 messages).
* ``connect_join(attempts, warmup)``: a new client connects and joins; ``p50_ms``, ``p99_ms``.
* ``memory(channels)``: RSS bare, after imports, with an idle joined client, and with
  ``channels`` more joined channels.
* ``fanout(clients, n, size)``: ``clients`` clients in this process join ``room:fanout``;
  one ``fanout`` push makes the server send ``n`` broadcasts to each; ``rate`` (total
  messages/s delivered), ``threads_per_client``, ``rss_per_client_mb``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux ``/proc``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found")


TOPIC = "room:bench"
FANOUT_TOPIC = "room:fanout"
ECHO_PAYLOAD = {"body": "ping"}
LONG_TIMEOUT = 300.0


class NotSupportedError(Exception):
    """The contender cannot do this workload (the message says why)."""


def settled_rss_mb() -> float:
    """RSS after a full garbage collection."""
    import gc

    gc.collect()
    return rss_mb()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = math.ceil(round(q * len(sorted_values), 6))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p99/p99.9/mean in microseconds."""
    values = sorted(ns / 1000 for ns in samples_ns)
    return {
        "p50_us": percentile(values, 0.5),
        "p99_us": percentile(values, 0.99),
        "p999_us": percentile(values, 0.999),
        "mean_us": sum(values) / len(values),
        "count": len(values),
    }


def ms_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p99/mean in milliseconds."""
    values = sorted(ns / 1e6 for ns in samples_ns)
    return {
        "p50_ms": percentile(values, 0.5),
        "p99_ms": percentile(values, 0.99),
        "mean_ms": sum(values) / len(values),
        "count": len(values),
    }


def receive_metrics(n: int, size: int, elapsed: float, cpu: float, received: int, dropped: int = 0) -> dict[str, Any]:
    """The receive workload's metrics (the rate counts delivered messages only)."""
    return {
        "dropped": dropped,
        "rate": received / elapsed,
        "elapsed_s": elapsed,
        "received": received,
        "cpu_s": cpu,
        "cpu_s_per_100k": cpu * 100_000 / max(1, received),
        "mb_s": received * size / elapsed / 1e6,
    }


def memory_metrics(imports: float, idle: float, many: float, channels: int) -> dict[str, float]:
    """The memory workload's metrics (MiB); the runner adds the bare-interpreter baseline."""
    return {
        "imports_mb": imports,
        "idle_mb": idle,
        "channels_mb": many,
        "idle_over_imports_mb": idle - imports,
        "channels_over_idle_mb": many - idle,
        "channels": channels,
    }


def run_threads(count: int, target: Callable[[int], None]) -> float:
    """Run ``target(i)`` on ``count`` threads released together; return the wall time."""
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        barrier.wait()
        try:
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


class Countdown:
    """A message handler that counts; at ``target`` it notes the time and sets ``done``.

    Cheap enough for a hot handler: the work a real handler does is not what is measured.
    """

    __slots__ = ("count", "done", "dropped", "finished_at", "on_done", "target")

    def __init__(self, target: int, on_done: Callable[[], Any] | None = None) -> None:
        self.count = 0
        self.dropped = 0
        self.target = target
        self.finished_at = 0.0
        self.done = threading.Event()
        self.on_done = on_done  # e.g. an asyncio.Event's set, when the handler runs on the loop

    def __call__(self, *_: Any) -> None:
        self.count += 1
        if self.count + self.dropped == self.target:
            self._finish()

    def lost(self, count: int) -> None:
        """``count`` messages were dropped by the client: they will never arrive."""
        self.dropped += count
        if self.count + self.dropped >= self.target and not self.done.is_set():
            self._finish()

    def _finish(self) -> None:
        self.finished_at = time.perf_counter()
        self.done.set()
        if self.on_done is not None:
            self.on_done()

    def wait(self, timeout: float = LONG_TIMEOUT) -> None:
        """Block until ``target`` messages arrived (raise ``TimeoutError`` otherwise)."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"only {self.count} of {self.target} messages arrived within {timeout:g} s")


def async_countdowns(count: int, target: int) -> tuple[list[Countdown], Callable[[], Any]]:
    """``count`` countdowns for handlers running on the current event loop, and an awaitable for all."""
    import asyncio

    events = [asyncio.Event() for _ in range(count)]
    counters = [Countdown(target, on_done=event.set) for event in events]

    async def all_done() -> None:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), LONG_TIMEOUT)

    return counters, all_done


def emit(result: dict[str, Any]) -> None:
    """Print the one result line."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def run(
    workloads: dict[str, Callable[..., dict[str, Any]]], default: Callable[..., dict[str, Any]] | None = None
) -> None:
    """Parse the command line, run one workload, print its result line and exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--url", required=True, help="socket endpoint without /websocket")
    parser.add_argument("--params", default="{}", help="workload parameters as JSON")
    args = parser.parse_args()
    fn = workloads.get(args.workload, default)
    code = 0
    try:
        if fn is None:
            raise NotSupportedError(f"no {args.workload} workload")
        emit({"metrics": fn(args.url, **json.loads(args.params))})
    except NotSupportedError as exc:
        emit({"na": str(exc)})
    except BaseException as exc:
        emit({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)})
        code = 1
    # Some clients leave non-daemon threads behind; the result is out, so leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
