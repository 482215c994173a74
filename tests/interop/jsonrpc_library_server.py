"""A JSON-RPC 2.0 server made of the PyPI ``json-rpc`` library behind a ``websockets`` server.

The library parses requests and batches, dispatches, and builds results and
error objects (with ``data``); this script adds what a library leaves to its
application: a WebSocket server and ``eth_subscribe``-style subscriptions
(``[eth_]subscribe`` returns an id, updates are notifications
``{"method": <update method>, "params": {"subscription": id, "result": ...}}``,
``[eth_]unsubscribe`` ends one). ``debug.*`` methods expose its state to tests.

Run: ``python jsonrpc_library_server.py --port 0``; prints ``{"port": N}``.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from typing import Any

from jsonrpc import Dispatcher, JSONRPCResponseManager
from jsonrpc.exceptions import JSONRPCDispatchException
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class Application:
    """Methods, subscriptions and the update ticker."""

    def __init__(self, update_method: str, subscribe_delay: float, update_interval: float) -> None:
        self.update_method = update_method
        self.subscribe_delay = subscribe_delay
        self.update_interval = update_interval
        self.lock = threading.Lock()
        self.subscriptions: dict[str, tuple[ServerConnection, str]] = {}
        self.unsubscribed: list[str] = []
        self.ids = itertools.count(1)
        self.updates = itertools.count(1)

    def dispatcher(self, connection: ServerConnection) -> Dispatcher:
        dispatcher = Dispatcher()
        dispatcher["sum"] = lambda *numbers: sum(numbers)
        dispatcher["echo"] = lambda *params: list(params)
        dispatcher["slow"] = _slow
        dispatcher["fail"] = _fail

        def subscribe(kind: str) -> str:
            if kind == "forbidden":
                raise JSONRPCDispatchException(code=-32602, message="unknown subscription kind", data=kind)
            if self.subscribe_delay:
                time.sleep(self.subscribe_delay)
            sub_id = f"0x{next(self.ids):x}"
            with self.lock:
                self.subscriptions[sub_id] = (connection, kind)
            return sub_id

        def unsubscribe(sub_id: str) -> bool:
            with self.lock:
                self.unsubscribed.append(sub_id)
                return self.subscriptions.pop(sub_id, None) is not None

        for prefix in ("eth_", ""):
            dispatcher[f"{prefix}subscribe"] = subscribe
            dispatcher[f"{prefix}unsubscribe"] = unsubscribe
        dispatcher["debug.live"] = lambda: sorted(self.subscriptions)
        dispatcher["debug.unsubscribed"] = lambda: list(self.unsubscribed)
        return dispatcher

    def handle(self, connection: ServerConnection) -> None:
        dispatcher = self.dispatcher(connection)
        try:
            for message in connection:
                # Each request on its own thread, as a server with a worker pool would answer.
                threading.Thread(target=_answer, args=(connection, dispatcher, message), daemon=True).start()
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                for sub_id in [s for s, (conn, _) in self.subscriptions.items() if conn is connection]:
                    del self.subscriptions[sub_id]

    def tick(self) -> None:
        while True:
            time.sleep(self.update_interval)
            with self.lock:
                live = list(self.subscriptions.items())
            for sub_id, (connection, kind) in live:
                params = {"subscription": sub_id, "result": {"kind": kind, "n": next(self.updates)}}
                try:
                    connection.send(json.dumps({"jsonrpc": "2.0", "method": self.update_method, "params": params}))
                except ConnectionClosed:
                    pass


def _slow(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


def _fail() -> None:
    raise JSONRPCDispatchException(code=-32050, message="refused on purpose", data={"why": "test"})


def _answer(connection: ServerConnection, dispatcher: Dispatcher, message: str | bytes) -> None:
    response = JSONRPCResponseManager.handle(message, dispatcher)
    if response is not None:
        try:
            connection.send(response.json)
        except ConnectionClosed:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--update-method", default="eth_subscription")
    parser.add_argument("--subscribe-delay", type=float, default=0.0)
    parser.add_argument("--update-interval", type=float, default=0.05)
    args = parser.parse_args()
    app = Application(args.update_method, args.subscribe_delay, args.update_interval)
    with serve(app.handle, "127.0.0.1", args.port, compression=None) as server:
        threading.Thread(target=app.tick, daemon=True).start()
        print(json.dumps({"port": server.socket.getsockname()[1]}), flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
