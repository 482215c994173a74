"""The dispatch pool's first worker can be started ahead of the first event, off a caller's path."""

from __future__ import annotations

import threading

from maxsdk._runtime.dispatcher import DispatchGroup, DispatchPool


def _group(pool: DispatchPool, handled: list, done: threading.Event, count: int) -> DispatchGroup:
    def handle(item: object) -> None:
        handled.append(item)
        if len(handled) == count:
            done.set()

    return DispatchGroup(
        handle,
        lambda lane: None,
        maxsize=100,
        overflow="block",
        total_size=1000,
        droppable=lambda item: True,
        lane_of=lambda item: None,
        name="prestart-test",
        pool=pool,
    )


def test_a_prestarted_worker_serves_the_first_events_and_no_other_worker_is_needed():
    pool = DispatchPool()
    handled: list[int] = []
    done = threading.Event()
    group = _group(pool, handled, done, 50)
    group.start()
    group.prestart()
    group.prestart()  # idempotent: one worker, however often it is asked
    for number in range(50):  # submitted while the worker may still be on its way
        group.submit(number)
    assert done.wait(5)
    assert handled == list(range(50))
    assert pool.workers == 1
    group.stop()
    group.join(5)
    assert pool.threads == []


def test_prestart_does_nothing_for_a_pool_nobody_holds():
    pool = DispatchPool()
    group = _group(pool, [], threading.Event(), 1)
    group.prestart()
    assert pool.workers == 0
    assert pool.threads == []
