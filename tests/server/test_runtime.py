"""The server's runtime pieces in isolation: scheduler, mailbox, timer, recorder, router, settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial

import pytest

from maxsdk.server import Recorder, Router, ServerSettings
from maxsdk.server.mailbox import Mailbox
from maxsdk.server.message import Message
from maxsdk.server.reference_app import EchoChannel, RoomChannel
from maxsdk.server.scheduler import Scheduler
from maxsdk.server.timer import Timer


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    pool = Scheduler(max_workers=8, idle_timeout=0.2)
    yield pool
    assert pool.stop(5)


def test_a_blocked_task_does_not_hold_up_the_next(scheduler: Scheduler) -> None:
    release, second_ran = threading.Event(), threading.Event()

    def blocked() -> None:
        release.wait(5)

    scheduler.submit(blocked)
    scheduler.submit(second_ran.set)
    assert second_ran.wait(2)
    release.set()


def test_workers_are_bounded_and_expire(scheduler: Scheduler) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> None:
        started.release()
        release.wait(5)

    for _ in range(20):
        scheduler.submit(block)
    for _ in range(8):
        assert started.acquire(timeout=2)
    assert scheduler.thread_count == 8
    release.set()
    for _ in range(12):
        assert started.acquire(timeout=2)
    workers = [t for t in threading.enumerate() if t.name.startswith("maxsdk-server-worker")]
    for worker in workers:  # idle workers exit on their own after idle_timeout
        worker.join(5)
    assert scheduler.thread_count == 0


def test_stop_runs_what_is_queued_then_refuses(scheduler: Scheduler) -> None:
    ran: list[int] = []
    for n in range(50):
        scheduler.submit(partial(ran.append, n))
    assert scheduler.stop(5)
    scheduler.submit(lambda: ran.append(-1))
    assert sorted(ran) == list(range(50))


def test_mailbox_keeps_order_across_batches(scheduler: Scheduler) -> None:
    seen: list[int] = []
    done = threading.Event()

    def handle(n: int) -> None:
        seen.append(n)
        if n == 999:
            done.set()

    box: Mailbox[int] = Mailbox(scheduler, handle, active=False)
    for n in range(500):
        box.put(n)
    assert seen == []
    box.activate()
    for n in range(500, 1000):
        box.put(n)
    assert done.wait(5)
    assert seen == list(range(1000))
    box.close()
    assert not box.put(1)


def test_mailboxes_run_in_parallel(scheduler: Scheduler) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def meet(_: None) -> None:
        barrier.wait()

    boxes: list[Mailbox[None]] = [Mailbox(scheduler, meet) for _ in range(2)]
    for box in boxes:
        box.put(None)
    barrier.wait()  # both mailboxes reached the barrier at the same time


def test_timer_fires_in_deadline_order_and_cancels(scheduler: Scheduler) -> None:
    timer = Timer(scheduler.submit)
    fired: list[str] = []
    done = threading.Event()

    def late() -> None:
        fired.append("late")
        done.set()

    timer.call_later(0.15, late)
    timer.call_later(0.05, lambda: fired.append("early"))
    timer.call_later(0.10, lambda: fired.append("cancelled")).cancel()
    assert done.wait(2)
    assert fired == ["early", "late"]
    timer.stop()
    assert timer.call_later(0, lambda: fired.append("after stop")).cancelled


def test_recorder_waits_and_cursors() -> None:
    recorder = Recorder(limit=3)
    threading.Timer(0.05, lambda: recorder.record_message(1, Message("1", "2", "t", "late", {}))).start()
    found = recorder.wait_for_message(event="late", timeout=2)
    assert (found.index, found.connection_id, found.event) == (0, 1, "late")
    for n in range(5):
        recorder.record_message(2, Message(None, str(n), "t", "e", {}))
    assert [m.index for m in recorder.messages()] == [3, 4, 5]
    assert recorder.message_count == 6
    assert recorder.wait_for_message(lambda m: m.ref == "4", since=4).index == 5
    with pytest.raises(TimeoutError):
        recorder.wait_for_message(topic="nope", timeout=0.05)
    recorder.record_event("opened", 1)
    recorder.wait_for_connections(1, timeout=0)
    recorder.record_event("closed", 1, code=1000)
    recorder.wait_for_connections(0, timeout=0)
    assert recorder.wait_for_event(lambda e: e.kind == "closed").code == 1000


def test_router_first_match_wins() -> None:
    router = Router([("room:lobby", EchoChannel), ("room:*", RoomChannel), ("*", EchoChannel)])
    assert router.match("room:lobby") is EchoChannel
    assert router.match("room:x") is RoomChannel
    assert router.match("anything") is EchoChannel
    assert Router([("room:*", RoomChannel)]).match("rooms") is None
    with pytest.raises(ValueError):
        Router().channel("a*b", EchoChannel)


def test_settings_validation_and_preset() -> None:
    with pytest.raises(ValueError):
        ServerSettings(join_ref_check="1.7")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ServerSettings(idle_timeout=0)
    with pytest.raises(ValueError):
        ServerSettings(disconnect_close_code=99)
    legacy = ServerSettings.phoenix_1_7(idle_timeout=1.0)
    assert (legacy.join_ref_check, dict(legacy.crash_payload), legacy.idle_close_code) == ("none", {}, 1002)
    assert legacy.max_channels_per_transport is None and legacy.idle_timeout == 1.0
    assert dict(ServerSettings().crash_payload) == {"reason": "channel_crash"}
    assert ServerSettings().with_changes(auth_token=True).auth_token


def test_public_exports_are_complete_and_sorted() -> None:
    import maxsdk.server as package

    assert package.__all__ == sorted(package.__all__, key=lambda name: (not name.isupper(), name))
    for name in package.__all__:
        assert getattr(package, name) is not None
    documented = package.__doc__ or ""
    for name in ("PhoenixServer", "ServerSettings", "Channel", "ChannelSocket", "Router", "Accept", "Refuse"):
        assert name in package.__all__ and name in documented
