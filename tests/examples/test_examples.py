"""Every ``examples/*.py`` runs and prints what it promises (so none of them can rot).

Examples are discovered: a new file is run with no arguments and must exit 0
within the timeout. The table below adds, per example, the lines its output
must contain and whether it also runs against a server given by URL (the
reference app, as ``maxsdk serve`` runs it).
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT = 60


@dataclass(frozen=True)
class Case:
    """What one example must print (regexes, each matching a whole line, in any order)."""

    expect: tuple[str, ...] = ()
    with_url: bool = False  # also run it as `python examples/x.py URL` against a test server
    driven: str | None = None  # an interactive example, driven by the named test instead


CASES: dict[str, Case] = {
    "quickstart.py": Case(
        expect=(
            r"joined room:lobby; the server said \{'joined': 'room:lobby'\}",
            r"reply: ok \{'body': 'hello'\}",
            r"broadcast received: \{'body': 'hi everyone'\}",
            r"error reply: \{'why': 'demo'\}",
            r"online: \['alice'\]",
        ),
        with_url=True,
    ),
    "iterator.py": Case(
        expect=(r"tick 1", r"tick 5", r"dropped while iterating: 0", r"first multiple of ten: \d*0"),
        with_url=True,
    ),
    "signal_handlers.py": Case(
        expect=(
            r"\[demo-dispatch\] connected",
            r"\[demo-dispatch\] disconnected: code=1006 will_reconnect=True",
            r"\[demo-dispatch\] reconnecting: attempt 1 in .*",
            r"\[demo-dispatch\] connected again",
            r"\[demo-dispatch\] rejoined room:lobby",
            r"\[MainThread\] main thread: rejoined with join_ref \d+; push -> \{'ok': 1\}",
            r"\[demo-dispatch\] a handler failed while handling room:lobby shout: ValueError.*",
            r"\[MainThread\] main thread: closed",
        ),
        with_url=True,
    ),
    "typed_messages.py": Case(
        expect=(
            r"handler got ChatMessage\(user='alice', body='typed and current', likes=0\)",
            r"handler got ChatMessage\(user='old-client', body='sent by a version-1 client', likes=0\)",
            r"rejected a 'shout' payload: it does not fit ChatMessage: field 'user' should be str, got int",
            r"typed reply: Echo\(user='bob', body='echo me', likes=3, schema_version=2\)",
            r"decoding a reply that does not fit raises ModelError: missing field.*",
        ),
        with_url=True,
    ),
    "presence.py": Case(
        expect=(
            r"  \+ alice is online",
            r"online: \['alice', 'bob', 'carol'\]",
            r"  ~ carol is now away",
            r"  - bob left",
            r"online: \['alice', 'carol'\]",
        ),
        with_url=True,
    ),
    "shared_state.py": Case(
        expect=(
            r"bob saw delta at version \d+: \('/moves',\)",
            r"bob's copy at version \d+: \{'board': \{'e4': 'pawn'\}, 'moves': \['e4'\]\}",
            r"(alice|bob) was rolled back: conflict",
            r"round \d+: (alice|bob) won the seat; (alice|bob) got conflict \(server at version \d+\)",
            r"(alice|bob)'s copy now shows the seat taken by (alice|bob)",
        ),
        with_url=True,
    ),
    "durable_outbox.py": Case(
        expect=(
            r"offline: queued 3 messages",
            r"restarted with 3 messages waiting",
            r"delivered order 1 \(idempotency_key \w+ in its payload\)",
            r"all delivered, in order: \[1, 2, 3\]; waiting now: 0",
            r"dead letter: 'no_such_event' was refused with .*'unknown event'.*",
            r"purged 1 dead letter\(s\)",
        ),
        with_url=True,
    ),
    "chat.py": Case(driven="test_chat_between_two_instances"),
}


def discovered() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def check_output(name: str, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{name} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    for pattern in CASES.get(name, Case()).expect:
        matched = any(re.fullmatch(pattern, line) for line in lines)
        assert matched, f"{name}: no line matches {pattern!r}\n{result.stdout}"


def test_every_example_is_discovered():
    assert {"quickstart.py", "chat.py", "presence.py", "iterator.py"} <= set(discovered())
    stale = set(CASES) - set(discovered())
    assert not stale, f"CASES lists examples that no longer exist: {stale}"


@pytest.mark.parametrize("name", discovered())
def test_example_runs_on_the_embedded_server(name):
    case = CASES.get(name, Case())
    if case.driven:
        pytest.skip(f"interactive: covered by {case.driven}")
    check_output(name, run_example(name))


@pytest.mark.parametrize("name", [n for n in discovered() if CASES.get(n, Case()).with_url])
def test_example_runs_against_a_server_given_by_url(name, phoenix_server):
    url = f"ws://127.0.0.1:{phoenix_server.port}/socket"
    check_output(name, run_example(name, url))
    assert any(e.kind == "opened" for e in phoenix_server.events()), "the example did not use the given server"


class Interactive:
    """A running example whose stdin we write and whose stdout lines we wait for."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "chat.py"), *args],
            cwd=ROOT,
            env=env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """Wait for the next line matching ``pattern`` (lines before it are kept in ``seen``)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            self.seen.append(line)
            match = re.fullmatch(pattern, line)
            if match:
                return match

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(TIMEOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def test_chat_between_two_instances():
    alice = Interactive("--name", "alice")
    bob = None
    try:
        url = alice.expect(r"embedded server running; in another terminal: python examples/chat.py (\S+) --name bob")[1]
        alice.expect(r"joined room:chat as alice \(online: alice\)")
        bob = Interactive(url, "--name", "bob")
        bob.expect(r"joined room:chat as bob \(online: alice, bob\)")
        alice.expect(r"\* bob joined")

        bob.send("hello from bob")
        alice.expect(r"<bob> hello from bob")
        alice.send("hi bob")
        bob.expect(r"<alice> hi bob")
        alice.send("/who")
        alice.expect(r"online: alice, bob")

        assert bob.finish() == 0
        bob.expect(r"bye")
        alice.expect(r"\* bob left")
        assert alice.finish() == 0
        alice.expect(r"bye")
        assert not any("<alice>" in line for line in alice.seen), "a user's own lines are not echoed back"
    finally:
        alice.kill()
        if bob is not None:
            bob.kill()
