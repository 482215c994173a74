"""Every code snippet of README.md, run as a newcomer would run it (subprocesses, real servers)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from maxsdk.server import JsonRpcServer, JsonTopicServer

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.S | re.M)


def python(code: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def serve() -> object:
    """`maxsdk serve` as a subprocess, on a free port (4000, the README's, is often taken)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "maxsdk", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line + process.stderr.read()
        yield port
    finally:
        process.kill()
        process.communicate(timeout=20)


@pytest.mark.timeout(90)
def test_the_quickstart_runs_as_is_against_maxsdk_serve(serve: int) -> None:
    quickstart = blocks("python")[0]
    assert 'maxsdk.Client("ws://localhost:4000/socket"' in quickstart and "new_msg" in quickstart
    result = python(quickstart.replace("localhost:4000", f"localhost:{serve}"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The broadcast (through the handler), the reply, then who is online: in this order.
    assert lines == ["got {'body': 'hello'}", "ok {}", "['anon']"], result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(90)
def test_the_other_protocols_snippet_runs_against_the_test_servers() -> None:
    snippet = blocks("python")[1]
    with JsonRpcServer() as rpc_server, JsonTopicServer() as feed_server:
        code = "import maxsdk\nurl = " + repr(feed_server.url) + "\n"
        code += snippet.replace("ws://localhost:8545", rpc_server.url)
        code += "\nprint('done')\n"
        result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["19", "done"]


@pytest.mark.timeout(90)
def test_the_testing_snippet_is_a_working_conftest_and_test(tmp_path: Path) -> None:
    files = [block for block in blocks("python") if block.startswith("# conftest.py") or block.startswith("# test_")]
    assert [block.splitlines()[0] for block in files] == ["# conftest.py", "# test_chat.py"]
    for block in files:
        (tmp_path / block.splitlines()[0][2:]).write_text(block, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.timeout(60)
def test_the_command_line_push_example_works_against_maxsdk_serve(serve: int) -> None:
    (push,) = [line for block in blocks("sh") for line in block.splitlines() if line.startswith("maxsdk push ")]
    argv = shlex.split(push.split("#")[0].replace("localhost:4000", f"localhost:{serve}"))
    result = subprocess.run(
        [sys.executable, "-m", "maxsdk", *argv[1:]], capture_output=True, text=True, timeout=30, env=ENV
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "ok", "response": {"hello": "world"}}


def test_the_readme_commands_name_the_default_port_of_serve() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "maxsdk", "serve", "--help"], capture_output=True, text=True, timeout=30, env=ENV
    )
    assert "default 4000" in result.stdout
    assert "maxsdk serve --port 4000" in README


def test_every_python_snippet_is_covered() -> None:
    # Four snippets: the quickstart, other protocols, conftest.py, test_chat.py. A new one needs a test here.
    assert len(blocks("python")) == 4
