"""The `maxsdk` command, run as a real subprocess against the embedded server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

from maxsdk import Client

ENV = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


def run(*args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maxsdk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        input=stdin,
    )


def sigint_default() -> None:
    """Give the child the default SIGINT: a runner started in the background (nohup, `cmd &`)
    ignores SIGINT, the child would inherit that, and the Ctrl-C tests would time out."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(90)
def test_demo_runs_a_live_session_on_the_embedded_server():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in (
        "Connecting client 'alice'",
        "Joining room:lobby",
        "reply ok",
        "ReplyError",
        "alice sees online",
        "alice got shout",
        "binary reply",
        "Forced disconnect",
        "channel_joined: room:lobby rejoined",
        "push after recovery",
        "carol got [1, 2, 3]",
        "replayed what she missed: [1, 2, 3, 4, 5, 6, 7, 8] (each once, in order)",
        "on_discontinuity: reason=trimmed",
        "then live events again: [21, 22]",
        "demo complete",
    ):
        assert step in out, step
    assert "Traceback" not in result.stderr
    assert "demo-secret" not in out + result.stderr, "the token is never printed"


def test_help_has_examples_for_every_command():
    top = run("--help")
    assert top.returncode == 0 and "maxsdk demo" in top.stdout
    for command in ("demo", "serve", "listen", "push"):
        result = run(command, "--help")
        assert result.returncode == 0
        assert "examples:" in result.stdout, command


def test_push_exit_statuses(phoenix_server):
    url = phoenix_server.url
    ok = run("push", url, "room:lobby", "echo", '{"hello": "world"}')
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"status": "ok", "response": {"hello": "world"}}
    error = run("push", url, "room:lobby", "echo_error", '{"why": "x"}')
    assert error.returncode == 1 and json.loads(error.stdout)["status"] == "error"
    timeout = run("push", url, "room:lobby", "noreply", "{}", "--timeout", "0.3")
    assert timeout.returncode == 3 and "error:" in timeout.stderr
    stdin = run("push", url, "room:lobby", "echo", "-", stdin='{"from": "stdin"}')
    assert json.loads(stdin.stdout)["response"] == {"from": "stdin"}
    refused = run("push", url, "room:private", "echo", "{}", "--join-payload", '{"password": "nope"}')
    assert refused.returncode == 6 and "unauthorized" in refused.stderr


def test_push_connection_and_auth_failures_are_one_line_errors(phoenix_server_factory):
    dead = run("push", f"ws://127.0.0.1:{free_port()}/socket", "room:lobby", "echo", "--connect-timeout", "0.5")
    assert dead.returncode == 4
    assert dead.stderr.count("\n") == 1 and "Traceback" not in dead.stderr
    server = phoenix_server_factory(token="right")
    auth = run("push", server.url, "room:lobby", "echo", "--token", "wrong")
    assert auth.returncode == 5 and "403" in auth.stderr and "wrong" not in auth.stderr
    bad_url = run("push", "localhost:4000", "room:lobby", "echo")
    assert bad_url.returncode == 2 and "url must be" in bad_url.stderr and "Traceback" not in bad_url.stderr
    bad_json = run("push", server.url, "room:lobby", "echo", "{not json")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr


@pytest.mark.timeout(60)
def test_listen_prints_json_lines_and_a_summary(phoenix_server):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maxsdk",
            "listen",
            phoenix_server.url,
            "room:lobby",
            "--json",
            "--event",
            "shout",
            "--count",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        phoenix_server.wait_for_message(event="phx_join", topic="room:lobby", timeout=20)
        with Client(phoenix_server.url) as client:
            room = client.join("room:lobby")
            room.push("echo", {})
            room.push("shout", {"n": 1})
            room.push("shout", {"n": 2})
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["payload"] for line in lines] == [{"n": 1}, {"n": 2}]
    assert all(line["event"] == "shout" and line["topic"] == "room:lobby" for line in lines)
    assert "2 message(s), 0 reconnect(s)" in err
    assert "[connected]" in err


