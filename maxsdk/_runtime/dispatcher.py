"""Dispatch: user handlers and signal receivers run off the reader, in order per channel.

Shape
-----
Every client has a :class:`DispatchGroup`; every channel of it has its own
:class:`Lane` (an ordered queue with its own bound and overflow policy), and
connection-level events (state changes, ``connected``...) use the group's
*control* lane. Lanes are served by one :class:`DispatchPool` shared by every
client of the process: a few worker threads take ready lanes round-robin, and
a lane is served by at most one worker at a time, so each channel's events are
handled in arrival order while a slow handler on one channel holds one worker,
never the others' events. A channel may opt into a dedicated thread instead.

The pool starts with :data:`MIN_WORKERS` threads. When ready lanes wait for
longer than :data:`STALL` seconds because every worker is busy (handlers that
sleep or block), a small supervisor thread adds a worker, up to
:data:`MAX_WORKERS`; extra workers end after :data:`IDLE_EXIT` idle seconds.
A process with 1,000 clients thus has one reader thread per client plus a
constant.

Lifecycle: generations
----------------------
The pool's threads belong to a *generation* (:class:`_Generation`: its
ready queue, its counts of workers and idle workers, its supervisor). A
thread only ever reads and changes its own generation's counts, so a stop
can never leave a count that describes another start's threads.

* **attach / detach**: a client holds the pool from ``start()`` (or its
  first event) until ``close()`` has drained its lanes
  (:meth:`DispatchGroup.join`); the pool counts these *users*.
* **no generation → current**: the first lane scheduled creates one; its
  first workers start with it.
* **current → retired**: when the last user detaches. It takes no new lane;
  its workers finish what is in its ready queue, then end, and its
  supervisor ends. The detaching ``close()`` joins every pool thread still
  alive (outside the lock; those threads need it to end), so the last
  ``close()`` returns with no pool thread left. A lane scheduled after
  that (the next client) creates a new generation: a new start never
  revives a retiring one.
* A generation that served lanes while no client was attached (an event
  after ``close()``) retires itself once it has nothing ready.
* ``close()`` from a handler on a pool worker does not join that worker:
  the worker ends right after its handler returned (and its lane drained).
* A child made by ``fork()`` starts with a new pool.

Replies, join/leave results and heartbeat replies never go through a lane:
the reader completes them itself (the caller blocked in ``push()`` wakes at
once), so they do not wait behind handler backlog.

Overflow (per lane) and throttling (per client)
-----------------------------------------------
When a lane holds ``maxsize`` events, the next droppable *message* (control
events are never dropped) meets the lane's policy:

* ``"drop_oldest"``: the lane's oldest message is dropped;
* ``"drop_newest"``: the incoming message is dropped;
* ``"block"`` (default, lossless): nothing is dropped and the reader reads on
  for the other channels: the event is queued past the lane's bound. Memory
  stays bounded by the client's ``total_size``: once the events queued in all
  of a client's lanes reach it, the reader stops reading the socket until the
  handlers bring the total under half of it (TCP backpressure to the server;
  every channel of that socket waits then). While the reader is held back
  that way the client suspends its heartbeat timeout (heartbeat replies wait
  in the socket too). While a handler of the client is itself blocked in a
  maxsdk call (``push()`` waiting for its reply...), the reader reads past the
  total — otherwise that reply could never be read.

Drops are counted per lane and reported through the ``messages_dropped`` signal.

Threads: the submitting side (:meth:`DispatchGroup.submit`) runs under the
engine's lock, so it has one writer at a time; workers never take that lock.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Literal

from maxsdk._runtime.threads import start_thread

__all__ = ["DispatchGroup", "DispatchPool", "Lane", "OverflowPolicy", "current_lane"]

log = logging.getLogger("maxsdk.dispatcher")

OverflowPolicy = Literal["drop_oldest", "drop_newest", "block"]

#: Workers the shared pool keeps (started on first use).
MIN_WORKERS = 2
#: The most workers the pool grows to while handlers block.
MAX_WORKERS = 64
#: Seconds a ready lane may wait with every worker busy before a worker is added.
STALL = 0.05
#: Seconds an extra worker stays idle before it ends.
IDLE_EXIT = 10.0
#: Events a worker handles from one lane before it lets the next ready lane go first.
QUANTUM = 256

_local = threading.local()
_monotonic = time.monotonic


def current_lane() -> Lane | None:
    """The lane whose handler runs on the calling thread, if any."""
    lane: Lane | None = getattr(_local, "lane", None)
    return lane


class Lane:
    """One ordered queue of events: a channel's, or a client's connection-level events.

    Attributes:
        name: the channel topic (``None`` for the control lane).
        maxsize: the most queued events before the overflow policy applies.
        overflow: the overflow policy.
        handled / dropped_total / max_depth: counters (read them at any time).

    """

    def __init__(self, group: DispatchGroup, name: str | None, maxsize: int, overflow: OverflowPolicy) -> None:
        self.group = group
        self.name = name
        self.maxsize = maxsize
        self.overflow = overflow
        self.queue: deque[Any] = deque()
        #: In the run queue or being served (at most one worker serves a lane at a time).
        self.scheduled = False
        self.ready_since = 0.0
        self.handled = 0
        self.dropped_total = 0
        self.dropped_unreported = 0
        self.max_depth = 0
        self.dedicated: _DedicatedThread | None = None

    @property
    def depth(self) -> int:
        """Events waiting to be handled."""
        return len(self.queue)

    def __repr__(self) -> str:
        return f"<Lane {self.name!r} depth={len(self.queue)} handled={self.handled}>"


class _Generation:
    """One start of the pool's threads: its workers count, wait and end within it only.

    A retired generation takes no new lanes (:meth:`DispatchPool.schedule`
    uses the current one); its workers finish the lanes already in its
    ``ready`` queue, then end.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self.ready: deque[Lane] = deque()
        self.work = threading.Condition(lock)
        self.stalled = threading.Condition(lock)
        self.workers = 0
        self.idle = 0
        #: Workers started but not yet in their loop (they look at ``ready`` first thing).
        self.starting = 0
        self.supervisor: threading.Thread | None = None
        self.retired = False


