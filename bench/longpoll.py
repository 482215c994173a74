"""Long-poll against WebSocket: round trip and receive rate, same server, same run.

    python bench/longpoll.py                      # defaults below
    python bench/longpoll.py --rtt 5000 --flood 50000 --size 100 --threads 8

The embedded server (``maxsdk.server.PhoenixServer``, reference app) runs in its
own process (``--serve`` mode of this file), so client and server do not share
a GIL; both transports talk to that one server on one port. For each transport:

* ``rtt``: sequential ``echo`` push -> reply on ``room:bench`` (after a warm-up);
  p50 and p99 in microseconds;
* ``concurrent``: ``--threads`` callers pushing at once on one client (long-poll
  sends what queued up during a POST in the next one); replies per second;
* ``receive``: one ``flood`` push makes the server send ``--flood`` messages of
  ``--size`` bytes, each delivered to a handler; messages per second.

Prints one table (and ``--json`` prints the numbers as JSON too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRANSPORTS = ("websocket", "longpoll")


def serve() -> None:
    """Child process: run the server until stdin closes; print the port first."""
    from maxsdk.server import PhoenixServer, ServerSettings

    with PhoenixServer(settings=ServerSettings(record_limit=1)) as server:
        sys.stdout.write(json.dumps({"port": server.port}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(url: str, transport: str, args: argparse.Namespace) -> dict[str, float]:
    from maxsdk import Client

    results: dict[str, float] = {}
    with Client(url, transport=transport, timeout=60.0, heartbeat_interval=False) as client:
        room = client.join("room:bench")
        for _ in range(args.warmup):
            room.push("echo", {"body": "ping"})
        samples = []
        for _ in range(args.rtt):
            started = time.perf_counter()
            room.push("echo", {"body": "ping"})
            samples.append(time.perf_counter() - started)
        results["rtt_p50_us"] = percentile(samples, 0.50) * 1e6
        results["rtt_p99_us"] = percentile(samples, 0.99) * 1e6
        results["rtt_mean_us"] = statistics.fmean(samples) * 1e6

        per_thread = max(1, args.rtt // args.threads)
        barrier = threading.Barrier(args.threads + 1)

        def caller() -> None:
            barrier.wait()
            for _ in range(per_thread):
                room.push("echo", {"body": "ping"})

        callers = [threading.Thread(target=caller) for _ in range(args.threads)]
        for thread in callers:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in callers:
            thread.join()
        results["concurrent_per_s"] = per_thread * args.threads / (time.perf_counter() - started)

        done = threading.Event()
        count = 0

        def on_flood(payload: Any) -> None:
            nonlocal count
            count += 1
            if count == args.flood:
                done.set()

        room.on("flood_msg", on_flood)
        started = time.perf_counter()
        room.push("flood", {"n": args.flood, "size": args.size}, timeout=300)
        if not done.wait(300):
            raise RuntimeError(f"{transport}: only {count} of {args.flood} flood messages arrived")
        results["receive_per_s"] = args.flood / (time.perf_counter() - started)
        results["frames_in"] = client.diagnostics().frames_in
    return results


def table(numbers: dict[str, dict[str, float]]) -> str:
    rows = [
        ("round trip p50 (µs)", "rtt_p50_us", "{:,.0f}"),
        ("round trip p99 (µs)", "rtt_p99_us", "{:,.0f}"),
        ("round trip mean (µs)", "rtt_mean_us", "{:,.0f}"),
        ("concurrent pushes (replies/s)", "concurrent_per_s", "{:,.0f}"),
        ("receive rate (messages/s)", "receive_per_s", "{:,.0f}"),
    ]
    header = f"| {'metric':<30} | {'websocket':>12} | {'longpoll':>12} | {'longpoll/ws':>11} |"
    lines = [header, "|" + "-" * 32 + "|" + "-" * 14 + "|" + "-" * 14 + "|" + "-" * 13 + "|"]
    for label, key, fmt in rows:
        ws, lp = numbers["websocket"][key], numbers["longpoll"][key]
        lines.append(f"| {label:<30} | {fmt.format(ws):>12} | {fmt.format(lp):>12} | {lp / ws:>10.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", type=int, default=3000, help="sequential round trips per transport")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8, help="callers in the concurrent test")
    parser.add_argument("--flood", type=int, default=20000, help="messages in the receive test")
    parser.add_argument("--size", type=int, default=100, help="bytes of each flood message's data")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout is not None
        port = json.loads(child.stdout.readline())["port"]
        url = f"ws://127.0.0.1:{port}/socket"
        numbers = {transport: measure(url, transport, args) for transport in TRANSPORTS}
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
    print(
        f"long-poll vs WebSocket, one embedded server (own process), {args.rtt} round trips, "
        f"{args.threads} concurrent callers, {args.flood} x {args.size} B received"
    )
    print(table(numbers))
    if args.json:
        print(json.dumps(numbers))


if __name__ == "__main__":
    main()
