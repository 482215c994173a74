"""What the always-on metrics cost per event, next to what handling an event costs anyway.

    python bench/metrics_overhead.py

The metrics code on the hot paths is a bucket increment per reply
(:class:`maxsdk._runtime.metrics.LatencyHistogram`), a counter increment per
delivered message and a few integer additions per frame. This times those
exact operations in isolation and prints them as a share of the per-event
costs measured by ``bench/dispatch.py`` and the round-trip benchmark.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxsdk._runtime.metrics import Metrics

N = 200_000


def per_call(statement: str, setup: str) -> float:
    """Best of 5 runs, microseconds per call."""
    return min(timeit.repeat(statement, setup, number=N, repeat=5)) / N * 1e6


def main() -> None:
    setup = "from maxsdk._runtime.metrics import Metrics\nm = Metrics()\ncounts = m.messages_by_event"
    reply = per_call("m.observe_reply('ok', 0.00021)", setup)
    message = per_call("counts['flood_msg'] += 1", setup)
    frame = per_call("a = 0\na += 1\nb = 0\nb += 120", "")
    heartbeat = per_call("m.observe_heartbeat(0.0004)", setup)
    Metrics()  # importable and constructible
    print("### Metrics overhead (always on)\n")
    print("| hot path | metrics work | µs per event | share of the event's cost |")
    print("| --- | --- | ---: | ---: |")
    # Reference costs from this machine's benchmark tables: ~7 µs to deliver a broadcast
    # to a dict handler (bench/dispatch.py), ~100 µs for a push round trip (bench/run.py).
    print(f"| received frame | frame and byte counters | {frame:.3f} | {frame / 7 * 100:.1f} % of ~7 µs |")
    print(f"| delivered message | per-event counter | {message:.3f} | {message / 7 * 100:.1f} % of ~7 µs |")
    print(f"| push reply | status counter + latency histogram | {reply:.3f} | {reply / 100 * 100:.2f} % of ~100 µs |")
    print(f"| heartbeat reply | EWMA of the round trip | {heartbeat:.3f} | once per 30 s |")


if __name__ == "__main__":
    main()
