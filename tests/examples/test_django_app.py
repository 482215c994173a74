"""examples/django_app: its own Django tests (test client + embedded server), and runserver's autoreloader."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("django")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "django_app"


def project_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAXSDK_URL", "MAXSDK_EAGER", "DJANGO_SETTINGS_MODULE")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def test_the_projects_own_tests_pass():
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "-v", "2"],
        cwd=PROJECT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^Ran 3 tests", result.stderr, re.MULTILINE), result.stderr
    assert "\nOK" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_under_the_autoreloader_only_the_serving_child_connects(phoenix_server, tmp_path):
    import requests

    port = free_port()
    env = project_env(MAXSDK_URL=phoenix_server.url, MAXSDK_EAGER="1", CHAT_DATABASE=str(tmp_path / "db.sqlite3"))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the reloader's child is in our process group: stop both at the end
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    try:
        while not any("Starting development server at" in line for line in seen):
            try:
                seen.append(lines.get(timeout=30))
            except queue.Empty:
                pytest.fail("runserver did not start:\n" + "".join(seen))
        # EAGER: the serving child connected while starting; the reloader parent (our child process) never does.
        opened = phoenix_server.wait_for_event(lambda e: e.kind == "opened", timeout=10)
        info = requests.get(f"http://127.0.0.1:{port}/", timeout=30).json()
        assert info["pid"] != process.pid and info["client_pid"] == info["pid"] and info["state"] == "connected"
        assert opened.params["user_id"] == f"django-{info['pid']}"
        assert [e.params["user_id"] for e in phoenix_server.events() if e.kind == "opened"] == [f"django-{info['pid']}"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