class DispatchPool:
    """Worker threads shared by every client of a process, serving ready lanes round-robin.

    See the module docstring ("Lifecycle") for the states; every field is
    guarded by one lock, and a thread never touches another generation's counts.
    """

    def __init__(
        self,
        *,
        min_workers: int = MIN_WORKERS,
        max_workers: int = MAX_WORKERS,
        stall: float = STALL,
        idle_exit: float = IDLE_EXIT,
    ) -> None:
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.stall = stall
        self.idle_exit = idle_exit
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        #: The generation new lanes go to (``None``: created by the next :meth:`schedule`).
        self._gen: _Generation | None = None
        #: Attached groups (started clients).
        self._users = 0
        #: Every thread the pool started, of every generation (pruned once dead).
        self._threads: set[threading.Thread] = set()

    @property
    def workers(self) -> int:
        """Worker threads of the current generation."""
        gen = self._gen
        return 0 if gen is None else gen.workers

    @property
    def users(self) -> int:
        """Attached groups (started clients)."""
        return self._users

    @property
    def threads(self) -> list[threading.Thread]:
        """The pool's threads alive now (workers and supervisors of every generation)."""
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    def attach(self) -> None:
        """A client starts using the pool (its threads then stay up until the last detach)."""
        with self._lock:
            self._users += 1

    def detach(self, timeout: float | None = None) -> None:
        """A client is done with the pool; the last one retires the generation and joins its threads.

        Called on a pool thread (``close()`` in a handler), it does not join
        that thread: it ends once its handler returned and its lanes drained.
        """
        current = threading.current_thread()
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            gen = self._gen
            if gen is not None:
                self._retire(gen)
            threads = [t for t in self._threads if t is not current and t.ident is not None]
        deadline = None if timeout is None else _monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - _monotonic()))

    def _retire(self, gen: _Generation) -> None:
        """Under the lock: ``gen`` takes no new lane; its threads end once its ready queue is empty."""
        gen.retired = True
        if self._gen is gen:
            self._gen = None
        gen.work.notify_all()
        gen.stalled.notify_all()

    def schedule(self, lane: Lane) -> None:
        """Make ``lane`` ready (idempotent while it is scheduled)."""
        with self._lock:
            if lane.scheduled:
                return
            lane.scheduled = True
            lane.ready_since = _monotonic()
            gen = self._gen
            if gen is None:
                gen = self._gen = _Generation(self._lock)
            self._enqueue(gen, lane)

    def _enqueue(self, gen: _Generation, lane: Lane) -> None:
        """Under the lock: queue ``lane`` in ``gen`` and make sure a thread of ``gen`` takes it."""
        gen.ready.append(lane)
        if gen.retired:
            return  # only a worker of ``gen`` requeues there, and it takes the lane itself
        if gen.idle:
            gen.work.notify()
        elif gen.starting:
            pass  # a worker on its way takes it (it looks at the ready queue before waiting)
        elif gen.workers < self.min_workers:
            self._spawn(gen)
        else:
            self._poke_supervisor(gen)

    def _spawn(self, gen: _Generation) -> None:
        """Start a worker of ``gen`` (under the lock)."""
        self._track(self._new_worker(gen), runs_user_code=True)

    def _new_worker(self, gen: _Generation) -> threading.Thread:
        """Under the lock: a worker of ``gen``, counted (and remembered) but not started."""
        gen.workers += 1
        gen.starting += 1
        number = next(self._names)
        thread = threading.Thread(
            target=self._work_loop, args=(gen,), name=f"maxsdk-dispatch-worker-{number}", daemon=True
        )
        self._remember(thread)
        return thread

    def _remember(self, thread: threading.Thread) -> None:
        """Under the lock: add a thread to the ones :meth:`detach` joins (forgetting ended ones)."""
        self._threads = {t for t in self._threads if t.ident is None or t.is_alive()}
        self._threads.add(thread)

    def _track(self, thread: threading.Thread, *, runs_user_code: bool) -> None:
        """Under the lock: remember and start a thread of the pool (a worker runs handlers)."""
        self._remember(thread)
        start_thread(thread, runs_user_code=runs_user_code)

    def prestart(self) -> None:
        """Start the pool's first worker now, if it has none yet.

        For a thread with time to spare: starting a thread waits for it to
        run, which would otherwise fall on whoever submits the first event
        (often a caller reading its join reply). The thread is started outside
        the lock: an event submitted meanwhile is taken by the worker on its way.
        """
        self.start_reserved(self.reserve_worker())

    def reserve_worker(self) -> tuple[_Generation, threading.Thread] | None:
        """Count the pool's first worker as on its way, without starting it yet.

        Events submitted from now on wait for that worker instead of starting
        one on the submitting thread. Whoever reserved it must pass it to
        :meth:`start_reserved` (``None``: the pool has a worker, or no user).
        """
        with self._lock:
            if self._users <= 0:
                return None
            gen = self._gen
            if gen is None:
                gen = self._gen = _Generation(self._lock)
            if gen.workers:
                return None
            return gen, self._new_worker(gen)

    def start_reserved(self, reserved: tuple[_Generation, threading.Thread] | None) -> None:
        """Start a worker :meth:`reserve_worker` returned (outside the lock; ``None``: nothing to do)."""
        if reserved is None:
            return
        gen, thread = reserved
        try:
            start_thread(thread, runs_user_code=True)
        except RuntimeError:  # no more threads: the next event's submit tries again
            log.warning("cannot start a dispatch worker thread", exc_info=True)
            with self._lock:
                gen.workers -= 1
                gen.starting -= 1
                self._threads.discard(thread)

    def _poke_supervisor(self, gen: _Generation) -> None:
        """Under the lock: wake ``gen``'s supervisor (started on first need)."""
        if gen.supervisor is None:
            gen.supervisor = threading.Thread(
                target=self._supervise, args=(gen,), name="maxsdk-dispatch-supervisor", daemon=True
            )
            self._track(gen.supervisor, runs_user_code=False)
        else:
            gen.stalled.notify()

    def _supervise(self, gen: _Generation) -> None:
        """Add a worker when ready lanes wait too long because every worker is busy."""
        ready, stalled = gen.ready, gen.stalled
        with self._lock:
            while not gen.retired:
                if not ready or gen.idle:
                    stalled.wait()
                    continue
                waited = _monotonic() - ready[0].ready_since
                if waited >= self.stall and gen.workers < self.max_workers:
                    self._spawn(gen)
                    stalled.wait(self.stall)  # give it time to pick the lane up
                else:
                    stalled.wait(max(self.stall - waited, 0.001))

    def _work_loop(self, gen: _Generation) -> None:
        thread = threading.current_thread()
        idle_name = thread.name
        lock, work, ready = self._lock, gen.work, gen.ready
        with lock:
            gen.starting -= 1
        while True:
            with lock:
                while not ready:
                    if thread.name != idle_name:
                        thread.name = idle_name
                    if not gen.retired and self._users <= 0:
                        self._retire(gen)  # served lanes of no started client: nobody would retire it
                    if gen.retired:
                        gen.workers -= 1
                        return
                    gen.idle += 1
                    woken = work.wait(self.idle_exit)
                    gen.idle -= 1
                    if not woken and not ready and gen.workers > self.min_workers:
                        gen.workers -= 1
                        return
                lane = ready.popleft()
                if ready and not gen.idle and not gen.retired:
                    # More lanes wait and this thread may block in a handler: the supervisor
                    # adds a worker if they wait too long (a notify above may have gone to us).
                    self._poke_supervisor(gen)
            serve(lane, QUANTUM, thread)
            lane.scheduled = False
            # Re-checked after clearing the flag: a submit that saw it set relies on this.
            if lane.queue:
                self._requeue(gen, lane)
            lane.group.lane_done(lane)

    def _requeue(self, gen: _Generation, lane: Lane) -> None:
        """Make ``lane`` ready again in the serving worker's own generation."""
        with self._lock:
            if lane.scheduled:
                return  # a submit scheduled it meanwhile (in the current generation)
            lane.scheduled = True
            lane.ready_since = _monotonic()
            self._enqueue(gen, lane)


