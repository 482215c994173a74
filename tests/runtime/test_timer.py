"""The process-wide timer: one thread ticking the deadlines of every client."""

from __future__ import annotations

import os
import threading
import time

import pytest

from maxsdk._runtime import timer as timer_module
from maxsdk._runtime.timer import THREAD_NAME, Timer, TimerService, is_timer_thread, shared_service


class Ticks:
    """A tick function recording its calls and returning scripted deadlines."""

    def __init__(self, following: float | None = None) -> None:
        self.calls: list[float] = []
        self.threads: set[str] = set()
        self.following = following
        self.cond = threading.Condition()

    def __call__(self, now: float) -> float | None:
        with self.cond:
            self.calls.append(now)
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()
        return self.following

    def wait_calls(self, count: int, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= count, timeout), self.calls


@pytest.mark.timeout(20)
def test_many_entries_share_one_thread_and_each_ticks_at_its_deadline():
    service = TimerService()
    ticks = [Ticks() for _ in range(50)]
    timers = [Timer(t, name=f"c{n}", service=service) for n, t in enumerate(ticks)]
    for timer in timers:
        timer.start()
    for t in ticks:
        t.wait_calls(1)  # start ticks once now
    assert {name for t in ticks for name in t.threads} == {THREAD_NAME}
    assert len([t for t in threading.enumerate() if t is service.thread]) == 1
    soon = time.monotonic() + 0.05
    for timer in timers[::2]:
        timer.poke_if_earlier(soon)
    for t in ticks[::2]:
        t.wait_calls(2)
        assert t.calls[1] >= soon
    assert all(len(t.calls) == 1 for t in ticks[1::2])  # the others stay asleep (no deadline)
    thread = service.thread
    assert thread is not None
    for timer in timers:
        timer.stop()
        assert timer.join(2.0)
    # The last entry to leave joined the thread.
    assert not thread.is_alive()
    assert service.entries == 0
    again = Ticks()
    timer = Timer(again, name="again", service=service)
    timer.start()  # the next entry starts a new thread
    again.wait_calls(1)
    assert service.thread is not thread
    timer.stop()
    assert timer.join(2.0)


@pytest.mark.timeout(20)
def test_an_entry_added_while_the_last_one_leaves_gets_a_new_thread_never_the_ending_one():
    service = TimerService()
    entered, release = threading.Event(), threading.Event()

    def slow_tick(now: float) -> float | None:
        entered.set()
        release.wait(5)
        return None

    first = Timer(slow_tick, name="first", service=service)
    first.start()
    assert entered.wait(5)
    ending = service.thread
    assert ending is not None
    first.stop()  # the last entry leaves during its own tick: the thread is retired now
    assert service.thread is None
    again = Ticks()
    second = Timer(again, name="second", service=service)
    second.start()  # before the retired thread has ended: a new one serves it
    again.wait_calls(1)
    assert service.thread is not None and service.thread is not ending and ending.is_alive()
    release.set()
    assert first.join(5)  # waits for the tick in flight, then joins the thread it retired
    assert not ending.is_alive()
    second.poke()
    again.wait_calls(2)  # the new thread goes on alone
    current = service.thread
    assert current is not None
    second.stop()
    assert second.join(2) and not current.is_alive()


@pytest.mark.timeout(20)
def test_an_entry_started_unscheduled_waits_for_its_deadline_even_past_the_longest_sleep(monkeypatch):
    monkeypatch.setattr(timer_module, "MAX_SLEEP", 0.05)
    service = TimerService()
    ticks = Ticks()
    timer = Timer(ticks, name="far", service=service)
    timer.start(None)  # no tick at start
    beacon = Ticks()
    other = Timer(beacon, name="beacon", service=service)
    other.start()
    beacon.wait_calls(1)  # the thread runs and has looked at the schedule
    assert ticks.calls == []
    due = time.monotonic() + 0.3  # later than the thread's next wake-up: set without waking it
    timer.poke_if_earlier(due)
    ticks.wait_calls(1)
    assert ticks.calls[0] >= due and len(ticks.calls) == 1
    timer.stop()
    other.stop()
    assert timer.join(2.0) and other.join(2.0)


@pytest.mark.timeout(20)
def test_a_poke_during_a_tick_ticks_again_and_stop_waits_for_the_tick_in_flight():
    service = TimerService()
    entered, release = threading.Event(), threading.Event()
    calls: list[float] = []
    changed = threading.Condition()

    def slow_tick(now: float) -> float | None:
        with changed:
            calls.append(now)
            changed.notify_all()
        if len(calls) == 1:
            entered.set()
            release.wait(5)
        return None

    timer = Timer(slow_tick, name="slow", service=service)
    timer.start()
    assert entered.wait(5)
    timer.poke()  # during the tick: not lost
    other = Ticks()
    other_timer = Timer(other, name="other", service=service)
    other_timer.start()
    release.set()
    other.wait_calls(1)
    with changed:
        assert changed.wait_for(lambda: len(calls) == 2, 5), calls

    # stop() + join() returns only once the tick in flight has finished.
    entered.clear()
    release.clear()
    calls.clear()
    timer2 = Timer(slow_tick, name="slow2", service=service)
    timer2.start()
    assert entered.wait(5)
    timer2.stop()
    assert not timer2.join(0.05)
    release.set()
    assert timer2.join(5)
    timer2.poke()  # a stopped entry is never ticked again
    timer.stop()
    other_timer.stop()
    assert len(calls) == 1


@pytest.mark.timeout(20)
def test_a_failing_tick_does_not_end_the_thread():
    service = TimerService()

    def broken(now: float) -> float | None:
        raise RuntimeError("boom")

    bad = Timer(broken, name="bad", service=service)
    bad.start()
    good = Ticks()
    timer = Timer(good, name="good", service=service)
    timer.start()
    good.wait_calls(1)
    timer.poke()
    good.wait_calls(2)
    bad.stop()
    timer.stop()


@pytest.mark.timeout(20)
def test_the_timer_thread_knows_itself():
    service = TimerService()
    seen: list[bool] = []
    ticks = Ticks()

    def tick(now: float) -> float | None:
        seen.append(is_timer_thread())
        return ticks(now)

    timer = Timer(tick, name="self", service=service)
    timer.start()
    ticks.wait_calls(1)
    assert seen == [True]
    assert not is_timer_thread()
    timer.stop()
    assert timer.join(2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.timeout(30)
def test_a_forked_child_gets_its_own_timer_thread():
    parent = Ticks()
    timer = Timer(parent, name="parent")
    timer.start()
    parent.wait_calls(1)
    before = shared_service()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            service = shared_service()
            child = Ticks()
            Timer(child, name="child").start()
            child.wait_calls(1)
            code = 0 if service is not before and child.threads == {THREAD_NAME} else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"\x00"
    timer.stop()
    assert timer.join(2)
