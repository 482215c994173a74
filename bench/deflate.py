"""permessage-deflate: bytes on the wire and client CPU per 4 KB JSON message, off vs on.

    python bench/deflate.py [--count 5000] [--repeat 3]

The peer is the ``websockets`` library's echo server in a separate process
(so its CPU is not counted), reached through a byte-counting TCP relay. Each
round sends ``count`` distinct 4 KB JSON messages and reads each echo; rows
are interleaved (off, takeover, no takeover, off...) and the table shows
medians: bytes on the wire per message in each direction, client CPU
microseconds per message (send + receive), and ratios to "off".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxsdk import Deflate
from maxsdk._runtime.transport import TransportOptions, open_websocket
from tests.support.faultproxy import FaultProxy

SERVER = """
import sys
from websockets.sync.server import serve
def echo(connection):
    for message in connection:
        connection.send(message)
with serve(echo, "127.0.0.1", 0, compression="deflate", max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"""

MODES = {
    "off": None,
    "deflate (context takeover)": Deflate(),
    "deflate (no context takeover)": Deflate(client_no_context_takeover=True, server_no_context_takeover=True),
}


def message(n: int) -> str:
    """A 4 KB JSON message, different each time (ids, names, a timestamp)."""
    rows: list[dict[str, object]] = []
    body = {"topic": f"room:{n % 50}", "event": "update", "at": 1_700_000_000 + n, "rows": rows}
    i = 0
    while len(json.dumps(body)) < 4096:
        rows.append({"id": n * 100 + i, "user": f"user-{(n * 7 + i) % 997}", "score": (n * i) % 1000})
        i += 1
    rows.pop()
    return json.dumps(body)


def run(port: int, settings: Deflate | None, count: int) -> tuple[float, float, float]:
    """Bytes up and down per message, client CPU µs per message."""
    with FaultProxy(("127.0.0.1", port)) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/"
        transport = open_websocket(url, TransportOptions(compression=settings, max_message_size=None), redacted_url=url)
        messages = [message(n) for n in range(count)]
        base = proxy.stats()
        started = time.process_time()
        for text in messages:
            transport.send(text)
            transport.recv()
        cpu = time.process_time() - started
        stats = proxy.stats()
        transport.close()
        transport.abort()
    up = (stats.bytes_upstream - base.bytes_upstream) / count
    down = (stats.bytes_downstream - base.bytes_downstream) / count
    return up, down, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in MODES}
        for _ in range(args.repeat):
            for name, settings in MODES.items():
                results[name].append(run(port, settings, args.count))
    finally:
        server.terminate()
        server.wait(10)
    off_up = statistics.median(r[0] for r in results["off"])
    off_cpu = statistics.median(r[2] for r in results["off"])
    size = statistics.mean(len(message(n)) for n in range(args.count))
    print(f"permessage-deflate, {args.count} x {size:,.0f} B JSON echoed, median of {args.repeat} interleaved rounds\n")
    print("| mode | bytes/msg up | bytes/msg down | wire ratio | client CPU µs/msg | CPU ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        up = statistics.median(r[0] for r in rows)
        down = statistics.median(r[1] for r in rows)
        cpu = statistics.median(r[2] for r in rows)
        print(f"| {name} | {up:,.0f} | {down:,.0f} | {up / off_up:.2f}x | {cpu:,.1f} | {cpu / off_cpu:.2f}x |")


if __name__ == "__main__":
    main()
