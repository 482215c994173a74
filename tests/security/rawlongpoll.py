"""A Phoenix long-poll endpoint written on ``http.server``, scripted by the test (reference §1.8).

Just enough of the protocol: the opening GET hands out a token (410), polls
return the queued messages (200) or 204 after a short wait, POSTs of NDJSON
lines are answered 200 and ``phx_join``/``echo`` get an ``ok`` reply. A test
replaces any answer with raw bytes of its choosing (``open_bodies``,
``poll_bodies``) to play a hostile server. Nothing of maxsdk's own server is used.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class RawLongPollServer:
    """Serves on 127.0.0.1:0 until closed; ``url`` is the client's ``ws://`` URL."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.open_bodies: deque[bytes] = deque()  # raw answers to the next opening GETs
        self.poll_bodies: deque[bytes] = deque()  # raw answers to the next polls
        self.sessions = 0
        self.joins: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._queues: dict[str, list[str]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                outer._record(self, b"")
                token = self.headers.get("X-Phoenix-Longpoll-Token") or _query(self.path).get("token")
                self._answer(outer._get(token))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer._record(self, body)
                token = self.headers.get("X-Phoenix-Longpoll-Token") or _query(self.path).get("token")
                outer._post(token, body)
                self._answer(b'{"status":200}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"ws://127.0.0.1:{self.port}/socket"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="raw-longpoll", daemon=True)
        self._thread.start()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.cond:
            self.requests.append((handler.command, handler.path, dict(handler.headers.items()), body))
            self.cond.notify_all()

    def _get(self, token: str | None) -> bytes:
        with self.cond:
            if token is None:
                if self.open_bodies:
                    return self.open_bodies.popleft()
                self.sessions += 1
                token = f"session-{self.sessions}"
                self._queues[token] = []
                self.cond.notify_all()
                return json.dumps({"status": 410, "token": token}).encode()
            if self.poll_bodies:
                return self.poll_bodies.popleft()
            queue = self._queues.get(token)
            if queue is None:
                return b'{"status":410,"token":"gone"}'
            if not queue:
                self.cond.wait(0.3)  # a short server window
            if not queue:
                return json.dumps({"status": 204, "token": token}).encode()
            messages, queue[:] = list(queue), []
            return json.dumps({"status": 200, "token": token, "messages": messages}).encode()

    def _post(self, token: str | None, body: bytes) -> None:
        with self.cond:
            queue = self._queues.get(token or "")
            if queue is None:
                return
            for line in body.decode().splitlines():
                join_ref, ref, topic, event, payload = json.loads(line)
                if event == "phx_join":
                    self.joins.append(topic)
                if event in ("phx_join", "echo", "phx_leave"):
                    reply = {"status": "ok", "response": payload if event == "echo" else {}}
                    queue.append(json.dumps([join_ref, ref, topic, "phx_reply", reply]))
            self.cond.notify_all()

    def push(self, topic: str, event: str, payload: Any, *, raw: str | None = None) -> None:
        """Queue a message (or the raw ``raw`` line) for every session."""
        with self.cond:
            for queue in self._queues.values():
                queue.append(raw if raw is not None else json.dumps([None, None, topic, event, payload]))
            self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (checked on every request)."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> RawLongPollServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _query(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