def serve(lane: Lane, limit: int, thread: threading.Thread | None) -> None:
    """Handle up to ``limit`` events of ``lane`` on the calling thread, in order.

    A pool worker (``thread`` given) takes the client's name while it runs the
    client's handlers, so logs and thread names read as before the pool.
    """
    group = lane.group
    if thread is not None and thread.name != group.thread_name:
        thread.name = group.thread_name
    queue, handle = lane.queue, group.handle
    _local.lane = lane
    done = 0
    try:
        while done < limit:
            try:
                item = queue.popleft()
            except IndexError:
                break
            try:
                handle(item)
            except Exception:
                log.exception("internal error while dispatching %r", type(item).__name__)
            done += 1
            lane.handled += 1
            if lane.dropped_unreported:
                group.report_drops(lane)
            if group.reader_blocked:
                group.progress(done)
                done = 0
    finally:
        _local.lane = None
        group.progress(done)


class _DedicatedThread:
    """A channel's own handler thread (opt-in): serves one lane only."""

    def __init__(self, lane: Lane, name: str) -> None:
        self.lane = lane
        self.name = name
        self.wake = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.stopping = False
            self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            start_thread(self.thread, runs_user_code=True)

    def _run(self) -> None:
        lane, wake = self.lane, self.wake
        group = lane.group
        while True:
            lane.scheduled = True
            serve(lane, 1 << 30, None)
            lane.scheduled = False
            group.lane_done(lane)
            if lane.queue:
                continue
            if self.stopping:
                return
            wake.wait()
            wake.clear()


