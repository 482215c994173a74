"""Ctrl-C reaches a program that waits on maxsdk (``maxsdk._runtime.threads``).

CPython runs signal handlers on the main thread only. If a helper thread takes
a process-wide signal, or the main thread takes it just before it goes to
sleep in a lock, a main thread blocked in a wait is not woken: before this,
``maxsdk listen`` sometimes ignored Ctrl-C (1 run in 10 to 50 here).

The delivery is provoked deterministically: the signal is sent to one thread
(``signal.pthread_kill``), a bystander thread of the test that does not block
it, while the main thread waits on maxsdk. The handler raises, and the wait
must end with that exception long before its own timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import maxsdk
from maxsdk._runtime.threads import ASYNC_SIGNALS, start_thread, wait_interruptibly, wait_slice
from tests.client.helpers import fast_client

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX thread signals"),
]

# Far longer than the test's own timeout: a wait that is not interrupted fails the test.
LONG = 600.0


class InterruptedByTestError(Exception):
    """What the test's SIGUSR1 handler raises on the main thread."""


def _blocked_signals(native_id: int) -> set[int]:
    """The signals thread ``native_id`` of this process blocks (from /proc)."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


@pytest.fixture
def bystander() -> Iterator[threading.Thread]:
    """A plain thread of the test's own (it blocks no signal), idle until teardown."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait, name="bystander", daemon=True)
    thread.start()
    yield thread
    done.set()
    thread.join(5)


@pytest.fixture
def usr1_raises() -> Iterator[None]:
    """SIGUSR1 raises :class:`InterruptedByTestError` on the main thread while the test runs."""

    def handler(signum: int, frame: Any) -> None:
        raise InterruptedByTestError

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _main_thread_is_in(function: str) -> bool:
    """Whether the main thread is running ``function`` ("module.py:name"; anywhere in its stack)."""
    filename, _, name = function.rpartition(":")
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name == name and frame.f_code.co_filename.endswith(filename):
            return True
        frame = frame.f_back
    return False


def _signal_bystander_once_in(function: str, bystander: threading.Thread) -> threading.Thread:
    """Once the main thread is in ``function`` (polled by a thread started with the process's
    signals blocked), send SIGUSR1 to ``bystander`` only: the kernel does not interrupt the
    main thread's sleep, as when a helper thread takes Ctrl-C."""

    def run() -> None:
        pause = threading.Event()
        while not _main_thread_is_in(function):
            pause.wait(0.005)
        pause.wait(0.05)  # well inside the sleep, whatever happens there first
        assert bystander.ident is not None
        signal.pthread_kill(bystander.ident, signal.SIGUSR1)

    sender = threading.Thread(target=run, name="sender", daemon=True)
    start_thread(sender)
    return sender


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: The threads that run the application's handlers (the client's pool and dedicated lanes, the
#: embedded server's workers, which run its channels' callbacks).
HANDLER_THREADS = ("maxsdk-dispatch-worker-", "-dispatch-", "-worker-")


def _runs_handlers(name: str) -> bool:
    return any(part in name for part in HANDLER_THREADS) and "supervisor" not in name


@LINUX_ONLY
def test_maxsdk_threads_block_the_process_signals_and_handler_threads_do_not(phoenix_server, tmp_path):
    before = {thread.ident for thread in threading.enumerate()}
    main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with fast_client(phoenix_server.url, outbox=tmp_path / "outbox") as client:
        room = client.channel("room:lobby", dedicated_thread=True)
        room.join()
        assert room.push("echo", {"n": 1}).response == {"n": 1}
        heard = threading.Event()
        room.on("shout", lambda payload: heard.set())
        client.on_signal(maxsdk.signals.connected, lambda sender, **kw: None)  # a pool worker runs it
        room.push("shout", {"body": "hi"})
        assert heard.wait(10)
        ours = [
            thread
            for thread in threading.enumerate()
            if thread.ident not in before and thread.is_alive() and thread.native_id is not None
        ]
        names = {thread.name for thread in ours}
        # The server's accept and connection threads, the client's reader, timer and workers.
        assert any("reader" in name for name in names), names
        assert any(_runs_handlers(name) for name in names), names
        assert any("server" in name for name in names), names
        masks = {thread.name: ASYNC_SIGNALS & _blocked_signals(thread.native_id) for thread in ours}
        wrong = {
            name: sorted(blocked)
            for name, blocked in masks.items()
            if (blocked != set() if _runs_handlers(name) else blocked != ASYNC_SIGNALS)
        }
        assert not wrong, (wrong, sorted(masks))
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == main_mask


