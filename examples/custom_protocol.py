"""Teach maxsdk a new WebSocket protocol by writing a ProtocolHandler.

What this shows, end to end, runnable as is (``python examples/custom_protocol.py``):

1. a made-up protocol, "pulse", that looks like many real feeds: a greeting,
   a login, request/response calls, stream subscriptions whose server-side
   ids differ from their names, server heartbeats that must be answered,
   client pings, and a "moving" notice that asks clients to reconnect;
2. ``PulseProtocol``: the ~100 lines of pure code (no threads, no sockets)
   that describe those messages to maxsdk;
3. ``maxsdk.ProtocolClient`` running it with everything the engine gives for
   free: blocking calls with timeouts, shared subscriptions, resubscribing
   (with the new stream ids) after a reconnect, pings, signals;
4. a test server for it built on ``maxsdk.server.JsonServerBase`` (started
   here on 127.0.0.1, a free port), the same base as the JSON-RPC and topic
   test servers, so it has their scripted faults too.

The pulse wire, as JSON text frames (``>>`` client to server, ``<<`` back)::

    >> {"type": "hello", "client": "..."}                       on connect
    >> {"type": "login", "ref": 1, "key": "..."}
    << {"type": "welcome", "ref": 1}   or   {"type": "failure", "ref": 1, "code": 401, "reason": "..."}
    >> {"type": "call", "ref": 2, "fn": "add", "args": [2, 3]}
    << {"type": "result", "ref": 2, "value": 5}
    >> {"type": "watch", "ref": 3, "streams": ["cpu", "mem"]}
    << {"type": "watching", "ref": 3, "ids": {"cpu": 17, "mem": 18}}
    << {"type": "tick", "sid": 17, "value": 0.42}                updates carry the stream id, not its name
    >> {"type": "unwatch", "ref": 4, "sids": [17]}
    << {"type": "heartbeat", "n": 5}   >> {"type": "heartbeat_ack", "n": 5}
    >> {"type": "ping", "ref": 9}      << {"type": "pong", "ref": 9}
    << {"type": "moving", "reason": "deploy"}                    reconnect now
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Sequence
from typing import Any

import maxsdk
from maxsdk import signals
from maxsdk.errors import RemoteProtocolError
from maxsdk.protocol.handler import (
    Frame,
    FrameKind,
    Incoming,
    ProtocolHandler,
    RequestId,
    SubscribeResult,
    TopicRef,
)
from maxsdk.server import JsonConnection, JsonServerBase

# -- 1. the handler: pure description of the pulse wire ------------------------------------------


class PulseProtocol(ProtocolHandler):
    """The pulse protocol, for maxsdk."""

    name = "pulse"
    subscription_confirmation = "reply"  # a "watching" message answers the watch's ref
    max_subscribe_batch = 20  # the server accepts up to 20 streams per watch

    def connect_messages(self) -> Sequence[Frame]:
        return [json.dumps({"type": "hello", "client": "maxsdk-example"})]

    def auth_message(self, request_id: RequestId, credentials: Any) -> Frame | None:
        return json.dumps({"type": "login", "ref": request_id, "key": credentials})

    # The default auth_result() is right for pulse: a reply to the login's ref, failed if it has an error.

    def classify(self, message: Any) -> Incoming:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise RemoteProtocolError("a pulse message is an object with a string 'type'", frame=repr(message))
        kind = message["type"]
        ref = message.get("ref")
        if kind == "tick":
            return Incoming(FrameKind.UPDATE, topic=str(message["sid"]), data=message["value"], message=message)
        if kind in ("result", "welcome", "watching", "unwatched"):
            return Incoming(FrameKind.REPLY, request_id=ref, data=message.get("value", message), message=message)
        if kind == "failure":
            error = {"code": message.get("code"), "message": message.get("reason")}
            return Incoming(FrameKind.REPLY, request_id=ref, error=error, message=message)
        if kind == "heartbeat":
            return Incoming(FrameKind.PING, data=message.get("n"), message=message)
        if kind == "pong":
            return Incoming(FrameKind.PONG, request_id=ref, message=message)
        if kind == "moving":
            return Incoming(FrameKind.CONTROL, data=message.get("reason"), message=message)
        return Incoming(FrameKind.UNKNOWN, message=message)

    def reconnect_reason(self, incoming: Incoming) -> str | None:
        if incoming.kind is FrameKind.CONTROL and incoming.message.get("type") == "moving":
            return f"server moving ({incoming.data})"
        return None

    def request(self, request_id: RequestId, method: str, params: Any, *, scope: TopicRef | None = None) -> Frame:
        return json.dumps({"type": "call", "ref": request_id, "fn": method, "args": params})

    def subscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame:
        return json.dumps({"type": "watch", "ref": request_ids[0], "streams": [t.topic for t in topics]})

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        if incoming.error is not None:
            return [SubscribeResult(False, error=incoming.error) for _ in topics]
        ids = incoming.message.get("ids", {})
        # Updates carry the server's stream id: make it the subscription's key.
        return [
            SubscribeResult(True, key=str(ids[t.topic]))
            if t.topic in ids
            else SubscribeResult(False, error="not watched")
            for t in topics
        ]

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        sids = [int(t.key) for t in topics if t.key is not None]
        return json.dumps({"type": "unwatch", "ref": request_ids[0], "sids": sids}) if sids else None

    def ping(self, request_id: RequestId) -> Frame | None:
        return json.dumps({"type": "ping", "ref": request_id})

    def pong(self, incoming: Incoming) -> Frame | None:
        return json.dumps({"type": "heartbeat_ack", "n": incoming.data})


# -- 2. a pulse server for the example (and for tests of code that uses it) -----------------------------


class PulseServer(JsonServerBase):
    """A tiny pulse server: login key "demo", functions add and div, any stream name."""

    kind = "pulse"

    def __init__(self) -> None:
        super().__init__()
        self._sids = itertools.count(17)

    def on_open(self, connection: JsonConnection) -> None:
        connection.data["streams"] = {}  # sid -> name

    def handle_text(self, connection: JsonConnection, frame: str | bytes, message: Any) -> None:
        kind, ref = message.get("type"), message.get("ref")
        if kind == "login":
            ok = message.get("key") == "demo"
            connection.data["user"] = ok
            answer = {"type": "welcome"} if ok else {"type": "failure", "code": 401, "reason": "bad key"}
            self.reply(connection, {**answer, "ref": ref})
        elif kind == "call":
            self.reply(connection, self._call(ref, message.get("fn"), message.get("args")))
        elif kind == "watch":
            ids = {}
            for name in message.get("streams", []):
                sid = next(self._sids)
                connection.data["streams"][sid] = name
                ids[name] = sid
            self.reply(connection, {"type": "watching", "ref": ref, "ids": ids})
        elif kind == "unwatch":
            for sid in message.get("sids", []):
                connection.data["streams"].pop(sid, None)
            self.reply(connection, {"type": "unwatched", "ref": ref})
        elif kind == "ping" and not self.pings_paused:
            connection.send_json({"type": "pong", "ref": ref})

    @staticmethod
    def _call(ref: Any, fn: Any, args: Any) -> dict[str, Any]:
        if fn == "add":
            return {"type": "result", "ref": ref, "value": sum(args)}
        if fn == "div" and args[1] != 0:
            return {"type": "result", "ref": ref, "value": args[0] / args[1]}
        reason = "division by zero" if fn == "div" else f"no function {fn!r}"
        return {"type": "failure", "ref": ref, "code": 400, "reason": reason}

    def tick(self, name: str, value: float) -> int:
        """Send a tick of stream ``name`` to every connection watching it."""
        sent = 0
        for connection in self._open_connections():
            for sid, stream in connection.data.get("streams", {}).items():
                if stream == name:
                    sent += connection.send_json({"type": "tick", "sid": sid, "value": value})
        return sent

    def heartbeat(self, n: int) -> int:
        """Send a server heartbeat (clients must acknowledge it)."""
        return self.broadcast_json({"type": "heartbeat", "n": n})

    def announce_move(self) -> int:
        """Ask every client to reconnect (a deploy)."""
        return self.broadcast_json({"type": "moving", "reason": "deploy"})


# -- 3. using it -----------------------------------------------------------------------------------------------


def main() -> None:
    with PulseServer() as server:
        client = maxsdk.ProtocolClient(server.url, PulseProtocol(), auth="demo", timeout=5.0, ping_interval=2.0)
        resubscribed = threading.Semaphore(0)

        def on_subscribed(_client: Any, **kwargs: Any) -> None:
            if kwargs["resubscribed"]:
                resubscribed.release()

        client.on_signal(signals.subscribed, on_subscribed)
        with client:
            print("connected and logged in:", client.state)
            print("add(2, 3) =", client.request("add", [2, 3]))
            try:
                client.request("div", [1, 0])
            except maxsdk.RpcError as exc:
                print("div(1, 0) failed:", exc.code, exc.message)

            ticks: queue.Queue[tuple[str, float]] = queue.Queue()
            cpu = client.subscribe("cpu", lambda value: ticks.put(("cpu", value)))
            mem = client.subscribe("mem", lambda value: ticks.put(("mem", value)))
            also_cpu = client.subscribe("cpu")  # shares the server-side "cpu" stream
            print(f"watching cpu as stream {cpu.key}, mem as stream {mem.key}")
            server.tick("cpu", 0.42)
            server.tick("mem", 0.73)
            print("ticks:", sorted(ticks.get(timeout=5) for _ in range(2)), "| buffered:", also_cpu.get(timeout=5))

            server.heartbeat(1)
            ack = server.wait_for_message(lambda r: r.message.get("type") == "heartbeat_ack")
            print("server heartbeat acknowledged:", ack.message)
            print(f"ping round trip: {(client.ping() or 0.0) * 1000:.2f} ms")

            server.announce_move()  # the client reconnects and watches its streams again
            for _ in range(2):
                if not resubscribed.acquire(timeout=5):
                    raise SystemExit("the streams did not come back")
            print(f"after the move: cpu is stream {cpu.key}, mem is stream {mem.key}")
            server.tick("cpu", 0.5)
            print("tick after the move:", ticks.get(timeout=5))

            also_cpu.unsubscribe()  # the server stream stays: `cpu` still wants it
            cpu.unsubscribe()  # the last cpu subscriber: unwatch
            mem.unsubscribe()
            print("diagnostics:", client.diagnostics().reconnects, "reconnect(s),", server.message_count, "frames in")
    print("done")


if __name__ == "__main__":
    main()
