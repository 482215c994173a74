"""Every mistake a newcomer makes with `maxsdk` gets one clear line and a documented exit status.

Run as real subprocesses (against the embedded server, or raw-socket servers written here for
the hostile ones); the in-process tests at the end cover what a subprocess cannot provoke.
"""

from __future__ import annotations

import errno
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from maxsdk.cli import main
from maxsdk.cli.errors import EXIT, describe, exit_status
from tests.cli.test_cli import ENV, free_port, run, sigint_default

pytestmark = pytest.mark.timeout(90)

UNKNOWN_HOST = "ws://no-such-host.invalid/socket"  # .invalid never resolves (RFC 6761)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command printed exactly one line, an error line, and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def popen(*args: str) -> subprocess.Popen[str]:
    """`maxsdk ARGS` in the background, with the default SIGINT whatever started the test run."""
    return subprocess.Popen(
        [sys.executable, "-m", "maxsdk", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=sigint_default,
    )


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C, then the rest of the output."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=30)
    finally:
        process.kill()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


class RawHTTPServer:
    """Answers every request with one canned HTTP response, like a web server that is not Phoenix."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}/socket"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(self.response)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def html_response(status: str, title: str) -> bytes:
    body = (
        "<!DOCTYPE html>\n<html>\n<head>\n  <title>"
        + title
        + "</title>\n</head>\n<body>\n  <h1>Oops</h1>\n  <p>Nothing\n  here.</p>\n</body>\n</html>\n"
    ).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def push_via(response: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """``maxsdk push URL room:lobby echo ARGS`` against a raw server that answers ``response``."""
    server = RawHTTPServer(response)
    try:
        return run("push", server.url, "room:lobby", "echo", *args, timeout=30)
    finally:
        server.close()


# -- serve ------------------------------------------------------------------------------------------


def test_serve_on_a_taken_port_is_one_line_with_a_hint_and_status_7(taken_port):
    result = run("serve", "--port", str(taken_port), timeout=30)
    assert result.returncode == EXIT["system"] == 7
    line = assert_one_line_error(result)
    assert f"127.0.0.1:{taken_port}" in line and "in use" in line and "--port 0" in line


def test_serve_shows_the_traceback_only_with_vv(taken_port):
    result = run("-vv", "serve", "--port", str(taken_port), timeout=30)
    assert result.returncode != 0 and "Traceback" in result.stderr and "OSError" in result.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "4000x"])
def test_serve_on_an_impossible_port_is_a_usage_error(port):
    result = run("serve", "--port", port, timeout=30)
    assert result.returncode == EXIT["usage"] == 2
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
    assert "argument --port" in result.stderr and result.stderr.count("\n") == 2  # usage line + error line


def test_serve_logs_a_crashed_channel_and_push_says_the_channel_crashed():
    port = free_port()
    server = popen("serve", "--port", str(port))
    try:
        assert "listening on" in server.stdout.readline()
        pushed = run("push", f"ws://127.0.0.1:{port}/socket", "room:lobby", "echo", "[1, 2]", timeout=30)
        assert pushed.returncode == EXIT["error_reply"] == 1
        line = assert_one_line_error(pushed)
        assert "channel 'room:lobby' crashed on the server" in line and "lost" not in line
        # The client was told only after the server had logged the crash: it is in the log by now.
        _, server_err = interrupt(server)
    finally:
        server.kill()
    assert server.returncode == EXIT["interrupted"] == 130
    crashes = [line for line in server_err.splitlines() if "crashed" in line]
    assert len(crashes) == 1 and "channel 'room:lobby' crashed" in crashes[0] and "TypeError" in crashes[0]
    assert "Traceback" not in server_err


# -- connection mistakes --------------------------------------------------------------------------


def test_listen_and_push_fail_at_once_and_alike_on_an_unknown_host():
    # With a 60 s connect timeout a retried DNS failure would outlast the subprocess timeout.
    listened = run("listen", UNKNOWN_HOST, "room:lobby", "--connect-timeout", "60", timeout=30)
    pushed = run("push", UNKNOWN_HOST, "room:lobby", "echo", "--connect-timeout", "60", timeout=30)
    assert listened.returncode == pushed.returncode == EXIT["connection"] == 4
    assert "reconnecting" not in listened.stderr and "attempt" not in listened.stderr
    (listen_error,) = error_lines(listened.stderr)
    assert listen_error == assert_one_line_error(pushed)
    assert "unknown host 'no-such-host.invalid'" in listen_error
    assert len(listened.stderr.splitlines()) <= 2  # at most the "connecting" note and the error


def test_listen_summary_counts_failed_attempts_and_reconnects_apart():
    result = run("listen", f"ws://127.0.0.1:{free_port()}/socket", "room:lobby", "--connect-timeout", "1", timeout=30)
    assert result.returncode == EXIT["connection"]
    attempts = [int(n) for n in re.findall(r"\(attempt (\d+)\)", result.stderr)]
    assert attempts, result.stderr
    summary = re.search(r"0 message\(s\), (\d+) reconnect\(s\), (\d+) failed connection attempt\(s\)", result.stderr)
    assert summary, result.stderr
    assert int(summary.group(1)) == 0  # it never connected, so nothing was a reconnect
    assert int(summary.group(2)) == max(attempts)
    assert "Traceback" not in result.stderr and len(error_lines(result.stderr)) == 1


def test_a_refused_token_suggests_token_and_param(phoenix_server_factory):
    server = phoenix_server_factory(token="right")
    for command in (["push", server.url, "room:lobby", "echo"], ["listen", server.url, "room:lobby"]):
        result = run(*command, "--token", "wrong", timeout=30)
        assert result.returncode == EXIT["auth"] == 5
        (line,) = error_lines(result.stderr)
        assert "403" in line and "--token" in line and "--param" in line and "wrong" not in result.stderr


def test_a_404_hints_at_the_socket_path(phoenix_server):
    wrong = phoenix_server.url.replace("/socket", "/sockets")
    result = run("push", wrong, "room:lobby", "echo", timeout=30)
    assert result.returncode == EXIT["connection"]
    line = assert_one_line_error(result)
    assert "404" in line and "/socket" in line and "by default" in line


@pytest.mark.parametrize("status", ["404 Not Found", "200 OK"])
def test_a_web_page_from_a_server_that_is_not_phoenix_is_one_short_line(status):
    result = push_via(html_response(status, "Welcome to nginx!"))
    assert result.returncode == EXIT["connection"]
    line = assert_one_line_error(result)
    assert "'Welcome to nginx!'" in line and "<" not in line and "Oops" not in line
    assert "/socket" in line  # the hint: this is not a Phoenix socket URL


def redirect_response(location: str) -> bytes:
    return (
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()


def test_a_redirect_is_one_line_that_names_the_option_to_follow_it(phoenix_server):
    result = push_via(redirect_response(phoenix_server.url + "?vsn=2.0.0&token=s3cret"))
    assert result.returncode == EXIT["connection"]
    line = assert_one_line_error(result)
    assert "307" in line and "--follow-redirects 1" in line
    assert f"127.0.0.1:{phoenix_server.port}" in line and "s3cret" not in line  # the Location, redacted


def test_follow_redirects_reaches_the_server_the_redirect_names(phoenix_server):
    result = push_via(
        redirect_response(phoenix_server.url + "?vsn=2.0.0"), '{"via": "redirect"}', "--follow-redirects", "1"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "ok", "response": {"via": "redirect"}}
    assert phoenix_server.wait_for_message(event="echo", topic="room:lobby", timeout=10).payload == {"via": "redirect"}


@pytest.mark.parametrize("value", ["-1", "99"])
def test_follow_redirects_out_of_range_is_a_usage_error(value, phoenix_server):
    result = run("push", phoenix_server.url, "room:lobby", "echo", "--follow-redirects", value, timeout=30)
    assert result.returncode == EXIT["usage"]
    assert "follow_redirects" in assert_one_line_error(result)


# -- outbox -----------------------------------------------------------------------------------------


def test_outbox_on_a_mistyped_path_creates_nothing(tmp_path):
    missing = tmp_path / "outbx" / "typo"
    result = run("outbox", str(missing), timeout=30)
    assert result.returncode == EXIT["system"] == 7
    assert "no outbox at" in assert_one_line_error(result)
    assert not (tmp_path / "outbx").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    for action in ("stats", "list", "retry"):
        result = run("outbox", str(empty), action, timeout=30)
        assert result.returncode == 7 and "no outbox.db" in assert_one_line_error(result)
    assert list(empty.iterdir()) == []


def test_outbox_on_a_file_is_one_clear_line():
    result = run("outbox", "/etc/passwd", timeout=30)
    assert result.returncode == EXIT["system"]
    line = assert_one_line_error(result)
    assert line == (
        "error: no outbox at /etc/passwd: not a directory (give the directory passed to Client(outbox=...))"
    )


# -- Ctrl-C and --help ------------------------------------------------------------------------------


def test_ctrl_c_exits_130_in_push(phoenix_server):
    process = popen("push", phoenix_server.url, "room:lobby", "noreply", "{}", "--timeout", "60")
    try:
        phoenix_server.wait_for_message(event="noreply", topic="room:lobby", timeout=30)
        _, err = interrupt(process)
    finally:
        process.kill()
    assert process.returncode == EXIT["interrupted"] == 130
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_exits_130_in_listen_and_prints_the_summary(phoenix_server):
    process = popen("listen", phoenix_server.url, "room:lobby")
    try:
        phoenix_server.wait_for_message(event="phx_join", topic="room:lobby", timeout=30)
        _, err = interrupt(process)
    finally:
        process.kill()
    assert process.returncode == 130
    # The server may send presence messages after the join: count any number of messages, no reconnect.
    assert re.search(r"\d+ message\(s\), 0 reconnect\(s\)", err), err
    assert "failed connection" not in err and "Traceback" not in err


def test_ctrl_c_exits_130_in_demo():
    process = popen("demo")
    try:
        assert process.stdout.readline().startswith("==> ")
        _, err = interrupt(process)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err


def test_ctrl_c_exits_130_in_outbox(tmp_path, monkeypatch, capsys):
    from maxsdk._runtime.outbox_store import OutboxStore
    from maxsdk.cli import outbox

    OutboxStore(tmp_path).close()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(outbox, "OutboxStore", interrupted)
    assert main(["outbox", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_every_command_documents_its_exit_statuses_in_its_help():
    for command in ([], ["demo"], ["serve"], ["listen"], ["push"], ["outbox"]):
        result = run(*command, "--help", timeout=30)
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "exit status: 0 ok" in text, command
        for status in ("2 usage error", "4 connection failure", "7 system error", "130 interrupted"):
            assert status in text, (command, status)


# -- in process: what a subprocess cannot provoke ---------------------------------------------------


class FailingServer:
    """Stands in for PhoenixServer: its start() raises the given error."""

    error: BaseException = RuntimeError("boom")

    def __init__(self, **kwargs: object) -> None:
        pass

    def start(self) -> None:
        raise self.error

    def stop(self) -> None:
        pass


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (OSError(errno.EACCES, "Permission denied"), 7, "Permission denied (permission denied: ports below 1024"),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), 7, "Cannot assign requested address"),
        (OSError(errno.EMFILE, "Too many open files"), 7, "Too many open files"),
        (RuntimeError("boom\nand a second line"), 70, "internal error: RuntimeError: boom and a second line"),
    ],
)
def test_any_failure_of_a_command_is_one_line_and_a_status(monkeypatch, capsys, error, status, words):
    import maxsdk.server

    FailingServer.error = error
    monkeypatch.setattr(maxsdk.server, "PhoenixServer", FailingServer)
    assert main(["serve", "--port", "0"]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err


def test_an_os_error_naming_a_file_names_it():
    error = FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/x.json")
    assert describe(error) == "/tmp/x.json: No such file or directory"
    assert exit_status(error) == EXIT["system"]
