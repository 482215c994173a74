"""Stream recovery: replay rate after a cut, and what recovery costs on the live receive rate.

    python bench/recovery.py [--count 100000] [--repeat 3]

The peer is maxsdk's embedded server in a separate process (so its CPU is
not counted) with a :class:`~maxsdk.server.stream.StreamHistory` big enough
for ``count`` events. Two measurements, rows interleaved, medians shown:

* **replay**: a ``recover=True`` channel holds a position, leaves; the server
  numbers ``count`` events meanwhile; the channel joins again and the server
  replays them all (``push_many`` runs, then ``stream_recovered``). Events/s
  from the join to the last replayed event delivered to the handler.
* **live**: ``count`` stamped events pushed to one channel as fast as the
  server writes them, received by a plain channel and by a ``recover=True``
  one (deduplication and ordering on every event). Events/s, and the
  overhead of recovery as the loss of rate (target: at most 10 %).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxsdk import Client

SERVER = """
import json, sys
from maxsdk.server import PhoenixServer, Router, ServerSettings, ok
from maxsdk.server.stream import StreamChannel, StreamHistory

history = StreamHistory(limit=int(sys.argv[1]) + 10)
PAYLOAD = {"data": "x" * 80}

class BenchChannel(StreamChannel):
    def handle_in(self, event, payload, socket):
        if event == "append":   # numbered and kept, sent to nobody: the events of a cut
            history.publish_many(None, payload["topic"], "tick", (PAYLOAD for _ in range(payload["n"])))
            return ok()
        if event == "flood":    # numbered, kept and pushed to this client
            socket.push_many("tick", history.stamp_many(socket.topic, "tick", (PAYLOAD for _ in range(payload["n"]))))
            return ok()
        return super().handle_in(event, payload, socket)

router = Router([("bench:*", lambda: BenchChannel(history))])
with PhoenixServer(router, settings=ServerSettings(record_limit=1)) as server:
    print(json.dumps({"url": server.url}), flush=True)
    sys.stdin.read()
"""


#: Client CPU µs per live event (this process only: the server runs in another), by recover.
CPU: dict[bool, list[float]] = {False: [], True: []}


class Counter:
    """Counts handler calls; sets an event at a target (no polling)."""

    def __init__(self) -> None:
        self.seen = 0
        self.target = 0
        self.done = threading.Event()

    def __call__(self, payload: object) -> None:
        self.seen += 1
        if self.seen >= self.target:
            self.done.set()

    def expect(self, more: int) -> None:
        self.done.clear()
        self.target = self.seen + more


def replay(url: str, count: int, round_no: int) -> float:
    with Client(url, dispatch_queue_size=count + 1000, overflow="block", timeout=120) as client:
        control = client.join(f"bench:control-{round_no}")
        topic = f"bench:replay-{round_no}"
        feed = client.channel(topic, recover=True)
        counter = Counter()
        feed.on("tick", counter)
        feed.join()
        counter.expect(1)
        feed.push("flood", {"n": 1})
        assert counter.done.wait(30), "the first event never came"
        feed.leave()  # the cut: the channel keeps its position
        control.push("append", {"topic": topic, "n": count}, timeout=120)
        counter.expect(count)
        started = time.perf_counter()
        feed.join()
        assert counter.done.wait(300), f"replay: {counter.seen - 1} of {count}"
        elapsed = time.perf_counter() - started
        assert feed.position is not None and feed.position.offset == count + 1
        return count / elapsed


def live(url: str, count: int, recover: bool, round_no: int) -> float:
    with Client(url, dispatch_queue_size=count + 1000, overflow="block", timeout=120) as client:
        feed = client.channel(f"bench:live-{recover}-{round_no}", recover=recover)
        counter = Counter()
        feed.on("tick", counter)
        feed.join()
        counter.expect(1)
        feed.push("flood", {"n": 1})  # warm up; with recovery, the replay marker is past
        assert counter.done.wait(30)
        counter.expect(count)
        started, cpu = time.perf_counter(), time.process_time()
        feed.push_nowait("flood", {"n": count}, timeout=120)
        assert counter.done.wait(300), f"live: {counter.seen} of {count}"
        CPU[recover].append((time.process_time() - cpu) / count * 1e6)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"]
        rates: dict[str, list[float]] = {"replay": [], "plain": [], "recover": []}
        for round_no in range(args.repeat):  # interleaved
            rates["plain"].append(live(url, args.count, False, round_no))
            rates["recover"].append(live(url, args.count, True, round_no))
            rates["replay"].append(replay(url, args.count, round_no))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(30)
    print(f"### Stream recovery ({args.count:,} events of ~100 B, {args.repeat} runs; median (min-max))\n")
    print("| measurement | events/s | vs plain live |")
    print("| --- | ---: | ---: |")
    plain = statistics.median(rates["plain"])
    labels = {"plain": "live, plain channel", "recover": "live, recover=True", "replay": "replay after a cut"}
    for key in ("plain", "recover", "replay"):
        values = rates[key]
        median = statistics.median(values)
        print(f"| {labels[key]} | {median:,.0f} ({min(values):,.0f}-{max(values):,.0f}) | {median / plain:.2f}x |")
    overhead = (1 - statistics.median(rates["recover"]) / plain) * 100
    cpu_plain, cpu_recover = statistics.median(CPU[False]), statistics.median(CPU[True])
    cpu_overhead = (cpu_recover / cpu_plain - 1) * 100
    print("\n| live receive | client CPU µs per event |")
    print("| --- | ---: |")
    print(f"| plain channel | {cpu_plain:.1f} |")
    print(f"| recover=True | {cpu_recover:.1f} |")
    verdict = "within" if cpu_overhead <= 10 else "over"
    print(
        f"\nrecovery overhead on the live receive: {overhead:.1f} % of the rate, "
        f"{cpu_overhead:.1f} % of client CPU per event ({verdict} the 10 % target)"
    )


if __name__ == "__main__":
    main()