@LINUX_ONLY
def test_a_process_started_by_a_handler_can_be_interrupted_and_terminated(phoenix_server):
    """A child inherits its thread's signal mask: one started from a handler must not block
    SIGINT or SIGTERM (it could not be stopped)."""
    masks: list[set[int]] = []
    done = threading.Event()
    script = "import pathlib; print(pathlib.Path('/proc/self/status').read_text())"

    def handler(payload: Any) -> None:
        try:
            status = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
            line = next(line for line in status.stdout.splitlines() if line.startswith("SigBlk:"))
            mask = int(line.split()[1], 16)
            masks.append({number for number in range(1, 65) if mask & (1 << (number - 1))})
        finally:
            done.set()

    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        room.on("shout", handler)
        room.push("shout", {"body": "start a process"})
        assert done.wait(30)
    assert masks and not masks[0] & ASYNC_SIGNALS, masks


def test_start_thread_leaves_the_starters_mask_as_it_was():
    seen: dict[str, Any] = {}

    def starter() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
        inner = threading.Thread(target=lambda: seen.update(inner=signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        start_thread(inner)
        inner.join(10)
        seen["starter"] = signal.pthread_sigmask(signal.SIG_BLOCK, [])

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    outer = threading.Thread(target=starter)
    outer.start()
    outer.join(10)
    assert seen["starter"] == {signal.SIGUSR2}
    assert seen["inner"] >= ASYNC_SIGNALS | {signal.SIGUSR2}
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_a_blocking_push_on_the_main_thread_lets_a_signal_handler_run(phoenix_server, bystander, usr1_raises):
    with fast_client(phoenix_server.url, timeout=LONG) as client:
        room = client.join("room:lobby")
        pending = room.push_nowait("noreply", {}, LONG)
        _signal_bystander_once_in("maxsdk/reply.py:wait_outcome", bystander)
        with pytest.raises(InterruptedByTestError):
            pending.wait()
        # The client is still usable (or closes cleanly) after the interrupted wait.
        assert room.push("echo", {"n": 2}).response == {"n": 2}


def test_waiting_for_an_event_on_the_main_thread_lets_a_signal_handler_run(phoenix_server, bystander, usr1_raises):
    with fast_client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        with room.expect("never_sent") as expectation:
            _signal_bystander_once_in("maxsdk/stream.py:wait", bystander)
            with pytest.raises(InterruptedByTestError):
                expectation.wait(LONG)


@pytest.mark.parametrize("timeout", [None, LONG])
def test_wait_interruptibly_on_the_main_thread(bystander, usr1_raises, timeout):
    never = threading.Event()
    _signal_bystander_once_in("maxsdk/_runtime/threads.py:wait_interruptibly", bystander)
    with pytest.raises(InterruptedByTestError):
        wait_interruptibly(never.wait, timeout)


def test_waits_off_the_main_thread_are_one_call():
    calls: list[float | None] = []
    results: dict[str, Any] = {}

    def wait(timeout: float | None) -> bool:
        calls.append(timeout)
        return True

    def off_main() -> None:
        results["done"] = wait_interruptibly(wait, 30.0)
        results["slice"] = wait_slice(30.0)
        results["forever"] = wait_slice(None)

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join(10)
    assert results == {"done": True, "slice": 30.0, "forever": None}
    assert calls == [30.0]
    assert wait_slice(None) is not None and wait_slice(30.0) is not None  # on the main thread: sliced


def test_wait_interruptibly_keeps_its_deadline_and_result():
    flag = threading.Event()
    assert wait_interruptibly(flag.wait, 0.25) is False
    flag.set()
    assert wait_interruptibly(flag.wait, None) is True
    assert wait_interruptibly(flag.wait, LONG) is True


def _child_blocked_signals() -> set[int]:
    """The signals a process started from this thread blocks."""
    script = "import pathlib; print(pathlib.Path('/proc/self/status').read_text())"
    status = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    line = next(line for line in status.stdout.splitlines() if line.startswith("SigBlk:"))
    mask = int(line.split()[1], 16)
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


@LINUX_ONLY
def test_callables_maxsdk_calls_on_its_threads_start_processes_that_can_be_stopped(phoenix_server):
    """A params or token callable may run a command (one that prints a token): on the reader,
    at a rejoin, the process it starts must not block SIGINT or SIGTERM."""
    seen: list[tuple[str, str, set[int]]] = []
    lock = threading.Lock()

    def probe(what: str) -> Callable[[], dict[str, str]]:
        def evaluate() -> dict[str, str]:
            blocked = _child_blocked_signals() & ASYNC_SIGNALS
            with lock:
                seen.append((what, threading.current_thread().name, blocked))
            return {"user_id": what}

        return evaluate

    with fast_client(phoenix_server.url, params=probe("socket")) as client:
        rejoined = threading.Event()
        client.on_signal(maxsdk.signals.channel_joined, lambda sender, **kw: kw["rejoined"] and rejoined.set())
        room = client.channel("room:lobby", params=probe("join"))
        room.join()
        phoenix_server.drop_connections()
        assert rejoined.wait(20)
    with lock:
        calls = list(seen)
    threads = {name for _, name, _ in calls}
    assert any("reader" in name for name in threads), calls  # the reconnect's params, at least
    assert {what for what, _, _ in calls} == {"socket", "join"}, calls
    assert all(not blocked for _, _, blocked in calls), calls
