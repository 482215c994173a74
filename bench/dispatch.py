"""Dispatch cost per event: a dict handler, a typed-model handler and the message iterator.

    python bench/dispatch.py [--count 100000] [--repeat 3]

Same Node bench server (it floods ``{"data": "..."}`` broadcasts), same run,
interleaved; prints events/s delivered to user code and the cost per event
relative to the dict handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import node_server
from maxsdk import Client


@dataclasses.dataclass
class Flood:
    """The typed shape of the bench server's flood messages."""

    data: str


def run(endpoint: str, count: int, mode: str) -> float:
    with Client(endpoint, dispatch_queue_size=max(10_000, count), overflow="block") as client:
        room = client.join("room:bench")
        done = threading.Event()
        seen = [0]

        def handler(payload: object) -> None:
            seen[0] += 1
            if seen[0] == count:
                done.set()

        if mode == "dict":
            room.on("flood_msg", handler)
        elif mode == "typed":
            room.on("flood_msg", handler, model=Flood)
        started = time.perf_counter()
        if mode == "iterator":
            with room.messages(events={"flood_msg"}, maxsize=count) as stream:
                room.push_nowait("flood", {"n": count, "size": 100}, timeout=120)
                for _ in stream:
                    seen[0] += 1
                    if seen[0] == count:
                        break
        else:
            room.push_nowait("flood", {"n": count, "size": 100}, timeout=120)
            done.wait(120)
        elapsed = time.perf_counter() - started
        assert seen[0] == count, f"{mode}: {seen[0]} of {count}"
        return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--node", default=shutil.which("node") or "node")
    args = parser.parse_args()
    modes = ["dict", "typed", "iterator"]
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    with node_server(args.node) as server:
        for _ in range(args.repeat):
            for mode in modes:  # interleaved
                results[mode].append(run(server.endpoint, args.count, mode))
    base = statistics.median(results["dict"])
    print(f"### Dispatch cost per event ({args.count:,} x ~100 B broadcasts, {args.repeat} runs; median (min-max))\n")
    print("| consumer | events/s | µs per event | x dict handler |")
    print("| --- | ---: | ---: | ---: |")
    labels = {"dict": "dict handler", "typed": "typed handler (dataclass model)", "iterator": "channel.messages()"}
    for mode in modes:
        values = results[mode]
        median = statistics.median(values)
        print(
            f"| {labels[mode]} | {median:,.0f} ({min(values):,.0f}-{max(values):,.0f}) | "
            f"{1e6 / median:.1f} | {base / median:.2f}x |"
        )


if __name__ == "__main__":
    main()
