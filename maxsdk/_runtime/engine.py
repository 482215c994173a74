"""The threaded runtime around the Phoenix protocol core.

Threads (per client, all started by :meth:`Engine.start`, all joined by
:meth:`Engine.close`):

* **reader** (``maxsdk-reader-N``): owns the connection loop — connect,
  read frames until the connection ends, decide whether and when to
  reconnect (waiting on an abortable event). It survives reconnects.
* deadlines (heartbeats, push timeouts, rejoins) are acted on by the
  process-wide timer thread (``maxsdk-timer``), one entry per client (see
  :mod:`maxsdk._runtime.timer`); close() removes the entry and waits for a
  tick in flight.
* handlers and signal receivers run on the process-wide dispatch pool, one
  ordered lane per channel plus one for connection-level events (see
  :mod:`maxsdk._runtime.dispatcher`); a channel may opt into its own thread.

Locking: one lock (``_lock``) serializes every call into the protocol core.
Frames the core produces are queued under that lock (so their order is the
core's order) and written after it is released, under ``_send_lock``. No
thread waits for that lock: a thread that finds it taken leaves its frames to
the writer holding it, which looks at the queue again after releasing it. So a
peer that stops reading blocks at most one writer (until the transport's write
timeout), never the timer, the reader or ``close()``.
Completions (waking blocked callers) happen after the lock is released; user
code never runs under either lock.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import unquote, urlsplit

from maxsdk import signals
from maxsdk._runtime.connector import TransportSelector
from maxsdk._runtime.dispatcher import DispatchGroup, Lane, OverflowPolicy
from maxsdk._runtime.failover import EndpointChooser
from maxsdk._runtime.handshake import ConnectAttempt, check_header_value
from maxsdk._runtime.metrics import Metrics
from maxsdk._runtime.read_baton import NOT_YET, ReadBaton
from maxsdk._runtime.threads import call_user_code, start_thread, wait_slice
from maxsdk._runtime.timer import TIMER_IDENTS, Timer
from maxsdk._runtime.transport import BINARY, TEXT, ReadPausedError, Transport, TransportOptions
from maxsdk.config import ClientConfig, make_ssl_context, tls_pins, tls_verifies
from maxsdk.endpoint import redact_url
from maxsdk.errors import (
    ClientClosedError,
    ConfigurationError,
    ConnectFailedError,
    ConnectionLostError,
    ConnectTimeoutError,
    MaxsdkError,
    RemoteProtocolError,
    WrongThreadError,
)
from maxsdk.protocol.failure import Decision, FailurePolicy, classify_close, classify_error
from maxsdk.protocol.phoenix.events import (
    Completion,
    HeartbeatReplied,
    ProtocolErrorReceived,
    RawMessage,
)
from maxsdk.stats import Stats
from maxsdk.status import ConnectionState, Diagnostics

if TYPE_CHECKING:
    from maxsdk._runtime.driver import ProtocolDriver

__all__ = ["Engine"]

log = logging.getLogger("maxsdk.client")
frame_log = logging.getLogger("maxsdk.frames")

_ids = itertools.count(1)
_CONTROL_EVENTS = frozenset({"phx_join", "phx_leave", "heartbeat"})
_monotonic = time.monotonic
#: The most messages the reader takes from the transport's buffer at a time.
_BATCH = 128

#: Seconds of ``close_timeout`` kept back from leaving channels for the teardown (the
#: close frame's bounded wait, the reader's join), so close() returns within its timeout.
_TEARDOWN_RESERVE = 0.4


class _Notice(NamedTuple):
    """A connection-level event for the dispatcher (never dropped)."""

    signal: Any
    kwargs: dict[str, Any]


class _Callback(NamedTuple):
    fn: Callable[[Any], None]
    arg: Any


class Engine:
    """Runs one client: threads, connection loop, and calls into the protocol core.

    Args:
        config: validated client settings.
        owner: the public client (the sender of every signal).
        transport_factory: opens a transport (tests and the long-poll
            transport plug in here).

    """

    def __init__(
        self,
        config: ClientConfig,
        owner: Any,
        *,
        driver_factory: Callable[[ClientConfig, Callable[[Any], None]], ProtocolDriver] | None = None,
        transport_factory: Callable[[str, TransportOptions, str], Transport] | None = None,
    ) -> None:
        self.config = config
        self.owner = owner
        self.id = next(_ids)
        self.name = config.name or f"maxsdk-{self.id}"
        self.redacted_url = redact_url(config.url)
        self._open_transport = transport_factory or TransportSelector(
            config.transport,
            fallback_after=config.longpoll_fallback_after,
            on_fallback=lambda **kwargs: self.notify(signals.transport_fallback, **kwargs),
        )
        #: The kind of the transport in use (``"websocket"``, ``"longpoll"``), once connected.
        self.transport_kind: str | None = None
        #: Where the last connection went (after any followed redirects), redacted.
        self.connected_url: str | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        # Health of the current connection (see _connection_was_healthy); reader thread only.
        self._opened_at = 0.0
        self._proved_healthy = False
        self._health_count_at_open = 0
        self._state_cond = threading.Condition(threading.Lock())
        self._state = ConnectionState.CLOSED
        self._transport: Transport | None = None
        #: The connection was dropped by us (heartbeat timeout, fail back): reconnect whatever its close code.
        self._dropped_by_us = False
        self._stop = threading.Event()
        self._loop_active = False
        self._helpers_running = False
        self._closing = False
        #: True once the session ended (closed, or gave up reconnecting) until the next start.
        self.ended = False
        self._fatal: BaseException | None = None
        self._last_error: BaseException | None = None
        self._ever_connected = False
        self._connected_since_start = False
        self._reader_thread: threading.Thread | None = None
        self._writer_thread: threading.Thread | None = None
        #: The connection attempt in progress (``close()`` aborts it).
        self._attempt: ConnectAttempt | None = None
        #: The read side of the connection, lent to waiting callers (see read_baton).
        self._baton = ReadBaton()
        self._lent_transport: Transport | None = None
        #: Callers blocked in wait_connected() (the first connection is lent to them).
        self._connect_waiters = 0
        #: The thread of the last blocked wait whose reply the reader completed.
        self._last_waiting_thread = 0
        #: The timer's entry and the pool's first worker are started by the reader once the
        #: caller of connect() has its join reply (see _start_deferred_helpers).
        self._helpers_deferred = False
        self._reserved_worker: Any = None
        self._internal_idents: frozenset[int] = frozenset()
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0
        self.reconnects = 0
        self.connect_failures = 0
        self.metrics = Metrics()
        self.failure_policy = FailurePolicy(
            fatal_statuses=config.fatal_statuses,
            reconnect_on_normal_close=config.reconnect_on_normal_close,
            reconnect_on_going_away=config.reconnect_on_going_away,
        )
        #: A human-readable explanation of the current state.
        self.status_reason = "not started"
        self._state_since = _monotonic()
        self._last_stats = (self._state_since, 0, 0, 0, 0, 0)
        self._timer: Timer | None = None
        #: Endpoint failover (``None`` with a single endpoint).
        self.endpoints: EndpointChooser | None = EndpointChooser(config, self) if config.failover else None
        if driver_factory is None:
            from maxsdk._runtime.phoenix_driver import PhoenixDriver

            self.driver: ProtocolDriver = PhoenixDriver(config, self._submit)
        else:
            self.driver = driver_factory(config, self._submit)
        event_handler = getattr(self.driver, "event_handler", None)
        self._dispatcher = DispatchGroup(
            self._dispatch if event_handler is None else event_handler(self, self._dispatch),
            self._report_drops,
            maxsize=config.dispatch_queue_size,
            overflow=config.overflow,  # type: ignore[arg-type]
            total_size=config.dispatch_total_size,
            droppable=self.driver.droppable,
            lane_of=self.driver.lane_of,
            name=self.name,
        )
        # Typed loosely: each protocol's session adds its own operations to the contract.
        self._session: Any = self.driver.session
        emit_to = getattr(self._session, "emit_to", None)
        if emit_to is not None:
            emit_to(self._dispatcher.submit)  # what _submit does, without its call per event
        if not tls_verifies(config):
            log.warning("%s: TLS certificate verification is DISABLED for %s", self.name, self.redacted_url)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._state

    def _submit(self, item: Any) -> None:
        self._dispatcher.submit(item)

    def dispatch_lane(
        self, topic: str, *, queue_size: int | None, overflow: OverflowPolicy | None, dedicated_thread: bool
    ) -> Lane:
        """A channel's own ordered lane of events (see :mod:`maxsdk._runtime.dispatcher`)."""
        return self._dispatcher.lane(topic, maxsize=queue_size, overflow=overflow, dedicated=dedicated_thread)

    def start(self) -> None:
        """Start the helper threads (once) and the connection loop (if not active)."""
        with self._state_cond:
            if self._closing:
                raise ClientClosedError("the client is closing")
            if self._loop_active:
                return
            start_helpers = not self._helpers_running
            if start_helpers:
                self._make_helpers()
                self._helpers_running = True
                self._dispatcher.attach()  # holds the process-wide pool until close() joins it
            self._loop_active = True
            self.ended = False
            self._stop.clear()
            self._fatal = None
            self._connected_since_start = False
            old, self._state = self._state, ConnectionState.CONNECTING
            # Queued before the reader can report "connected", so signals arrive in order.
            self.notify(
                signals.state_changed,
                old=old,
                new=ConnectionState.CONNECTING,
                reason=f"connecting to {self.redacted_url}",
            )
            reader = threading.Thread(target=self._connection_loop, name=f"{self.name}-reader", daemon=True)
            self._reader_thread = reader
            if start_helpers:
                # Starting a thread waits for it to run: the reader starts the timer's entry
                # and the pool's first worker when no caller waits on it any more.
                self._helpers_deferred = True
                self._dispatcher.start()
            start_thread(reader)
            self._internal_idents = frozenset(() if reader.ident is None else (reader.ident,))

    def _start_deferred_helpers(self) -> None:
        """Join the shared timer's schedule and start the pool's first worker (once per start).

        Called by the reader: once the caller of ``connect()`` read its join
        reply (or at once when nobody waits, or before a retry), so that no
        caller waits for a thread to start; the timer then acts on every
        deadline set meanwhile (``_first_deadline``).
        """
        with self._lock:
            if not self._helpers_deferred:
                return
            self._helpers_deferred = False
            reserved, self._reserved_worker = self._reserved_worker, None
        timer = self._timer
        if timer is not None:
            # Due at the session's first deadline, if any: a tick now would only find nothing to do.
            timer.start(None)
            timer.poke_if_earlier(self._first_deadline())
        if reserved is not None:
            self._dispatcher.start_reserved(reserved)
        else:
            self._dispatcher.prestart()

    def _start_reserved_worker(self) -> None:
        """Start the pool worker the reader reserved, if it did not yet (events wait for it)."""
        with self._lock:
            reserved, self._reserved_worker = self._reserved_worker, None
        self._dispatcher.start_reserved(reserved)

    def _first_deadline(self) -> float | None:
        """The session's earliest deadline (the failback check counts as due now)."""
        if self.endpoints is not None:
            return -math.inf
        with self._lock:
            next_deadline: float | None = self._session.next_deadline()
        return next_deadline

    def _make_helpers(self) -> None:
        self._timer = Timer(self._tick, name=f"{self.name}-timer")

    def wait_connected(self, timeout: float) -> None:
        """Block until connected; raise on a fatal failure or after ``timeout``.

        On timeout the connection loop is stopped, so nothing keeps retrying
        behind the caller's back.
        """
        self.check_blocking_allowed()
        deadline = _monotonic() + timeout
        with self._state_cond:
            self._connect_waiters += 1
            try:
                self._wait_for_connection(deadline)
            finally:
                self._connect_waiters -= 1
            if self._state is ConnectionState.CONNECTED:
                return
            last = self._last_error
        self.disconnect()
        message = f"could not connect to {self.redacted_url} within {timeout:g} s"
        if last is not None:
            message += f" (last error: {last})"
        raise ConnectTimeoutError(message) from last

    def _wait_for_connection(self, deadline: float) -> None:
        """Wait on ``_state_cond`` (held) until connected or ``deadline``; raise if it cannot be."""
        while self._state is not ConnectionState.CONNECTED:
            if self._fatal is not None:
                raise self._fatal
            if not self._loop_active:
                if self._closing or not self._helpers_running:
                    raise ClientClosedError("the client was closed while connecting")
                raise ClientClosedError("the client stopped connecting") from self._last_error
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return
            self._state_cond.wait(wait_slice(remaining))

    def disconnect(self, timeout: float | None = None) -> None:
        """Close the connection and stop reconnecting; channels stay registered.

        A later :meth:`start` reconnects and rejoins them (reference checklist 31).
        """
        timeout = self.config.close_timeout if timeout is None else timeout
        self._stop_loop(_monotonic() + timeout)
        with self._state_cond:
            stopped = not self._loop_active and self._state is not ConnectionState.CLOSED
        if stopped:
            self._set_state(ConnectionState.DISCONNECTED, "disconnected by the client")

    def close(self, timeout: float | None = None) -> None:
        """Leave channels, close the connection, stop and join every thread."""
        timeout = self.config.close_timeout if timeout is None else timeout
        deadline = _monotonic() + timeout
        with self._state_cond:
            if self._closing:
                return
            self._closing = True
            connected = self._state is ConnectionState.CONNECTED
        try:
            if self._helpers_running or self._loop_active:
                self._set_state(ConnectionState.CLOSING, "closing")
            if connected:
                # Leaving gracefully may take what is left once the teardown's share is kept
                # back: against a peer that reads nothing, the close frame's wait and the
                # reader's join still fit in ``timeout``.
                graceful = deadline - min(_TEARDOWN_RESERVE, timeout / 3)
                try:
                    self.driver.before_close(self, graceful)
                except Exception:
                    log.exception("%s: error while closing gracefully", self.name)
            self._stop_loop(deadline)
            self._end_session(ConnectionState.CLOSED, "closed by the client")
            self._join_threads(deadline)
        finally:
            with self._state_cond:
                self._closing = False

    def _stop_loop(self, deadline: float) -> None:
        """Stop the connection loop: close the socket cleanly, then join the reader."""
        self._stop.set()
        attempt = self._attempt
        if attempt is not None:
            attempt.abort()  # a slow upgrade ends now instead of connecting after close()
        transport = self._transport  # not under _send_lock: a stuck writer may hold it
        if transport is not None:
            transport.close(1000, "client closing")
        reader = self._reader_thread
        if reader is not None and reader is not threading.current_thread() and reader.is_alive():
            # The server's answer to the close frame ends the reader; without it, abort a
            # little before the deadline so the reader is gone by then.
            reader.join(max(0.05, min(1.0, deadline - _monotonic() - 0.05)))
            if reader.is_alive():
                transport = self._transport
                if transport is not None:
                    transport.abort()
                reader.join(max(0.5, deadline - _monotonic()))
        with self._state_cond:
            self._loop_active = False
            self._state_cond.notify_all()

    def _end_session(self, state: ConnectionState, reason: str) -> None:
        """Fail every wait, close every channel, move to ``state`` and stop the helpers."""
        self.ended = True
        with self._lock:
            self._session.shutdown()
            completions, _ = self._session.take_output()
        self._complete(completions)
        self._set_state(state, reason)
        with self._state_cond:
            self._helpers_running = False
            self._state_cond.notify_all()
        self._helpers_deferred = False
        self._start_reserved_worker()  # what waits in the lanes is handled before close() returns
        if self._timer is not None:
            self._timer.stop()
        self._dispatcher.stop()

    def _join_threads(self, deadline: float) -> None:
        current = threading.current_thread()
        # Every handler queued before close runs (on the shared pool) before close returns.
        self._dispatcher.join(max(0.5, deadline - _monotonic()))
        if self._timer is not None and not self._timer.join(max(0.5, deadline - _monotonic())):
            log.warning("%s: a timer tick was still running after close", self.name)
        for thread in self._all_threads():
            if thread is not current and thread.is_alive():
                thread.join(max(0.5, deadline - _monotonic()))
        alive = [t.name for t in self._all_threads() if t.is_alive() and t is not current]
        if alive:
            log.warning("%s: threads still running after close: %s", self.name, ", ".join(alive))

    def _all_threads(self) -> list[threading.Thread]:
        threads = [self._reader_thread] if self._reader_thread is not None else []
        if self._writer_thread is not None:
            threads.append(self._writer_thread)
        threads.extend(self._dispatcher.threads)
        if self.endpoints is not None:
            threads.extend(self.endpoints.threads)
        return threads

    def _set_state(self, new: ConnectionState, reason: str) -> ConnectionState:
        with self._state_cond:
            old = self._state
            self._state = new
            self.status_reason = reason
            now = _monotonic()
            if old is not new:
                if old is ConnectionState.CONNECTED:
                    self.metrics.connected_seconds += now - self._state_since
                elif old in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
                    self.metrics.disconnected_seconds += now - self._state_since
                self._state_since = now
            self._state_cond.notify_all()
        if old is not new:
            log.info("%s: %s -> %s (%s)", self.name, old, new, reason)
            self.notify(signals.state_changed, old=old, new=new, reason=reason)
        return old

    def notify(self, signal: Any, **kwargs: Any) -> None:
        """Queue a connection-level signal for the dispatcher, in order with channel events.

        A signal nobody listens to for this client is not queued (no dispatcher
        wake-up for it).
        """
        if not signal.receivers or not signal.has_receivers_for(self.owner):
            return
        with self._lock:
            self._submit(_Notice(signal, kwargs))

    def check_blocking_allowed(self) -> None:
        """Raise :class:`WrongThreadError` on the reader or timer thread (blocking there deadlocks)."""
        ident = threading.get_ident()
        if ident in self._internal_idents or ident in TIMER_IDENTS:
            raise WrongThreadError("blocking maxsdk calls cannot be made from the client's reader or timer thread")

    def waits_in_handler(self) -> bool:
        """Whether the calling thread runs one of this client's handlers (see :meth:`blocking_wait`)."""
        return self._dispatcher.owns_current_thread()

    @contextlib.contextmanager
    def blocking_wait(self) -> Iterator[None]:
        """Wrap a blocking wait of a public method.

        A handler (on the dispatcher thread) waiting for a reply must not be
        starved by the ``block`` overflow policy holding the reader back.
        """
        dispatcher = self._dispatcher
        if not dispatcher.owns_current_thread():
            yield
            return
        dispatcher.enter_wait()
        try:
            yield
        finally:
            dispatcher.exit_wait()

    def call_soon(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Run ``fn(arg)`` on the dispatch pool, in order with connection-level events."""
        with self._lock:
            self._submit(_Callback(fn, arg))

    # -- calls into the core --------------------------------------------------------------

    def run(self, operation: Callable[[Any, float], Any]) -> Any:
        """Run ``operation(session, now)`` under the lock, then act on its output."""
        session = self._session
        with self._lock:
            result = operation(session, _monotonic())
            if session.completions or session.followups:
                completions, rejoins = session.take_output()
            else:
                completions = rejoins = None
            new_deadline = session.take_new_deadline()
        self._act(completions, rejoins)
        self._poke_timer(new_deadline)
        return result

    def _act(self, completions: Any, followups: Any) -> None:
        """After a core call, outside the lock: wake waiters, run followups, write frames."""
        if completions:
            self._complete(completions)
        if followups:
            self.driver.run_followups(self, followups)
        if self._session.outgoing:
            self._flush()

    def push(
        self, core: Any, event: str, payload: str | bytes, timeout: float, waiter: Any, *, buffer: bool = True
    ) -> str:
        """Push on a channel (the hot path of :meth:`Channel.push`); see ``PhoenixSession.push``."""
        session = self._session
        with self._lock:
            ref: str = session.push(core, event, payload, _monotonic(), timeout, waiter, buffer=buffer)
            new_deadline = session.take_new_deadline()
        if session.outgoing:
            self._flush()
        self._poke_timer(new_deadline)
        return ref

    def _poke_timer(self, deadline: float) -> None:
        """Wake the timer if a deadline earlier than the one it sleeps until was set."""
        timer = self._timer
        if timer is not None and deadline < timer.target:
            timer.poke_if_earlier(deadline)

    def _complete(self, completions: list[Completion]) -> None:
        now = _monotonic()
        observe = self.metrics.observe_reply
        for waiter, outcome in completions:
            if outcome.status == "ok":
                self._proved_healthy = True  # the server answers: this connection works
            if waiter is None:
                continue
            if outcome.event not in _CONTROL_EVENTS:
                observe(outcome.status, now - waiter.created, waiter.topic)
            for callback in waiter._complete(outcome):
                self.call_soon(callback, waiter)

    def _flush(self) -> None:
        """Write queued frames in order; leave them to the current writer if there is one."""
        outgoing = self._session.outgoing
        lock = self._send_lock
        while outgoing:
            if not lock.acquire(blocking=False):
                return  # the writer holding the lock looks at the queue again after releasing it
            handed_off = False
            try:
                handed_off = self._write_queued(outgoing, _WRITE_SLICE)
            finally:
                if not handed_off:
                    lock.release()
            if handed_off:
                return  # the background writer owns the lock and the queue now

    def _write_queued(self, outgoing: Any, within: float | None) -> bool:
        """Write every queued frame (``_send_lock`` held).

        With ``within``, a frame the socket does not take in that time is
        handed, with the lock and the rest of the queue, to a background
        writer; returns ``True`` then.
        """
        debug = frame_log.isEnabledFor(logging.DEBUG)
        transport = self._transport
        send_many = getattr(transport, "send_many", None)
        if send_many is not None:
            self._flush_batches(transport, send_many, outgoing, debug)
            return False
        write = getattr(transport, "write", None)
        while outgoing:
            if transport is None:
                outgoing.clear()
                break
            try:
                if write is None:
                    try:
                        frame = outgoing.popleft()
                    except IndexError:
                        break
                    if debug:
                        frame_log.debug("%s >> %s", self.name, self._describe(frame))
                    self.frames_out += 1
                    self.bytes_out += transport.send(frame)
                    continue
                # Every frame queued now goes out in one write (several callers pushing at
                # once cost one system call), up to _COALESCE bytes.
                encode = transport.encode  # type: ignore[attr-defined]
                chunks: list[bytes] = []
                size = 0
                while size < _COALESCE:
                    try:
                        frame = outgoing.popleft()
                    except IndexError:
                        break
                    if debug:
                        frame_log.debug("%s >> %s", self.name, self._describe(frame))
                    chunk = encode(frame)
                    chunks.append(chunk)
                    size += len(chunk)
                if not chunks:
                    break
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                # Counted before the write: the reply can be processed (and observed)
                # before this thread resumes after send().
                self.frames_out += len(chunks)
                self.bytes_out += size
                sent = write(data, within)
                if sent < size:
                    self._hand_off(transport, memoryview(data)[sent:])
                    return True
            except ConnectionLostError as exc:
                log.info("%s: send failed (%s); dropping the connection", self.name, exc)
                transport.abort()
                outgoing.clear()
                return False
        return False

    def _hand_off(self, transport: Any, rest: memoryview) -> None:
        """Finish a partial frame (and the queue) on a writer thread of its own.

        Callers, the timer and the reader never wait on a slow socket longer
        than ``_WRITE_SLICE``; the writer exists only while the socket is backed up.
        """
        writer = threading.Thread(
            target=self._finish_writes, args=(transport, rest), name=f"{self.name}-writer", daemon=True
        )
        self._writer_thread = writer
        start_thread(writer)

    def _finish_writes(self, transport: Any, rest: memoryview) -> None:
        """The background writer: ``_send_lock`` is held on its behalf."""
        try:
            try:
                transport.write(rest)
                if transport is self._transport:
                    self._write_queued(self._session.outgoing, None)
            except ConnectionLostError as exc:
                log.warning("%s: %s; dropping the connection", self.name, exc)
                transport.abort()
                self._session.outgoing.clear()
        except Exception:
            log.exception("%s: internal error in the writer thread", self.name)
        finally:
            self._send_lock.release()
        self._flush()  # frames queued by threads that found the lock taken

    def _flush_batches(self, transport: Any, send_many: Callable[[list[Any]], int], outgoing: Any, debug: bool) -> None:
        """Write every queued frame in one call of a batching transport (long-poll: one POST).

        Frames queued while the previous batch was in flight go out together.
        """
        while outgoing:
            frames = [outgoing.popleft() for _ in range(len(outgoing))]
            if debug:
                for frame in frames:
                    frame_log.debug("%s >> %s", self.name, self._describe(frame))
            self.frames_out += len(frames)
            try:
                self.bytes_out += send_many(frames)
            except ConnectionLostError as exc:
                log.info("%s: send failed (%s); dropping the connection", self.name, exc)
                transport.abort()
                outgoing.clear()
                return

    # -- timer ---------------------------------------------------------------------------------

    def _describe(self, frame: str | bytes) -> str:
        """A log-safe rendering of an outgoing frame (credentials never shown)."""
        if frame in getattr(self._session, "secret_frames", ()):
            return "<authentication message redacted>"
        return _excerpt(frame)

    def _tick(self, now: float) -> float | None:
        try:
            session = self._session
            with self._lock:
                session.heartbeat_timeout_suspended = self._dispatcher.reader_blocked
                session.on_deadline(now)
                completions, rejoins = session.take_output()
                close_request = session.close_request
                session.take_new_deadline()  # next_deadline() below covers it
                following: float | None = session.next_deadline()
            self._act(completions, rejoins)
            if close_request is not None:
                self._drop_connection(close_request)
            with self._lock:
                if rejoins:
                    following = session.next_deadline()
            if self.endpoints is not None:
                failback = self.endpoints.tick(now)
                if failback is not None and (following is None or failback < following):
                    following = failback
            return following
        except Exception:
            log.exception("%s: internal error in the timer thread", self.name)
            return now + 1.0

    def drop_connection(self, reason: str) -> None:
        """Close the current connection (the loop reconnects as after any drop)."""
        self._drop_connection(reason)

    def _drop_connection(self, reason: str) -> None:
        transport = self._transport  # not under _send_lock: a stuck writer may hold it
        if transport is not None:
            log.warning("%s: %s; dropping the connection to %s", self.name, reason.replace("_", " "), self.redacted_url)
            # Long-poll reports our own close as a normal close (1000): that must not stop the loop.
            self._dropped_by_us = True
            transport.close(1000, reason.replace("_", " "))
            transport.abort()

    # -- the connection loop (reader thread) -------------------------------------------------------

    def _connection_loop(self) -> None:
        outcome = "stopped"
        try:
            outcome = self._connection_loop_inner()
        except Exception as exc:
            log.exception("%s: internal error in the reader thread", self.name)
            with self._state_cond:
                self._fatal = self._fatal or exc
            outcome = "gave_up"
        finally:
            with self._send_lock:
                self._transport = None
            with self._state_cond:
                self._loop_active = False
                self._state_cond.notify_all()
        if self._stop.is_set():
            return  # disconnect() or close() is in charge of what follows
        if outcome == "gave_up":
            self._end_session(ConnectionState.CLOSED, "gave up connecting")
        else:
            self._set_state(ConnectionState.DISCONNECTED, "server closed the connection normally")

    def _connection_loop_inner(self) -> str:
        """Connect, serve, reconnect; return ``"gave_up"`` or ``"stopped"``."""
        attempt = 0
        renewals = 0
        backoff = self.config.reconnect
        policy = self.failure_policy
        while not self._stop.is_set():
            try:
                transport = self._open()
                if self._stop.is_set():  # close() came while the upgrade was finishing
                    transport.release()
                    return "stopped"
            except MaxsdkError as exc:
                self._last_error = exc
                self.connect_failures += 1
                decision = classify_error(exc, policy, renewals)
                if decision is Decision.RENEW and not self._renew_credentials(exc):
                    decision = classify_error(exc, policy, policy.renew_attempts)
                if decision is Decision.RENEW:
                    renewals += 1
                    log.info("%s: %s; renewing credentials and retrying", self.name, exc)
                    continue
                if decision is Decision.FATAL:
                    self._give_up(exc, attempt, f"connection refused for good: {exc}")
                    return "gave_up"
                if self.endpoints is not None and self.endpoints.failed():
                    log.info("%s: %s; trying the next endpoint", self.name, exc)
                    continue  # every endpoint once before the reconnect schedule waits
                attempt += 1
                delay = backoff.delay(attempt, self.config.rng or _default_rng)
                if delay is None:
                    self._give_up(exc, attempt - 1, f"gave up after {attempt - 1} reconnect attempts: {exc}")
                    return "gave_up"
                self._wait_before_retry(attempt, delay, exc, f"after {exc}")
                continue
            renewals = 0
            code, reason = self._serve(transport)
            if self._stop.is_set():
                return "stopped"
            dropped_by_us, self._dropped_by_us = self._dropped_by_us, False
            if not dropped_by_us and classify_close(code, reason, policy) is Decision.STOP:
                log.info("%s: server closed the connection with %s; not reconnecting", self.name, code)
                return "stopped"
            # The schedule starts over only after a connection proved healthy: a server that
            # accepts and drops every connection sees the same curve as one that refuses.
            attempt = 1 if self._connection_was_healthy() else attempt + 1
            delay = backoff.delay(attempt, self.config.rng or _default_rng)
            if delay is None:
                self._give_up(
                    None,
                    attempt - 1,
                    "reconnect disabled" if attempt == 1 else f"gave up after {attempt - 1} reconnect attempts",
                )
                return "gave_up"
            self._wait_before_retry(attempt, delay, None, f"after close {code}" + (f" ({reason})" if reason else ""))
        return "stopped"

    def _connection_was_healthy(self) -> bool:
        """Whether the connection that just ended proved itself.

        It did if a heartbeat (or ping) was answered, a request (a join, a push)
        got an ``ok`` reply, or it stayed up for :data:`_HEALTHY_UPTIME` seconds.
        """
        answered = self._health_count() > self._health_count_at_open
        uptime = _monotonic() - self._opened_at
        return self._proved_healthy or answered or uptime >= _HEALTHY_UPTIME

    def _health_count(self) -> int:
        """Answered heartbeats/pings plus accepted (re)joins so far, from the session's counters."""
        counters = self._session.counters
        return int(counters.get("heartbeat_replies", 0)) + int(counters.get("joins_ok", 0))

    def _wait_before_retry(self, attempt: int, delay: float, error: BaseException | None, why: str) -> None:
        self._start_deferred_helpers()  # push timeouts must fire while no connection opens
        reason = f"reconnecting in {delay:.2f} s {why} (attempt {attempt})"
        self._set_state(ConnectionState.RECONNECTING, reason)
        self.notify(signals.reconnecting, attempt=attempt, delay=delay, error=error, reason=reason)
        if not self._stop.wait(delay):
            self._set_state(ConnectionState.CONNECTING, f"attempt {attempt}")

    def _give_up(self, error: BaseException | None, attempts: int, reason: str) -> None:
        with self._state_cond:
            if error is not None and not self._connected_since_start:
                self._fatal = error
        log.error("%s: %s", self.name, reason)
        self.notify(signals.reconnect_failed, error=error, attempts=attempts, reason=reason)

    def _renew_credentials(self, error: BaseException) -> bool:
        """Prepare a retry with fresh credentials; ``False`` if nothing can change them."""
        config = self.config
        renewed = False
        for source in (config.params, config.auth_token, config.headers):
            invalidate = getattr(source, "invalidate", None) or getattr(
                getattr(source, "__self__", None), "invalidate", None
            )
            if callable(invalidate):
                call_user_code(invalidate)  # a token provider: fetch a new token on the next call
                renewed = True
            elif callable(source):
                renewed = True  # re-evaluated on every attempt anyway
        return renewed

    def _open(self) -> Transport:
        """Build the URL and options (evaluating params/token callables) and connect."""
        config = self.config
        if self.endpoints is not None:
            self.driver.config = self.endpoints.next_config()
            self.redacted_url = redact_url(self.endpoints.url)
        try:
            params = call_user_code(config.params) if callable(config.params) else config.params
            headers = call_user_code(config.headers) if callable(config.headers) else config.headers
            token = call_user_code(config.auth_token) if callable(config.auth_token) else config.auth_token
            url = self.driver.connect_url(params)
        except MaxsdkError:
            raise
        except Exception as exc:
            raise ConnectFailedError(f"cannot build the connection parameters: {exc!r}", url=self.redacted_url) from exc
        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigurationError("headers callable must return a mapping")
        subprotocols = self.driver.subprotocols(token)
        for name, value in (headers or {}).items():
            check_header_value(str(name), str(value))  # callables are checked on every attempt
        attempt = ConnectAttempt()
        self._attempt = attempt
        if self._stop.is_set():
            attempt.abort()
        options = TransportOptions(
            headers=tuple((str(k), str(v)) for k, v in (headers or {}).items()),
            subprotocols=subprotocols,
            origin=config.origin,
            connect_timeout=config.connect_timeout,
            ssl_context=make_ssl_context(config) if url.startswith("wss:") else None,
            max_message_size=config.max_message_size,
            proxy=_proxy_tuple(config.proxy),
            proxy_type=_proxy_type(config.proxy),
            compression=config.compression,
            attempt=attempt,
            follow_redirects=config.follow_redirects,
            pins=tls_pins(config),
            # A write that makes no progress for the heartbeat timeout means a dead connection.
            write_timeout=config.heartbeat_timeout or config.heartbeat_interval or 30.0,
        )
        redacted = redact_url(url)
        log.debug("%s: connecting to %s", self.name, redacted)
        return self._open_transport(url, options, redacted)

    def _serve(self, transport: Transport) -> tuple[int | None, str]:
        """Run one open connection to its end; return ``(close code, reason)``."""
        now = _monotonic()
        self._opened_at = now
        self._proved_healthy = False
        self._health_count_at_open = self._health_count()
        with self._send_lock:
            self._transport = transport
        reconnect = self._ever_connected
        if reconnect:
            self.reconnects += 1
        self._ever_connected = True
        self._connected_since_start = True
        if self.endpoints is not None:
            self.endpoints.succeeded()
        self.transport_kind = getattr(transport, "kind", "websocket")
        url = self.connected_url = getattr(transport, "redacted_url", None) or self.redacted_url
        with self._lock:
            self._session.connection_opened(now, heartbeats=getattr(transport, "heartbeats", True))
            if signals.connected.receivers and signals.connected.has_receivers_for(self.owner):
                self._submit(_Notice(signals.connected, {"url": url, "reconnect": reconnect}))
            completions, rejoins = self._session.take_output()
            new_deadline = self._session.take_new_deadline()
        self._set_state(ConnectionState.CONNECTED, f"connected to {url}")
        log.info("%s: connected to %s", self.name, url)
        self._complete(completions)
        if rejoins:
            self.driver.run_followups(self, rejoins)
        self._flush()
        if self.endpoints is not None and self._timer is not None:
            self._timer.poke()  # the failback check runs in a tick
        else:
            self._poke_timer(new_deadline)  # the heartbeat (a tick now would find nothing due)
        try:
            code, reason = self._read_loop(transport)
        finally:
            transport.abort()  # first: it fails a write stuck on this connection, which frees _send_lock
            with self._send_lock:
                self._transport = None
            transport.release()  # here, on the reader: nobody reads or writes this socket any more
        with self._lock:
            closing_reason = self._session.close_request or reason
            self._session.connection_closed(_monotonic(), "connection_closed")
            completions, _ = self._session.take_output()
            will_reconnect = (
                not self._stop.is_set() and classify_close(code, closing_reason, self.failure_policy) is Decision.RETRY
            )
            self._submit(
                _Notice(
                    signals.disconnected, {"code": code, "reason": closing_reason, "will_reconnect": will_reconnect}
                )
            )
        self._complete(completions)
        log.info("%s: disconnected (code %s, %s)", self.name, code, closing_reason or "no reason")
        return code, closing_reason

    def _read_loop(self, transport: Transport) -> tuple[int | None, str]:
        """Read and route frames until the connection ends.

        A transport with ``recv_many`` hands over every complete message its
        buffer holds (one read from the socket often brings hundreds): they
        are decoded together, routed in order under one hold of the lock, and
        the deadlines, completions and writes they cause are acted on once per
        batch. A batch never holds more than the room left in the dispatch
        total, so the ``block`` policy's bound on queued events is unchanged.

        A transport that can say when it is readable may be lent to a caller
        waiting for its reply (:mod:`maxsdk._runtime.read_baton`); the reader
        then waits for its turn, and returns what the caller saw end the
        connection.
        """
        recv = transport.recv
        recv_many: Callable[[int], list[tuple[int, Any]]] | None = getattr(transport, "recv_many", None)
        dispatcher = self._dispatcher
        total_size = dispatcher.total_size
        route = self._route_batch
        baton = self._baton
        lend_from = transport if hasattr(transport, "wait_readable") else None
        if lend_from is not None:
            self._lent_transport = transport
            if self._connect_waiters:
                # Events the caller routes while it reads wait for a worker the reader starts
                # once the caller has its reply (starting one on the caller would delay it).
                reserved = dispatcher.reserve_worker() if self._helpers_deferred else None
                with self._lock:  # atomic with pushes: a push after this finds the connection lent
                    self._reserved_worker = reserved
                    if self._session.pending_count == 0:
                        baton.lend()  # the caller of connect() reads its join reply itself
        if not baton.state:
            self._start_deferred_helpers()
        try:
            while True:
                if baton.state:  # not READER: lent to a waiting caller
                    deferred = self._helpers_deferred
                    end = baton.wait_turn(patient=not deferred)
                    if deferred:
                        # Within IDLE of the lend even when the caller's reply is slow: the
                        # timer must be there for the deadlines set meanwhile (a join's timeout).
                        self._start_deferred_helpers()
                    if end is NOT_YET:
                        continue
                    if end is not None:
                        if isinstance(end, BaseException):
                            raise end
                        return end  # type: ignore[no-any-return]
                try:
                    if recv_many is None:
                        batch = [recv()]
                    else:
                        room = total_size - (dispatcher.submitted - dispatcher.handled)
                        batch = recv_many(_BATCH if room >= _BATCH else room if room > 1 else 1)
                except RemoteProtocolError as exc:  # too large, or text that is not UTF-8: the frame is skipped
                    log.warning("%s: %s; frame dropped", self.name, exc)
                    _drop_tracebacks(exc)  # it is kept and signalled: it must not hold the reader's frames
                    with self._lock:
                        self._session.protocol_error(exc)
                    continue
                except ConnectionLostError as exc:
                    return exc.code, exc.reason or str(exc)
                end = route(batch, lend_from)
                batch = None  # type: ignore[assignment]  # not kept alive while the connection is lent
                if end is not None:
                    return end
                if dispatcher.submitted - dispatcher.handled >= total_size:
                    dispatcher.wait_for_room(self._stop)
        finally:
            self._lent_transport = None
            baton.reset()
            if self._stop.is_set():
                self._start_reserved_worker()
            else:
                self._start_deferred_helpers()

    def _route_batch(self, batch: list[tuple[int, Any]], lend_from: Any = None) -> tuple[int | None, str] | None:
        """Decode and route one batch of messages; return ``(code, reason)`` for a close.

        Runs on whichever thread holds the connection's read side (the reader,
        or a caller it was lent to). With ``lend_from`` (the reader's
        transport), the connection is lent when a blocked caller got its
        reply, nothing else is in flight and nothing is left unread: decided
        under the lock, before the caller wakes, so its next push finds the
        connection lent.
        """
        kind, data = batch[0]
        if kind != TEXT and kind != BINARY:
            self.frames_in += 1
            code, reason = data
            return code, reason
        self.frames_in += len(batch)
        decode_text = self.driver.decode_text
        debug = frame_log.isEnabledFor(logging.DEBUG)
        messages: list[Any] = []
        errors: list[RemoteProtocolError] | None = None
        nbytes = 0
        for kind, data in batch:
            nbytes += len(data)
            if debug:
                frame_log.debug("%s << %s", self.name, _excerpt(data))
            try:
                messages.append(decode_text(data) if kind == TEXT else self.driver.decode_binary(data))
            except RemoteProtocolError as exc:
                # Kept (and signalled) without its traceback: that would hold this frame,
                # and with it the whole batch, alive in a cycle until the next GC.
                _drop_tracebacks(exc)
                messages.append(exc)  # reported in its place, in order
                errors = [exc] if errors is None else [*errors, exc]
        self.bytes_in += nbytes
        now = _monotonic()
        session = self._session
        receive = session.receive
        raw_receivers = signals.message_received.receivers
        with self._lock:
            session.emit_raw = bool(raw_receivers) and signals.message_received.has_receivers_for(self.owner)
            if errors is None:
                for message in messages:
                    receive(message, now)
            else:
                for message in messages:
                    if isinstance(message, RemoteProtocolError):
                        session.protocol_error(message)
                    else:
                        receive(message, now)
            if session.completions or session.followups:
                completions, rejoins = session.take_output()
            else:
                completions = rejoins = None
            new_deadline = session.take_new_deadline()
            if lend_from is not None and completions and session.pending_count == 0 and not lend_from.buffered():
                # A blocked caller got its reply and nothing else is in flight: it will
                # most likely wait again soon, so the connection is lent to it.
                # Only to a thread whose previous blocked wait was also the last one completed
                # (a caller pushing one request after another): callers taking turns gain
                # nothing from it, they would only pass the connection back and forth.
                for waiter, _ in completions:
                    ident = getattr(waiter, "reads_while_waiting", 0)
                    if ident:
                        if ident == self._last_waiting_thread:
                            self._baton.lend()
                        self._last_waiting_thread = ident
                        break
        if errors is not None:
            for error in errors:
                log.warning("%s: dropped a malformed frame: %s", self.name, error)
        timer = self._timer
        if timer is not None and new_deadline < timer.target:
            timer.poke_if_earlier(new_deadline)
        if completions:
            self._complete(completions)
        if rejoins:
            self.driver.run_followups(self, rejoins)
        if session.outgoing:
            self._flush()
        return None

    def read_while_waiting(self, done: Callable[[], bool], deadline: float) -> None:
        """Read and route the connection's frames on the calling thread while ``done()`` is false.

        Only when the reader lent the connection (see
        :mod:`maxsdk._runtime.read_baton`); returns at once otherwise, and
        when the wait's ``deadline`` (monotonic) passes, the dispatch total is
        reached, or the connection ends (which the reader then handles).
        """
        baton = self._baton
        if not baton.take():
            return
        to_reader = False
        end: Any = None
        reading = False
        try:
            transport = self._lent_transport
            if transport is None:
                to_reader = True
                return
            recv_many = transport.recv_many  # type: ignore[attr-defined]
            dispatcher = self._dispatcher
            total_size = dispatcher.total_size
            stop = self._stop
            batches = 0
            while not done():
                if batches >= _LEAD_BATCHES:
                    # Traffic that is not this caller's reply (a flood of events): the reader
                    # is better at that; this caller waits for its reply to be handed over.
                    to_reader = True
                    return
                room = total_size - (dispatcher.submitted - dispatcher.handled)
                if room < 1 or stop.is_set():
                    to_reader = True
                    return
                left = deadline - _monotonic()
                if left <= 0:
                    return
                reading = True
                # A frame that stops arriving halfway must not hold this wait past its end.
                transport.read_deadline = _monotonic() + (left if left < _LEAD_SLICE else _LEAD_SLICE)  # type: ignore[attr-defined]
                try:
                    batch = recv_many(_BATCH if room >= _BATCH else room)
                except ReadPausedError:
                    reading = False
                    continue
                except RemoteProtocolError as exc:
                    reading = False
                    log.warning("%s: %s; frame dropped", self.name, exc)
                    _drop_tracebacks(exc)  # it is kept and signalled: it must not hold the reader's frames
                    with self._lock:
                        self._session.protocol_error(exc)
                    continue
                except ConnectionLostError as exc:
                    reading = False
                    end = (exc.code, exc.reason or str(exc))
                    return
                reading = False
                batches += 1
                end = self._route_batch(batch)
                if end is not None:
                    return
        except Exception as exc:
            log.exception("%s: internal error while reading on a waiting caller's thread", self.name)
            end = exc
        except BaseException:
            if reading:
                # Interrupted inside a read (KeyboardInterrupt): what it had taken from the
                # socket may be lost, so this connection cannot be trusted any more.
                transport = self._lent_transport
                if transport is not None:
                    transport.abort()
            to_reader = True
            raise
        finally:
            lent = self._lent_transport
            if lent is not None:
                lent.read_deadline = None  # type: ignore[attr-defined]
            with self._lock:  # atomic with pushes: a push after this finds the connection lent
                busy = self._session.pending_count > 0 or self._helpers_deferred
                baton.hand_back(to_reader=to_reader or busy, end=end)

    def recall_connection(self) -> None:
        """Give a lent connection back to the reader now (a wait that cannot read it itself)."""
        self._baton.recall()

    # -- dispatcher ----------------------------------------------------------------------------------

    def _dispatch(self, item: Any) -> None:
        """Run on a dispatch worker for every queued event (in order per lane)."""
        kind = type(item)
        if self.driver.dispatch(self, item):
            pass
        elif kind is _Notice:
            self.send_signal(item.signal, **item.kwargs)
        elif kind is RawMessage:
            self.send_signal(signals.message_received, message=item.message)
        elif kind is HeartbeatReplied:
            self.metrics.observe_heartbeat(item.rtt)
            if self.endpoints is not None:
                self.endpoints.observe_rtt(item.rtt)
            self.send_signal(signals.heartbeat, rtt=item.rtt)
        elif kind is ProtocolErrorReceived:
            self.send_signal(signals.protocol_error, error=item.error)
        elif kind is _Callback:
            self.guarded(item.fn, (item.arg,), "done callback")

    def _report_drops(self, lane: Lane) -> None:
        """A lane dropped messages (its policy is not ``block``): log and signal it."""
        count, lane.dropped_unreported = lane.dropped_unreported, 0
        log.warning(
            "%s: dispatch queue of %s full: %d message(s) dropped (%s)",
            self.name,
            lane.name or "the connection",
            count,
            lane.overflow,
        )
        self.send_signal(signals.messages_dropped, count=count, total=self._dispatcher.dropped_total, topic=lane.name)

    def send_signal(self, signal: Any, **kwargs: Any) -> None:
        """Call each receiver of ``signal`` for this client, isolating failures."""
        if not signal.receivers:
            return
        for receiver in list(signal.receivers_for(self.owner)):
            self.guarded(receiver, (self.owner,), signal.name, kwargs)

    def report_protocol_error(self, error: RemoteProtocolError) -> None:
        """Count and signal a peer's message that made no sense above the frame layer (e.g. presence)."""
        log.warning("%s: %s", self.name, error)
        with self._lock:
            self._session.protocol_error(error)

    def guarded(
        self, fn: Callable[..., Any], args: tuple[Any, ...], context: str, kwargs: dict[str, Any] | None = None
    ) -> None:
        """Call user code; report (never propagate) its exceptions."""
        try:
            fn(*args, **(kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - user code: logged and signalled
            self.handler_failed(fn, exc, context)

    def handler_failed(self, fn: Callable[..., Any], error: Exception, context: str) -> None:
        """Report user code that raised (call it in the ``except`` block: the traceback is logged)."""
        log.exception("%s: handler %r failed while handling %s", self.name, fn, context)
        if context != "handler_failed":
            self.send_signal(signals.handler_failed, handler=fn, error=error, context=context)

    # -- diagnostics -------------------------------------------------------------------------------------

    def diagnostics(self) -> Diagnostics:
        """A snapshot of the connection (see :class:`Diagnostics`)."""
        with self._lock:
            session = self._session
            channels = self.driver.snapshot()
            rtt = session.last_heartbeat_rtt
            counters = dict(session.counters)
            pending = session.pending_count
        # How often the reader lent the connection, and how often a waiting caller read it.
        counters["connection_lent"] = self._baton.lends
        counters["read_by_caller"] = self._baton.takes
        dispatcher = self._dispatcher
        return Diagnostics(
            url=self.redacted_url,
            state=self._state,
            channels=channels,
            last_heartbeat_rtt=rtt,
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            protocol_errors=counters["protocol_errors"],
            reconnects=self.reconnects,
            connect_failures=self.connect_failures,
            pending_pushes=pending,
            dispatch_queue_depth=dispatcher.depth,
            messages_dropped=dispatcher.dropped_total,
            stale_dropped=counters["stale_dropped"],
            reader_throttled=dispatcher.reader_blocked,
            last_error=str(self._last_error) if self._last_error else None,
            transport=self.transport_kind,
            connected_url=self.connected_url,
            counters=counters,
        )

    def stats(self, outbox_depth: int | None = None, *, advance_window: bool = True) -> Stats:
        """Counters, gauges and rates (see :class:`~maxsdk.stats.Stats`).

        ``advance_window=False`` reads without starting a new rate window
        (for exporters that must not disturb the user's ``stats()`` calls).
        """
        metrics = self.metrics
        now = _monotonic()
        with self._lock:
            counters = dict(self._session.counters)
            pending = self._session.pending_count
            since, frames_in, frames_out, bytes_in, bytes_out, errors_before = self._last_stats
            errors = metrics.errors + counters.get("protocol_errors", 0)
            if advance_window:
                self._last_stats = (now, self.frames_in, self.frames_out, self.bytes_in, self.bytes_out, errors)
        window = max(now - since, 1e-9)
        latency = metrics.push_latency
        connected, disconnected = metrics.connected_seconds, metrics.disconnected_seconds
        if self._state is ConnectionState.CONNECTED:
            connected += now - self._state_since
        elif self._state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            disconnected += now - self._state_since
        dispatcher = self._dispatcher
        return Stats(
            state=str(self._state),
            status=self.status_reason,
            window=window,
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            messages_in_per_s=(self.frames_in - frames_in) / window,
            messages_out_per_s=(self.frames_out - frames_out) / window,
            bytes_in_per_s=(self.bytes_in - bytes_in) / window,
            bytes_out_per_s=(self.bytes_out - bytes_out) / window,
            messages_by_event=dict(metrics.messages_by_event),
            replies_by_status=dict(metrics.replies_by_status),
            messages_by_topic=dict(metrics.messages_by_topic),
            replies_by_topic={topic: dict(by_status) for topic, by_status in list(metrics.replies_by_topic.items())},
            push_latency_p50=latency.percentile(0.5),
            push_latency_p95=latency.percentile(0.95),
            push_latency_p99=latency.percentile(0.99),
            push_latency_max=latency.max if latency.count else None,
            timeouts=metrics.replies_by_status.get("timeout", 0),
            errors=errors,
            error_rate=(errors - errors_before) / window,
            reconnects=self.reconnects,
            connect_failures=self.connect_failures,
            connected_seconds=connected,
            disconnected_seconds=disconnected,
            heartbeat_rtt=metrics.heartbeat_rtt_last,
            heartbeat_rtt_smoothed=metrics.heartbeat_rtt_smoothed,
            heartbeat_timeouts=counters.get("heartbeat_timeouts", 0),
            dispatch_queue_depth=dispatcher.depth,
            messages_dropped=dispatcher.dropped_total,
            pending_pushes=pending,
            outbox_depth=outbox_depth,
        )

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads this engine started (alive or not)."""
        return self._all_threads()


#: Seconds a caller, the timer or the reader spends on a frame the socket does not take
#: before handing it to a background writer.
_WRITE_SLICE = 0.05
#: The most batches a caller reads for itself in one wait before leaving the rest to the reader.
_LEAD_BATCHES = 4
#: The longest a caller reading for itself waits in one poll (it then checks its own wait).
_LEAD_SLICE = 0.02
#: The most bytes of queued frames joined into one write.
_COALESCE = 256 * 1024
#: A connection that stayed up this long counts as healthy even without a reply (a silent feed).
_HEALTHY_UPTIME = 10.0


def _default_rng() -> float:
    import random

    return random.random()


def _proxy_tuple(proxy: str | None) -> tuple[str, int, tuple[str, str] | None] | None:
    if proxy is None:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return (parts.hostname or "", parts.port or (1080 if parts.scheme.startswith("socks") else 8080), auth)


def _proxy_type(proxy: str | None) -> str:
    """``http`` or the SOCKS flavour named by the proxy URL's scheme (websocket-client's ``proxy_type``)."""
    scheme = urlsplit(proxy).scheme if proxy is not None and "://" in proxy else "http"
    return scheme or "http"


def _drop_tracebacks(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and of the errors it chains (their messages stay)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


def _excerpt(frame: str | bytes, limit: int = 200) -> str:
    """A short, log-safe rendering of a frame: truncated, join params (often credentials) hidden."""
    if isinstance(frame, bytes):
        if frame[:1] not in (b"[", b"{"):
            return repr(frame[:64]) + (f"...({len(frame)} bytes)" if len(frame) > 64 else "")
        frame = frame.decode("utf-8", "replace")
    marker = frame.find('"phx_join"')
    if marker != -1:
        return frame[: marker + len('"phx_join"')] + " <join params redacted>"
    return frame if len(frame) <= limit else frame[:limit] + f"...({len(frame)} chars)"