@pytest.mark.timeout(60)
def test_listen_keeps_reconnecting_and_exits_cleanly_on_ctrl_c(phoenix_server):
    process = subprocess.Popen(
        [sys.executable, "-m", "maxsdk", "listen", phoenix_server.url, "room:lobby"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=sigint_default,
    )
    try:
        phoenix_server.wait_for_message(event="phx_join", topic="room:lobby", timeout=20)
        events, messages = phoenix_server.event_count, phoenix_server.message_count
        phoenix_server.drop_connections()
        phoenix_server.wait_for_event(lambda e: e.kind == "opened", since=events, timeout=20)
        phoenix_server.wait_for_message(event="phx_join", topic="room:lobby", since=messages, timeout=20)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, err  # Ctrl-C: 130, as for every command
    assert re.search(r"\d+ message\(s\), 1 reconnect\(s\), \d", err), err  # no failed attempt either
    assert "Traceback" not in err


@pytest.mark.timeout(60)
def test_serve_prints_its_url_serves_and_stops_on_ctrl_c():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "maxsdk", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=sigint_default,
    )
    try:
        line = process.stdout.readline()
        assert f"ws://127.0.0.1:{port}/socket/websocket" in line
        with Client(f"ws://127.0.0.1:{port}/socket") as client:
            assert client.join("echo:cli").push("anything", {"a": 1}).response == {"a": 1}
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "server stopped" in err and "Traceback" not in err


def test_verbose_logs_frames_without_secrets(phoenix_server_factory):
    server = phoenix_server_factory(token="s3cret-token")
    result = run(
        "-vv",
        "push",
        server.url,
        "room:private",
        "echo",
        '{"x": 1}',
        "--token",
        "s3cret-token",
        "--join-payload",
        '{"password": "pw", "api_key": "k3y-in-join-params"}',
    )
    assert result.returncode == 0, result.stderr
    assert "maxsdk.frames" in result.stderr and ">>" in result.stderr
    client_logs = [line for line in result.stderr.splitlines() if "maxsdk.server" not in line]
    assert not any("s3cret-token" in line or "k3y-in-join-params" in line for line in client_logs)
    assert any("<join params redacted>" in line for line in client_logs)


def test_main_is_importable_and_returns_statuses(phoenix_server, capsys):
    from maxsdk.cli import main

    assert main(["push", phoenix_server.url, "room:lobby", "echo", '{"in": "process"}']) == 0
    assert json.loads(capsys.readouterr().out)["response"] == {"in": "process"}
    stop = threading.Event()
    stop.set()
    assert main(["listen", phoenix_server.url, "room:lobby"], stop=stop) == 0


def test_outbox_command_shows_lists_retries_and_purges(phoenix_server, tmp_path):
    from tests.client.helpers import fast_client

    path = str(tmp_path / "outbox")
    with fast_client(phoenix_server.url, outbox=path) as client:
        room = client.join("room:lobby")
        room.send("echo_error", {"reason": "rejected by the server"})
        room.send("echo", {"fine": True})
        assert client.outbox.wait_drained(10)
    stats = run("outbox", path)
    assert stats.returncode == 0 and "dead        1" in stats.stdout
    listed = run("outbox", path, "list", "--json")
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["reason"] == "rejected by the server" and letter["event"] == "echo_error"
    refused = run("outbox", path, "purge")
    assert refused.returncode == 2 and "--all" in refused.stderr
    assert "1 dead letter(s) queued again" in run("outbox", path, "retry", letter["key"]).stdout
    with fast_client(phoenix_server.url, outbox=path) as client:
        busy = run("outbox", path)
        assert busy.returncode != 0 and "in use" in busy.stderr and "Traceback" not in busy.stderr
        client.join("room:lobby")
        assert client.outbox.wait_drained(10)
    assert "1 dead letter(s) deleted" in run("outbox", path, "purge", "--all").stdout
    assert "dead        0" in run("outbox", path).stdout


@pytest.mark.timeout(60)
def test_listen_draws_a_live_status_line_on_a_terminal(phoenix_server):
    import pty
    import select

    master, slave = pty.openpty()
    env = {key: value for key, value in ENV.items() if key != "NO_COLOR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "maxsdk", "listen", phoenix_server.url, "room:lobby"],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        preexec_fn=sigint_default,
    )
    os.close(slave)
    seen = b""
    try:
        while b"\r\x1b[K" not in seen:  # the status line was drawn, then redrawn in place
            ready, _, _ = select.select([master], [], [], 20)
            assert ready, f"no status line; saw {seen!r}"
            seen += os.read(master, 4096)
        process.send_signal(signal.SIGINT)
        process.wait(20)
    finally:
        process.kill()
        os.close(master)
    assert b"\xe2\x97\x8f connected" in seen and b"reconnects" in seen  # "● connected · N msgs ..."
    assert b"\r\x1b[K" in seen  # redrawn in place
