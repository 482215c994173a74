"""examples/flask_app: views through Flask's test client, the listener's app-context handler, gunicorn workers."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("flask")

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "flask_app"


def load_example():
    """Import examples/flask_app/app.py under a name of its own (its module name is the common ``app``)."""
    spec = importlib.util.spec_from_file_location("maxsdk_example_flask_app", APP_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(phoenix_server, tmp_path):
    module = load_example()
    app = module.create_app({"MAXSDK_URL": phoenix_server.url, "DATABASE": str(tmp_path / "chat.sqlite3")})
    yield module, app
    module.realtime.close(app)


def test_views_push_and_report_the_process_client(example, phoenix_server):
    _, app = example
    http = app.test_client()
    info = http.get("/").get_json()
    assert info["pid"] == info["client_pid"] == os.getpid() and info["state"] == "connected"
    reply = http.post("/shout", json={"body": "from a view"})
    assert reply.status_code == 200 and reply.get_json() == {"status": "ok", "pid": os.getpid()}
    pushed = phoenix_server.wait_for_message(event="shout", topic="room:lobby")
    assert pushed.payload == {"user": f"web-{os.getpid()}", "body": "from a view"}
    opened = phoenix_server.wait_for_event(lambda e: e.kind == "opened")
    assert opened.params["user_id"] == f"web-{os.getpid()}"  # the params callable ran in this process
    assert http.get("/workers?wait=1").get_json()["workers"] == [f"web-{os.getpid()}"]


def test_the_listener_stores_messages_through_an_app_context_handler(example, phoenix_server):
    module, app = example
    joined, results = threading.Event(), []
    thread = threading.Thread(
        target=lambda: results.append(
            module.realtime.listen(app, events=["shout"], count=1, joined=lambda channel: joined.set())
        )
    )
    thread.start()
    assert joined.wait(5)
    phoenix_server.broadcast("room:lobby", "shout", {"user": "someone", "body": "stored by the handler"})
    thread.join(10)
    assert results and results[0].handled == 1
    assert app.test_client().get("/messages").get_json() == [{"user": "someone", "body": "stored by the handler"}]


class Gunicorn:
    """gunicorn running the example; stderr lines are collected for waiting on."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args],
            cwd=APP_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"gunicorn never logged {pattern!r}:\n" + "\n".join(self.log)) from None
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)


def get_json(url: str) -> dict:
    import requests

    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.mark.timeout(180)
@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn needs fork()")
def test_gunicorn_with_preload_gives_each_worker_its_own_live_connection(phoenix_server, tmp_path):
    pytest.importorskip("gunicorn")
    env = {
        **os.environ,
        "MAXSDK_URL": phoenix_server.url,
        "MAXSDK_EAGER": "1",  # the master connects while loading the app, before forking the workers
        "CHAT_DATABASE": str(tmp_path / "chat.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    server = Gunicorn("--workers", "2", "--preload", "--bind", "127.0.0.1:0", "app:create_app()", env=env)
    try:
        port = server.expect(r"Listening at: http://127\.0\.0\.1:(\d+)")[1]
        master_pid = server.process.pid
        server.expect(r"Booting worker with pid: (\d+)")
        server.expect(r"Booting worker with pid: (\d+)")
        # The master's eager client: made before the fork, inherited by both workers, unusable there.
        phoenix_server.wait_for_event(lambda e: e.kind == "opened" and e.params.get("user_id") == f"web-{master_pid}")

        # Two requests at once: a worker holds the first one until it sees the second worker on the
        # room:workers presence, so the second request can only be served by the other worker.
        answers: list[dict] = []
        requests_ = [
            threading.Thread(target=lambda: answers.append(get_json(f"http://127.0.0.1:{port}/workers?wait=2")))
            for _ in range(2)
        ]
        for thread in requests_:
            thread.start()
        for thread in requests_:
            thread.join(60)
        assert len(answers) == 2, server.log
        worker_pids = {answer["pid"] for answer in answers}
        assert len(worker_pids) == 2 and master_pid not in worker_pids
        for answer in answers:
            assert answer["workers"] == sorted(f"web-{pid}" for pid in worker_pids)

        # The server sees one open connection per worker, each made by that worker after the fork.
        open_connections = {c.params.get("user_id"): c.connection_id for c in phoenix_server.connections}
        worker_connections = {open_connections.get(f"web-{pid}") for pid in worker_pids}
        assert None not in worker_connections and len(worker_connections) == 2, open_connections
        assert open_connections.get(f"web-{master_pid}") not in worker_connections

        # Whichever worker answers, it reports a client of its own, created in its own process.
        info = get_json(f"http://127.0.0.1:{port}/")
        assert info["pid"] == info["client_pid"] and info["pid"] in worker_pids and info["state"] == "connected"
    finally:
        status = server.stop()
    assert status == 0, "\n".join(server.log)
