"""JSON-RPC round trips: maxsdk.JsonRpcClient against raw websocket-client, on one server, in one run.

    python bench/jsonrpc.py [--calls 6000] [--threads 1,8,32]

The embedded JSON-RPC server (maxsdk.server.JsonRpcServer) runs in a child
process on 127.0.0.1, so that it does not share the client's GIL. For each
number of concurrent caller threads, each contender makes ``--calls`` calls of
``echo`` in total over one connection (every thread waits for its own reply
before the next call) and the table shows the round-trip p50/p99 and the calls
per second.

Contenders:

* ``maxsdk``: ``JsonRpcClient.call()`` from every thread;
* ``raw``: websocket-client by hand — with one thread a plain send/recv loop;
  with several, a lock around ``send``, one reader thread matching replies to
  callers by id (what correlation needs at a minimum), no timeouts, no
  reconnects.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

SERVER = """
import sys, threading
from maxsdk.server import JsonRpcServer
server = JsonRpcServer().start()
print(server.port, flush=True)
sys.stdin.read()
server.stop(abrupt=True)
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    return proc, f"ws://127.0.0.1:{port}/"


def run_threads(threads: int, calls: int, make_call: Callable[[int, int], None]) -> tuple[list[float], float]:
    """Run ``threads`` callers sharing ``calls`` calls; return (latencies in µs, wall seconds)."""
    per_thread = calls // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        out = latencies[index]
        perf = time.perf_counter
        barrier.wait()
        for n in range(per_thread):
            started = perf()
            make_call(index, n)
            out.append((perf() - started) * 1e6)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    return [x for chunk in latencies for x in chunk], wall


def bench_maxsdk(url: str, threads: int, calls: int, warmup: int) -> tuple[list[float], float]:
    import maxsdk

    with maxsdk.JsonRpcClient(url, timeout=30.0, ping_interval=False) as rpc:

        def call(index: int, n: int) -> None:
            result = rpc.call("echo", [index, n])
            if result[0] != index:
                raise AssertionError("a reply reached the wrong caller")

        run_threads(threads, warmup, call)
        return run_threads(threads, calls, call)


def bench_raw(url: str, threads: int, calls: int, warmup: int) -> tuple[list[float], float]:
    import websocket

    ws = websocket.create_connection(url, enable_multithread=True, skip_utf8_validation=True)
    try:
        if threads == 1:
            counter = iter(range(1, 1 << 62))

            def call(index: int, n: int) -> None:
                request_id = next(counter)
                ws.send(json.dumps({"jsonrpc": "2.0", "method": "echo", "params": [index, n], "id": request_id}))
                reply = json.loads(ws.recv())
                if reply["id"] != request_id:
                    raise AssertionError("out of order")

            run_threads(1, warmup, call)
            return run_threads(1, calls, call)
        return _raw_concurrent(ws, threads, calls, warmup)
    finally:
        ws.close()


def _raw_concurrent(ws: object, threads: int, calls: int, warmup: int) -> tuple[list[float], float]:
    send_lock = threading.Lock()
    waiting: dict[int, list[object]] = {}
    waiting_lock = threading.Lock()
    ids = iter(range(1, 1 << 62))
    ids_lock = threading.Lock()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                text = ws.recv()  # type: ignore[attr-defined]
            except Exception:
                return
            if not text:  # closed
                return
            reply = json.loads(text)
            with waiting_lock:
                slot = waiting.pop(reply["id"], None)
            if slot is not None:
                slot[1] = reply
                slot[0].set()  # type: ignore[attr-defined]

    reading = threading.Thread(target=reader, daemon=True)
    reading.start()

    def call(index: int, n: int) -> None:
        with ids_lock:
            request_id = next(ids)
        slot: list[object] = [threading.Event(), None]
        with waiting_lock:
            waiting[request_id] = slot
        text = json.dumps({"jsonrpc": "2.0", "method": "echo", "params": [index, n], "id": request_id})
        with send_lock:
            ws.send(text)  # type: ignore[attr-defined]
        slot[0].wait()  # type: ignore[attr-defined]
        if slot[1]["result"][0] != index:  # type: ignore[index]
            raise AssertionError("a reply reached the wrong caller")

    run_threads(threads, warmup, call)
    result = run_threads(threads, calls, call)
    stop.set()
    ws.close()  # type: ignore[attr-defined]
    reading.join(5)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6000, help="calls per contender and concurrency level")
    parser.add_argument("--threads", default="1,8,32", help="comma-separated numbers of caller threads")
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    levels = [int(t) for t in args.threads.split(",")]
    proc, url = start_server()
    rows = []
    try:
        for threads in levels:
            calls = args.calls - args.calls % threads
            for name, bench in (("raw websocket-client", bench_raw), ("maxsdk JsonRpcClient", bench_maxsdk)):
                latencies, wall = bench(url, threads, calls, max(args.warmup, threads * 10))
                rows.append(
                    (threads, name, statistics.median(latencies), percentile(latencies, 0.99), len(latencies) / wall)
                )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    print(f"JSON-RPC echo round trips over loopback ({args.calls} calls per row, cpus={os.cpu_count()})")
    print(f"{'threads':>7}  {'contender':<22} {'p50 µs':>9} {'p99 µs':>9} {'calls/s':>9}")
    for threads, name, p50, p99, rate in rows:
        print(f"{threads:>7}  {name:<22} {p50:>9.0f} {p99:>9.0f} {rate:>9.0f}")


if __name__ == "__main__":
    main()