class DispatchGroup:
    """The dispatch side of one client: its lanes, their accounting, and the throttle.

    Args:
        handle: called with each event on a worker thread; must not raise
            (the client isolates user errors itself).
        report_drops: called (on a worker) with a lane that dropped messages.
        maxsize: default bound of a lane.
        overflow: default overflow policy of a lane.
        total_size: the most events queued in all lanes before the reader
            stops reading (``block`` lanes only grow past their bound up to it).
        droppable: tells messages (droppable) from control events.
        lane_of: the lane of an event (``None``: the control lane).
        name: the client's name (thread names while its handlers run).
        pool: the worker pool (default: the process-wide one).

    """

    def __init__(
        self,
        handle: Callable[[Any], None],
        report_drops: Callable[[Lane], None],
        *,
        maxsize: int,
        overflow: OverflowPolicy,
        total_size: int,
        droppable: Callable[[Any], bool],
        lane_of: Callable[[Any], Lane | None],
        name: str,
        pool: DispatchPool | None = None,
    ) -> None:
        self.handle = handle
        self._report_drops = report_drops
        self.maxsize = maxsize
        self.overflow = overflow
        self.total_size = total_size
        self._droppable = droppable
        self._lane_of = lane_of
        self.name = name
        self.thread_name = f"{name}-dispatch"
        self._pool = pool
        self.control = Lane(self, None, maxsize, overflow)
        self._lanes: weakref.WeakSet[Lane] = weakref.WeakSet()
        self._dedicated: list[_DedicatedThread] = []
        self._dedicated_names = itertools.count(1)
        self._cond = threading.Condition(threading.Lock())
        #: Events submitted (one writer: the engine lock) and handled (workers, under ``_cond``).
        self.submitted = 0
        self.handled = 0
        self.dropped_total = 0
        self.reader_blocked = False
        #: Handler calls blocked in a maxsdk wait right now (the reader must not block then).
        self.handler_waiting = 0
        self.running = False
        self._joining = 0
        #: The pool this group holds (see :meth:`attach`); ``_finished``: joined after a stop.
        self._attached: DispatchPool | None = None
        self._finished = False

    # -- lanes -----------------------------------------------------------------------

    def lane(
        self,
        name: str,
        *,
        maxsize: int | None = None,
        overflow: OverflowPolicy | None = None,
        dedicated: bool = False,
    ) -> Lane:
        """A new lane (a channel's), optionally served by its own thread."""
        lane = Lane(self, name, self.maxsize if maxsize is None else maxsize, overflow or self.overflow)
        with self._cond:
            self._lanes.add(lane)
            if dedicated:
                worker = _DedicatedThread(lane, f"{self.name}-dispatch-{next(self._dedicated_names)}")
                lane.dedicated = worker
                self._dedicated.append(worker)
                if self.running:
                    worker.start()
        return lane

    def _pool_lanes(self) -> list[Lane]:
        """The lanes the pool serves (under ``_cond``)."""
        return [self.control, *(lane for lane in list(self._lanes) if lane.dedicated is None)]

    @property
    def pool(self) -> DispatchPool:
        """The worker pool serving this group."""
        return self._pool or shared_pool()

    @property
    def depth(self) -> int:
        """Events queued in all lanes."""
        return self.submitted - self.handled

    @property
    def threads(self) -> list[threading.Thread]:
        """The dedicated threads this group started."""
        with self._cond:
            return [w.thread for w in self._dedicated if w.thread is not None]

    # -- the submitting side (under the engine lock) ------------------------------------------

    def submit(self, item: Any) -> None:
        """Queue an event on its lane; never blocks (the reader waits in :meth:`wait_for_room`)."""
        if self._attached is None and not self._finished:
            self._attach()  # an event before start() (a client closed unconnected...)
        lane = self._lane_of(item) or self.control
        queue = lane.queue
        depth = len(queue)
        if depth >= lane.maxsize and lane.overflow != "block" and self._droppable(item):
            made_room = 0 if lane.overflow == "drop_newest" else _drop_oldest_message(queue, self._droppable)
            if made_room <= 0:
                self._count_drop(lane)  # drop_newest, or nothing droppable queued: this one goes
                return
            if made_room == _DROPPED:
                self._count_drop(lane)
                queue.append(item)  # in place of the dropped one: the depth is unchanged
            else:
                queue.append(item)  # the worker made room meanwhile
                self.submitted += 1
        else:
            queue.append(item)
            self.submitted += 1
            if depth >= lane.max_depth:
                lane.max_depth = depth + 1
        if not lane.scheduled:
            dedicated = lane.dedicated
            if dedicated is not None:
                dedicated.wake.set()
            else:
                self.pool.schedule(lane)

    def _count_drop(self, lane: Lane) -> None:
        lane.dropped_total += 1
        lane.dropped_unreported += 1
        self.dropped_total += 1

    def must_wait(self) -> bool:
        """Whether the reader should stop reading (cheap: called after every frame)."""
        return self.submitted - self.handled >= self.total_size or self.reader_blocked

    def wait_for_room(self, stop: threading.Event) -> None:
        """Block the calling (reader) thread while the client's lanes hold ``total_size`` events."""
        if self.depth < self.total_size or self.handler_waiting:
            return
        low_water = self.total_size // 2
        with self._cond:
            self.reader_blocked = True
            try:
                while self.depth > low_water and not self.handler_waiting and self.running and not stop.is_set():
                    self._cond.wait(0.5)
            finally:
                self.reader_blocked = False

    # -- the worker side -----------------------------------------------------------------------

    def progress(self, count: int) -> None:
        """``count`` more events were handled (called by the serving worker)."""
        if not count:
            return
        with self._cond:
            self.handled += count
            if self.reader_blocked:
                self._cond.notify_all()

    def lane_done(self, lane: Lane) -> None:
        """A worker stopped serving ``lane`` for now (wakes :meth:`join`)."""
        if self._joining:
            with self._cond:
                self._cond.notify_all()

    def report_drops(self, lane: Lane) -> None:
        """Tell the client a lane dropped messages."""
        self._report_drops(lane)

    def enter_wait(self) -> None:
        """A handler of this group starts a blocking maxsdk call: let the reader read on."""
        with self._cond:
            self.handler_waiting += 1
            self._cond.notify_all()

    def exit_wait(self) -> None:
        """The blocking call of :meth:`enter_wait` returned."""
        with self._cond:
            self.handler_waiting -= 1

    def owns_current_thread(self) -> bool:
        """Whether the calling thread is running one of this group's handlers."""
        lane = current_lane()
        return lane is not None and lane.group is self

    # -- lifecycle -------------------------------------------------------------------------

    def attach(self) -> None:
        """Hold the pool from now until :meth:`join` (idempotent; :meth:`start` does it too)."""
        with self._cond:
            self._finished = False
            if self._attached is None:
                self._attached = self.pool
                self._attached.attach()

    def _attach(self) -> None:
        """Hold the pool for an event submitted before :meth:`start` (not after :meth:`join`)."""
        with self._cond:
            if self._attached is None and not self._finished:
                self._attached = self.pool
                self._attached.attach()

    def prestart(self) -> None:
        """Start the shared pool's first worker if it has none (see :meth:`DispatchPool.prestart`)."""
        if self._attached is not None:
            self._attached.prestart()

    def reserve_worker(self) -> tuple[DispatchPool, tuple[_Generation, threading.Thread]] | None:
        """Reserve the shared pool's first worker (see :meth:`DispatchPool.reserve_worker`)."""
        pool = self._attached
        if pool is None:
            return None
        reserved = pool.reserve_worker()
        return None if reserved is None else (pool, reserved)

    @staticmethod
    def start_reserved(reserved: tuple[DispatchPool, tuple[_Generation, threading.Thread]] | None) -> None:
        """Start a worker :meth:`reserve_worker` returned (``None``: nothing to do)."""
        if reserved is not None:
            pool, worker = reserved
            pool.start_reserved(worker)

    def start(self) -> None:
        """Hold the pool and start the dedicated threads (pool lanes are served from their first event on)."""
        self.attach()
        with self._cond:
            self.running = True
            for worker in self._dedicated:
                worker.start()

    def stop(self) -> None:
        """Let the dedicated threads end once drained; pool lanes drain on their own."""
        with self._cond:
            self.running = False
            dedicated = list(self._dedicated)
            self._cond.notify_all()
        for worker in dedicated:
            worker.stopping = True
            worker.wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until every lane is drained and idle and the dedicated threads ended.

        Called from one of this group's handlers (``close()`` in a handler),
        it does not wait for that handler's own lane.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        own = current_lane()
        current = threading.current_thread()

        def busy() -> bool:
            return any((lane.queue or lane.scheduled) and lane is not own for lane in self._pool_lanes())

        with self._cond:
            self._joining += 1
            try:
                while busy():
                    remaining = None if deadline is None else deadline - _monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                self._joining -= 1
        for thread in self.threads:
            if thread is not current and thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - _monotonic()))
        with self._cond:
            if self.running:
                return
            held, self._attached, self._finished = self._attached, None, True
        if held is not None:  # the last client's: the pool's threads end and are joined
            held.detach(None if deadline is None else max(0.0, deadline - _monotonic()))


_DROPPED = 1
_RACED = 2


def _drop_oldest_message(queue: deque[Any], droppable: Callable[[Any], bool]) -> int:
    """Remove the oldest droppable event (skipping control events).

    Returns ``_DROPPED``, ``_RACED`` (the worker popped meanwhile: room was
    made without a drop) or 0 (nothing droppable among the oldest).
    """
    try:
        if droppable(queue[0]):
            queue.popleft()
            return _DROPPED
        for queued in itertools.islice(queue, 256):
            if droppable(queued):
                # By value, not index: the worker may pop from the left meanwhile.
                queue.remove(queued)
                return _DROPPED
    except (IndexError, ValueError, RuntimeError):
        return _RACED
    return 0


_shared: DispatchPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> DispatchPool:
    """The process-wide pool (created on first use, and anew in a forked child)."""
    global _shared
    pool = _shared
    if pool is None:
        with _shared_lock:
            if _shared is None:
                _shared = DispatchPool()
            pool = _shared
    return pool


def _forget_pool_in_child() -> None:
    global _shared, _shared_lock
    _shared = None  # the parent's workers do not exist in the child
    _shared_lock = threading.Lock()  # it may have been held by a parent's thread at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)
