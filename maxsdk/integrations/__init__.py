"""One client per process, for web apps and workers: :class:`ProcessClient`.

A web process wants exactly one :class:`~maxsdk.Client` (one WebSocket, three
threads) shared by every request thread, and it must get that right under
the servers' process models:

* **created lazily**, on first use: never in a process that will not use it
  (Django's autoreloader parent, a ``manage.py migrate``, gunicorn's master);
* **recreated after a fork**: a client made before ``os.fork()`` is unusable
  in the child (its threads and socket stayed in the parent; using it raises
  :class:`~maxsdk.ForkedClientError`). gunicorn ``--preload`` and uWSGI
  without ``lazy-apps`` import the app in the master and fork workers from
  it; :meth:`ProcessClient.get` sees the new process id and makes a fresh
  client there;
* **created once** even when many request threads ask at the same time;
* **closed at interpreter exit** (``atexit``): channels are left and the
  socket closed cleanly, in the process that owns the client only.

The framework helpers build on it: :mod:`maxsdk.integrations.django` and
:mod:`maxsdk.integrations.flask`. It works the same in any other program::

    from maxsdk import Client
    from maxsdk.integrations import ProcessClient

    realtime = ProcessClient(lambda: Client("wss://example.com/socket", params=get_params))

    def notify(order_id):                       # from any thread, any worker
        realtime.push("orders:lobby", "updated", {"id": order_id})

:func:`listen` is the blocking loop behind ``manage.py maxsdk_listen`` and
``flask maxsdk listen``: it joins topics and hands every event to a callback.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from maxsdk import signals
from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.channel import Channel
from maxsdk.client import Client
from maxsdk.errors import ConfigurationError
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.reply import Reply

__all__ = ["ListenResult", "ProcessClient", "listen", "stop_on_sigterm", "topic_matches"]

log = logging.getLogger("maxsdk.integrations")

_holders: weakref.WeakSet[ProcessClient] = weakref.WeakSet()


class ProcessClient:
    """Holds the one :class:`~maxsdk.Client` of the current process.

    Every method is safe to call from any thread. :meth:`get`, :meth:`join`
    and :meth:`push` block; call them from request threads or workers, not
    from one of maxsdk's own reader or timer threads.

    Args:
        factory: makes a new, unconnected client; called in the process that
            will use it (after a fork too), so it may read settings and the
            environment at that moment.
        setup: optional ``setup(client)`` run once per new client after it
            connected (attach signal receivers, join topics...). It may call
            this holder's :meth:`join` or :meth:`channel`.
        connect: connect when the client is created (default). With
            ``False`` the first join connects it.
        connect_timeout: seconds :meth:`get` waits for the connection
            (default: the client's ``connect_timeout``).

    """

    def __init__(
        self,
        factory: Callable[[], Client],
        *,
        setup: Callable[[Client], Any] | None = None,
        connect: bool = True,
        connect_timeout: float | None = None,
    ) -> None:
        if not callable(factory):
            raise ConfigurationError("factory must be a callable returning a maxsdk.Client")
        self._factory = factory
        self._setup = setup
        self._connect = connect
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._client: Client | None = None
        self._pid: int | None = None
        self._channels: dict[str, Channel] = {}
        self._joining: set[Channel] = set()  # cached channels whose join was started
        _holders.add(self)

    # -- the client ------------------------------------------------------------

    def get(self) -> Client:
        """The client of this process, created (and connected) on first use.

        A client inherited through a fork, or one that was closed (it gave
        up reconnecting, or :meth:`close` was called), is replaced by a new
        one.

        Raises:
            ConnectTimeoutError, AuthenticationError, HandshakeError: the
                new client could not connect (nothing is kept; the next call
                tries again).

        """
        client = self._client
        if client is not None and self._usable(client):
            return client
        with self._lock:
            client = self._client
            if client is not None and not self._usable(client):
                self._discard(client)
                client = None
            if client is None:
                client = self._create()
            return client

    @property
    def current(self) -> Client | None:
        """The client of this process if one was created and is usable; never creates one."""
        client = self._client
        return client if client is not None and self._usable(client) else None

    @property
    def pid(self) -> int | None:
        """The process id that created the current client (``None`` before the first one)."""
        return self._pid

    def _usable(self, client: Client) -> bool:
        return self._pid == os.getpid() and not client.forked and not client.closed

    def _create(self) -> Client:
        client = self._factory()
        if not isinstance(client, Client):
            raise ConfigurationError(f"the factory returned {type(client).__name__}, not a maxsdk.Client")
        self._client, self._pid, self._channels, self._joining = client, os.getpid(), {}, set()
        try:
            if self._connect:
                client.connect(self._connect_timeout)
            if self._setup is not None:
                self._setup(client)
        except BaseException:
            self._client, self._channels, self._joining = None, {}, set()
            client.close()
            raise
        log.info("created %r in process %d", client, self._pid)
        return client

    def _discard(self, client: Client) -> None:
        """Forget ``client``; close it only if it belongs to this process."""
        self._client, self._channels, self._joining = None, {}, set()
        if client.forked or self._pid != os.getpid():
            log.info("discarding a client inherited from process %s (now in %d)", self._pid, os.getpid())
        else:
            client.close()

    def close(self, timeout: float | None = None) -> None:
        """Close this process's client (leaving its channels); the next :meth:`get` makes a new one.

        A client inherited through a fork is forgotten, not closed: its
        socket belongs to the parent.
        """
        with self._lock:
            client, self._client = self._client, None
            self._channels, self._joining = {}, set()
            owned = client is not None and self._pid == os.getpid() and not client.forked
        if client is not None and owned:
            client.close(timeout)

    def _after_fork_in_child(self) -> None:
        # A lock held by another thread at fork time stays held forever in the
        # child; the client itself is replaced on the next get().
        self._lock = threading.RLock()

    # -- channels ------------------------------------------------------------------

    def channel(self, topic: str, params: Any = None, *, timeout: float | None = None) -> Channel:
        """The process's :class:`~maxsdk.Channel` for ``topic``, created if needed but not joined.

        One Channel object per topic and client (a second join of a topic on
        the same socket would replace the first on the server), so handlers
        bound on it before :meth:`join` stay bound. ``params`` and ``timeout``
        apply when the channel is created; a channel that was joined and then
        closed for good (left, or closed by the server) is replaced.
        """
        client = self.get()
        with self._lock:
            if client is not self._client:  # replaced meanwhile (close() from another thread)
                client = self.get()
            channel = self._channels.get(topic)
            if channel is None or (channel.state is ChannelState.CLOSED and channel in self._joining):
                if channel is not None:
                    self._joining.discard(channel)
                channel = client.channel(topic, params, timeout=timeout)
                self._channels[topic] = channel
            return channel

    def join(self, topic: str, params: Any = None, *, timeout: float | None = None) -> Channel:
        """The process's channel for ``topic``, joined (see :meth:`channel`).

        Returns at once when it is joined already; waits while it is
        (re)joining.

        Raises:
            JoinError: the server refused the join.
            JoinTimeoutError: no join reply within the timeout.

        """
        channel = self.channel(topic, params, timeout=timeout)
        if channel.joined:
            return channel
        with self._lock:  # one first join per channel: two would both send phx_join
            if channel.state is ChannelState.CLOSED:
                self._joining.add(channel)
                return channel.join(timeout)
        return channel.join(timeout)

    def push(self, topic: str, event: str, payload: Any = None, *, timeout: float | None = None) -> Reply:
        """Join ``topic`` if needed, push ``event`` and block for the reply (see :meth:`Channel.push`)."""
        return self.join(topic).push(event, payload, timeout)

    def __repr__(self) -> str:
        client = self._client
        return f"<ProcessClient pid={self._pid} client={client!r}>"


def _after_fork_in_child() -> None:
    for holder in list(_holders):
        holder._after_fork_in_child()


def _close_all_at_exit() -> None:
    for holder in list(_holders):
        try:
            holder.close()
        except Exception:  # exiting anyway: report and carry on
            log.exception("error while closing %r at exit", holder)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)


# -- listening ---------------------------------------------------------------------


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern``: equal, or ``"room:*"`` style prefix (as Phoenix routes)."""
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    return topic == pattern


class ListenResult:
    """How :func:`listen` ended.

    Attributes:
        handled: events handed to the callback.
        reason: ``"stopped"``, ``"count"``, ``"duration"``, ``"channel_closed"``
            or ``"client_closed"``.
        detail: a human-readable explanation.

    """

    def __init__(self, handled: int, reason: str, detail: str) -> None:
        self.handled = handled
        self.reason = reason
        self.detail = detail

    @property
    def ok(self) -> bool:
        """Whether it ended as asked (not because a channel or the client closed)."""
        return self.reason in ("stopped", "count", "duration")

    def __repr__(self) -> str:
        return f"<ListenResult {self.reason} handled={self.handled}: {self.detail}>"


def listen(
    holder: ProcessClient,
    topics: Mapping[str, Any] | Iterable[str],
    handle: Callable[[Channel, str, Any], Any],
    *,
    events: Iterable[str] | None = None,
    stop: threading.Event | None = None,
    count: int | None = None,
    duration: float | None = None,
    joined: Callable[[Channel], Any] | None = None,
) -> ListenResult:
    """Join ``topics`` and call ``handle(channel, event, payload)`` for each event until stopped.

    The callback runs on the client's dispatcher thread, one event at a
    time, in arrival order; an exception it raises is logged and reported
    through :data:`maxsdk.signals.handler_failed`, and the next event is
    handled. The channels rejoin by themselves after reconnects.

    Args:
        holder: the process's client holder.
        topics: topics to join, or a mapping of topic to join params.
        handle: the callback.
        events: only these events reach the callback (default: all,
            ``presence_state``/``presence_diff`` included).
        stop: set it (from another thread, or a signal handler) to return.
        count: return after this many events.
        duration: return after this many seconds.
        joined: called with each channel once it is joined.

    Returns:
        A :class:`ListenResult`. It ends early, with ``ok`` false, when a
        channel is closed for good by the server or the client gives up
        reconnecting.

    """
    stop = stop or threading.Event()
    wanted = frozenset(events) if events is not None else None
    pairs = list(topics.items()) if isinstance(topics, Mapping) else [(topic, None) for topic in topics]
    if not pairs:
        raise ConfigurationError("listen() needs at least one topic")
    lock = threading.Lock()
    result = ListenResult(0, "stopped", "stopped")

    def finish(reason: str, detail: str) -> None:
        with lock:
            if not stop.is_set():
                result.reason, result.detail = reason, detail
                stop.set()

    def make_handler(channel: Channel) -> Callable[[str, Any], None]:
        def on_event(event: str, payload: Any) -> None:
            if stop.is_set():
                return
            handle(channel, event, payload)
            with lock:
                result.handled += 1
                reached = count is not None and result.handled >= count
            if reached:
                finish("count", f"handled {count} event(s)")

        return on_event

    client = holder.get()
    channels: list[Channel] = []

    def on_channel_closed(_client: Client, **kwargs: Any) -> None:
        channel = kwargs.get("channel")
        if channel in channels and not stop.is_set() and not client.closed:
            finish("channel_closed", f"{channel.topic} closed: {kwargs.get('reason')}")

    def on_gave_up(_client: Client, **kwargs: Any) -> None:
        finish("client_closed", f"gave up reconnecting: {kwargs.get('reason')}")

    client.on_signal(signals.channel_closed, on_channel_closed)
    client.on_signal(signals.reconnect_failed, on_gave_up)
    refs: list[tuple[Channel, int]] = []
    try:
        for topic, params in pairs:
            channel = holder.channel(topic, params)
            refs.append((channel, channel.on_any(make_handler(channel), events=wanted)))
            channels.append(holder.join(topic, params))
            if joined is not None:
                joined(channel)
        if not wait_interruptibly(stop.wait, duration):
            finish("duration", f"listened for {duration:g} s")
    finally:
        for channel, ref in refs:
            channel.off_any(ref)
        client.off_signal(signals.channel_closed, on_channel_closed)
        client.off_signal(signals.reconnect_failed, on_gave_up)
    with lock:
        return ListenResult(result.handled, result.reason, result.detail)


def stop_on_sigterm(stop: threading.Event) -> Callable[[], Any]:
    """Make SIGTERM set ``stop`` (for listener processes under systemd, supervisor, containers).

    Only possible on the main thread; elsewhere nothing changes.

    Returns:
        A function restoring the previous handler.

    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    return lambda: signal.signal(signal.SIGTERM, previous)
