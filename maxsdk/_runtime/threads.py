"""Threads and signals: Ctrl-C reaches a program that waits on maxsdk.

CPython runs signal handlers on the main thread only, between bytecodes. A
signal's low-level handler merely marks it pending, and a main thread asleep
in ``Event.wait()`` or ``Lock.acquire()`` looks at that mark only when the
sleep ends. Two things can make the sleep outlast the signal:

* the kernel delivers a process-wide signal (Ctrl-C's SIGINT, SIGTERM from a
  supervisor) to any one thread that does not block it; if a helper thread
  takes it, the main thread's sleep is not interrupted at all;
* when the main thread takes it just before it goes to sleep, the sleep has
  not begun yet and nothing interrupts it either.

So maxsdk's own threads (reader, writer, timer, outbox, ...) block the
asynchronous signals for their whole life (:func:`start_thread`: the new
thread inherits the block from its starter, with no window in which it could
take one), and maxsdk's blocking waits on the main thread sleep in slices
(:func:`wait_interruptibly`), so a pending handler runs within
:data:`SIGNAL_CHECK_INTERVAL`. The threads that run the application's
handlers keep those signals unblocked, like any thread of the application:
a process started from a handler inherits that thread's signal mask. Faults (SIGSEGV,
SIGBUS, SIGFPE, ...) and SIGPIPE are directed at the faulting thread and are
left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from time import monotonic as _monotonic
from typing import TypeVar

__all__ = [
    "ASYNC_SIGNALS",
    "SIGNAL_CHECK_INTERVAL",
    "call_user_code",
    "start_thread",
    "wait_interruptibly",
    "wait_slice",
]

_T = TypeVar("_T")

#: The asynchronous, process-directed signals a Python program may handle.
ASYNC_SIGNALS: frozenset[signal.Signals] = frozenset(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGVTALRM",
        "SIGPROF",
        "SIGCHLD",
        "SIGWINCH",
    )
    if hasattr(signal, name)
)

# The C function where there is one: it returns a set of ints, where signal.pthread_sigmask
# turns them into enums (7x slower: 0.8 against 6 us for a block and a restore).
_sigmask: Callable[[int, Iterable[int]], set[int]] | None = getattr(
    getattr(signal, "_signal", None), "pthread_sigmask", None
) or getattr(signal, "pthread_sigmask", None)

_BLOCKED = frozenset(int(number) for number in ASYNC_SIGNALS)


def start_thread(thread: threading.Thread, *, runs_user_code: bool = False) -> None:
    """``thread.start()``, with :data:`ASYNC_SIGNALS` blocked in the new thread for its whole life.

    ``runs_user_code``: the thread runs the application's handlers. It starts
    with those signals unblocked instead, as a thread the application starts
    itself would: a process a handler starts inherits its thread's mask, and
    one with SIGTERM blocked could not be terminated.

    The calling thread's own mask is the same afterwards. A signal that
    arrives during the start stays pending for the process and is taken by a
    thread that does not block it as soon as one can.
    """
    if _sigmask is None or not _BLOCKED:
        thread.start()
        return
    if runs_user_code:
        previous = _sigmask(signal.SIG_UNBLOCK, _BLOCKED)
        changed = not _BLOCKED.isdisjoint(previous)
    else:
        previous = _sigmask(signal.SIG_BLOCK, _BLOCKED)
        changed = not previous >= _BLOCKED
    try:
        thread.start()
    finally:
        if changed:
            _sigmask(signal.SIG_SETMASK, previous)


#: The longest a blocking wait on the main thread sleeps before Python may run
#: the handlers of signals that arrived meanwhile (see :func:`wait_interruptibly`).
SIGNAL_CHECK_INTERVAL = 0.1

_main_thread = threading.main_thread()


def wait_interruptibly(wait: Callable[[float | None], bool], timeout: float | None) -> bool:
    """``wait(timeout)``; on the main thread, in slices of :data:`SIGNAL_CHECK_INTERVAL`.

    ``wait`` is a blocking wait that returns whether its condition came true
    (``Event.wait``, ``Lock.acquire`` with ``blocking=True``...). CPython runs
    signal handlers only between bytecodes of the main thread: a signal whose
    low-level handler runs just before that thread goes to sleep in a lock
    (or on another thread) is not handled until it wakes up. A Ctrl-C during a
    push with a 60 s timeout, or ``Event.wait()`` with none, would be held up
    that long. Waking every slice bounds the delay; off the main thread the
    wait is one call, as no signal handler runs there.
    """
    if timeout is not None and timeout <= SIGNAL_CHECK_INTERVAL:
        return wait(timeout)
    if threading.current_thread() is not _main_thread:
        return wait(timeout)
    if timeout is None:
        while not wait(SIGNAL_CHECK_INTERVAL):
            pass
        return True
    deadline = _monotonic() + timeout
    while True:
        left = deadline - _monotonic()
        if left <= SIGNAL_CHECK_INTERVAL:
            return wait(max(left, 0.0))
        if wait(SIGNAL_CHECK_INTERVAL):
            return True


def wait_slice(timeout: float | None) -> float | None:
    """How long one ``Condition.wait`` of a wait loop may sleep on this thread.

    ``timeout`` off the main thread; on it, at most :data:`SIGNAL_CHECK_INTERVAL`
    (for loops that re-check their condition and deadline on every wake-up).
    """
    if threading.current_thread() is not _main_thread:
        return timeout
    return SIGNAL_CHECK_INTERVAL if timeout is None or timeout > SIGNAL_CHECK_INTERVAL else timeout


def call_user_code(function: Callable[[], _T]) -> _T:
    """``function()``, with :data:`ASYNC_SIGNALS` unblocked on this thread while it runs.

    For the application's callables that maxsdk calls on its own threads
    (params, headers and token callables on the reader, join params on a
    rejoin): a process they start (a command that prints a token) inherits
    the thread's signal mask, and must be one Ctrl-C and SIGTERM can stop.
    """
    if _sigmask is None or not _BLOCKED:
        return function()
    previous = _sigmask(signal.SIG_UNBLOCK, _BLOCKED)
    try:
        return function()
    finally:
        if not _BLOCKED.isdisjoint(previous):
            _sigmask(signal.SIG_SETMASK, previous)
