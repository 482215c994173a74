"""Client: the one entry point — a blocking Phoenix Channels socket."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from maxsdk._client_base import ClientBase
from maxsdk._runtime.engine import Engine
from maxsdk._runtime.shards import ShardSet, aggregate
from maxsdk.channel import Channel
from maxsdk.config import DEFAULT_FATAL_STATUSES, ClientConfig, EndpointsLike, ParamsLike, SecretLike, check_seconds
from maxsdk.errors import ClientClosedError
from maxsdk.protocol.backoff import BackoffLike
from maxsdk.reply import PendingReply

if TYPE_CHECKING:
    from maxsdk.outbox import Outbox
    from maxsdk.stats import Stats
    from maxsdk.status import Diagnostics

__all__ = ["Client"]

R = TypeVar("R", bound=Callable[..., Any])


class Client(ClientBase):
    """A Phoenix Channels client over one WebSocket, for code without asyncio.

    ::

        with maxsdk.Client("wss://example.com/socket", params={"token": t}) as client:
            room = client.join("room:lobby")
            reply = room.push("new_msg", {"body": "hi"})

    A background reader thread does the work, with one timer thread shared
    by the clients of the process (heartbeats, timeouts, rejoins); your
    handlers and signal receivers run on a small worker pool shared too, each channel on its own
    ordered queue (a slow handler on one channel delays neither the others nor
    any reply). Every public method is safe to call from any thread.

    Args:
        url: the socket endpoint, ``ws(s)://host/socket`` (``/websocket`` is
            appended unless present; ``http(s)`` is accepted too); or several,
            the preferred first, for failover; or a zero-argument callable
            returning one or several, called on every connection attempt
            (service discovery). With several, each attempt goes to the
            endpoint in use while it works (sticky); when an attempt fails the
            next healthy one is tried at once (fewest recent failures, then
            lowest heartbeat RTT, then the order given), and channels are
            rejoined and the outbox carries on there.
        compression: offer permessage-deflate (RFC 7692) in the upgrade:
            ``True`` (defaults), a :class:`~maxsdk.Deflate` (context takeover
            and window options) or ``False`` (default). Used only if the
            server accepts (Phoenix: ``compress: true``); a compressed message
            inflating past ``max_message_size`` is refused after at most that
            much work.
        failback_after: with several endpoints, seconds on another one
            between checks (a TCP connect) that the preferred one is back; if
            it answers the client reconnects there. ``None``: stay (see
            :meth:`fail_back`).
        params: connect params sent in the query string — a mapping or a
            zero-argument callable returning one, called on **every**
            connection attempt (the way to renew an expiring token).
        headers: extra HTTP headers for the upgrade (mapping or callable).
        auth_token: Phoenix >= 1.8 ``authToken`` sent in
            ``Sec-WebSocket-Protocol`` (string or callable). Only use it when
            the server enables ``auth_token: true``.
        vsn: serializer version, ``"2.0.0"`` (default) or ``"1.0.0"``.
        timeout: default seconds for join, push and leave replies.
        connect_timeout: seconds for one TCP + TLS + upgrade attempt.
        heartbeat_interval: seconds between heartbeats (default 30, as
            phoenix.js); ``0`` or ``False`` turns heartbeats off, ``None``
            means the default.
        heartbeat_timeout: seconds to wait for a heartbeat reply before the
            connection is declared dead (default: ``heartbeat_interval``).
        reconnect: reconnect schedule: a :class:`~maxsdk.Backoff`, ``False``
            (never), an int (max attempts) or ``attempt -> seconds``. Default:
            phoenix.js's steps (10 ms ... 5 s) with jitter.
        rejoin: channel rejoin schedule (default 1, 2, 5, then 10 s).
        reconnect_on_normal_close: reconnect when the server closes with code
            1000 (phoenix.js does not; default ``False``).
        reconnect_on_going_away: reconnect when the server closes with code
            1001 (Phoenix's socket-id ``disconnect``; default ``True``).
        fatal_statuses: HTTP statuses of a refused upgrade that stop
            reconnecting (401/403 get one retry with freshly evaluated
            credentials first).
        max_message_size: larger incoming messages are dropped and reported
            (bytes; ``None`` = unlimited).
        max_pending: the most pushes awaiting replies at once.
        dispatch_queue_size: events queued for one channel's handlers
            before its overflow policy applies (per channel; a channel may
            set its own, see :meth:`channel`).
        dispatch_total_size: the most events queued for all of the client's
            handlers together. With ``"block"`` a channel's queue grows past
            its bound (the reader reads on for the other channels) until this
            total is reached; then the reader stops reading the socket until
            the handlers halve it (TCP backpressure on the server).
        overflow: what a full channel queue does with the next message:
            ``"block"`` (default: nothing is lost, see ``dispatch_total_size``),
            ``"drop_oldest"`` or ``"drop_newest"`` (drops are counted per
            channel and reported through the ``messages_dropped`` signal).
        offline: what a (non-durable) push does while the client is not
            connected: ``"wait"`` (default: buffered until the connection and
            the channel are back, within the push's timeout — phoenix.js's
            send buffer) or ``"raise"`` (:class:`~maxsdk.NotConnectedError` at once).
        verify_tls: verify ``wss://`` certificates (default ``True``; turning
            it off logs a warning).
        ca_file: a CA bundle to verify against.
        ssl_context: a ready ``ssl.SSLContext`` (overrides the two above).
        tls: a :class:`~maxsdk.TLSConfig` instead of the three above: CA,
            verification, a client certificate (mutual TLS) and certificate
            pins, for the WebSocket and long-poll alike (give the same one to
            a :class:`~maxsdk.TokenProvider`).
        origin: an ``Origin`` header to send (none by default).
        follow_redirects: the most redirects to follow when connecting
            (WebSocket upgrade and long-poll alike). ``0`` (default): a
            redirect is a :class:`~maxsdk.HandshakeError` naming the status
            and the redacted ``Location``. Only same-scheme hops are followed
            (``wss://`` to ``wss://``, ``ws://`` to ``ws://``; a downgrade
            never), within ``connect_timeout`` in all, and the ``Location`` is
            used as given (its query is the server's). When a hop goes to
            another origin (scheme, host, port), no credentials go with it:
            none of your ``headers`` (``Authorization``, ``Cookie`` or any
            other) and no ``auth_token``. Channel join params and messages do
            go to the server you end up on: opt in only for redirects you
            trust. ``diagnostics().connected_url`` shows where you are.
        proxy: a proxy for both transports: ``http://[user:pass@]host:port``, or
            ``socks5://``, ``socks5h://`` (the proxy resolves host names),
            ``socks4://``, ``socks4a://`` with the ``socks`` extra.
        close_timeout: seconds :meth:`close` spends leaving and closing.
        transport: ``"websocket"`` (default), ``"longpoll"`` (Phoenix's HTTP
            long-poll transport, for networks that block WebSockets) or
            ``"auto"`` (WebSocket, falling back to long-poll).
        longpoll_fallback_after: with ``"auto"``, also fall back when no
            WebSocket connection succeeds within this many seconds.
        name: a name for logs and thread names.
        max_channels_per_socket: the most channels joined on one socket
            (default 100, Phoenix's per-socket cap). Joins beyond it go to
            further sockets to the same endpoint, opened on demand (each with
            its own heartbeat, rejoin and backoff) and closed once their last
            channel is left; a server refusing a join with "too many channels
            joined" also sends it to another socket. ``None``: one socket.
        outbox: a directory (or an :class:`~maxsdk.outbox.OutboxConfig`) for
            the durable outbox used by :meth:`Channel.send`; ``None`` = no
            outbox. The directory is locked while the client is open.

    """

    def __init__(
        self,
        url: EndpointsLike,
        *,
        params: ParamsLike = None,
        headers: Any = None,
        auth_token: SecretLike = None,
        vsn: str = "2.0.0",
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat_interval: float | Literal[False] | None = 30.0,
        heartbeat_timeout: float | None = None,
        reconnect: BackoffLike = None,
        rejoin: BackoffLike = None,
        reconnect_on_normal_close: bool = False,
        reconnect_on_going_away: bool = True,
        fatal_statuses: Any = DEFAULT_FATAL_STATUSES,
        max_message_size: int | None = 8 * 1024 * 1024,
        max_pending: int | None = 100_000,
        dispatch_queue_size: int = 10_000,
        dispatch_total_size: int = 50_000,
        overflow: str = "block",
        offline: str = "wait",
        verify_tls: bool = True,
        ca_file: str | None = None,
        ssl_context: Any = None,
        tls: Any = None,
        origin: str | None = None,
        proxy: str | None = None,
        close_timeout: float = 2.0,
        transport: str = "websocket",
        longpoll_fallback_after: float | None = None,
        name: str | None = None,
        outbox: Any = None,
        max_channels_per_socket: int | None = 100,
        failback_after: float | None = 30.0,
        compression: Any = False,
        follow_redirects: int = 0,
        _rng: Callable[[], float] | None = None,
    ) -> None:
        self.config = ClientConfig.build(
            url,
            params=params,
            headers=headers,
            auth_token=auth_token,
            vsn=vsn,
            timeout=timeout,
            connect_timeout=connect_timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            reconnect=reconnect,
            rejoin=rejoin,
            reconnect_on_normal_close=reconnect_on_normal_close,
            reconnect_on_going_away=reconnect_on_going_away,
            fatal_statuses=fatal_statuses,
            max_message_size=max_message_size,
            max_pending=max_pending,
            dispatch_queue_size=dispatch_queue_size,
            dispatch_total_size=dispatch_total_size,
            overflow=overflow,
            offline=offline,
            verify_tls=verify_tls,
            ca_file=ca_file,
            ssl_context=ssl_context,
            tls=tls,
            origin=origin,
            proxy=proxy,
            close_timeout=close_timeout,
            transport=transport,
            longpoll_fallback_after=longpoll_fallback_after,
            name=name,
            max_channels_per_socket=max_channels_per_socket,
            failback_after=failback_after,
            compression=compression,
            follow_redirects=follow_redirects,
            rng=_rng,
        )
        self._engine = Engine(self.config, self)
        self._shards = ShardSet(self._engine, self._make_shard, self.config.max_channels_per_socket)
        self._channels: weakref.WeakSet[Channel] = weakref.WeakSet()
        #: The durable outbox (``None`` unless ``outbox=`` was given).
        self.outbox: Outbox | None = None
        if outbox is not None:
            from maxsdk.outbox import Outbox, OutboxConfig  # persist-queue only when used

            self.outbox = Outbox(self, OutboxConfig.coerce(outbox))
        self._init_base()

    # -- connection ----------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> Client:
        """Connect and block until the socket is open.

        Retryable failures (refused, reset, 5xx...) are retried on the
        reconnect schedule until ``timeout``; fatal ones (a 403, a bad URL, a
        certificate that does not verify) raise at once. After a successful
        connect, drops are retried in the background.

        Args:
            timeout: seconds (default: ``connect_timeout``).

        Returns:
            The client itself.

        Raises:
            AuthenticationError: the server refused the credentials (401/403).
            HandshakeError: the upgrade failed with another fatal HTTP status.
            TLSVerificationError: the certificate did not verify.
            ConnectTimeoutError: not connected within ``timeout`` (the last
                failure is chained); the client stops trying.

        """
        timeout = self.config.connect_timeout if timeout is None else check_seconds("timeout", timeout)
        self.connect_nowait()
        self._engine.wait_connected(timeout)
        return self

    def connect_nowait(self) -> None:
        """Start connecting in the background and return at once (retries forever per ``reconnect``)."""
        self._check_process()
        with self._lock:
            self._closed = False
            self._started = True
        self._engine.start()
        self._shards.start_all()
        if self.outbox is not None:
            self.outbox.start()

    def _make_shard(self, number: int) -> Engine:
        """The engine of the ``number``-th socket (sharding past the server's channel cap)."""
        name = None if self.config.name is None else f"{self.config.name}-{number}"
        return Engine(dataclasses.replace(self.config, name=name), self)

    def _ensure_started(self) -> None:
        self._check_process()
        if self.closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            self.connect()

    def close(self, timeout: float | None = None) -> None:
        """Leave every channel, close the connection, and stop and join every thread.

        Pending pushes fail with :class:`ClientClosedError`. Safe to call twice,
        and from a handler.
        """
        with self._lock:
            self._closed = True
            self._started = False
        if self._forked:
            return  # the parent's threads and socket do not exist here; nothing to close
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        self._shards.close_all(timeout)
        self._engine.close(timeout)
        if self.outbox is not None:
            self.outbox.close()

    def disconnect(self, timeout: float | None = None) -> None:
        """Close every socket without forgetting channels; no automatic reconnect.

        They are joined again on the next ``connect()``.
        """
        self._check_process()
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        self._shards.disconnect_all(timeout)
        self._engine.disconnect(timeout)

    def fail_back(self) -> bool:
        """Reconnect every socket to the preferred (first) endpoint now.

        Returns:
            ``False`` if there is a single endpoint or every socket already uses the preferred one.

        """
        moved = False
        for engine in self._shards.engines:
            if engine.endpoints is not None:
                moved = engine.endpoints.fail_back() or moved
        return moved

    @property
    def sockets(self) -> int:
        """How many sockets the client holds now (more than one past ``max_channels_per_socket``)."""
        return len(self._shards.engines)

    def socket_diagnostics(self) -> list[Diagnostics]:
        """One :class:`~maxsdk.Diagnostics` per socket, the client's first socket first."""
        self._check_process()
        return [engine.diagnostics() for engine in self._shards.engines]

    def socket_stats(self) -> list[Stats]:
        """One :class:`~maxsdk.Stats` per socket (each advances that socket's rate window)."""
        self._check_process()
        return [engine.stats() for engine in self._shards.engines]

    def diagnostics(self) -> Diagnostics:
        """A snapshot of the client for logs and health checks (no secrets), over all its sockets.

        With one socket, that socket's snapshot; with several, the first
        socket's state and URL, every socket's channels, and summed counters
        (per socket: :meth:`socket_diagnostics`).

        Raises:
            ForkedClientError: in a child process after ``os.fork()`` (the
                engine's lock may have been held by a thread that did not survive).

        """
        self._check_process()
        engines = self._shards.engines
        first = self._engine.diagnostics()
        if len(engines) == 1:
            return first
        return aggregate(first, [engine.diagnostics() for engine in engines[1:]])

    def stats(self) -> Stats:
        """Counters, gauges and rates over all the client's sockets (see :class:`~maxsdk.stats.Stats`).

        With several sockets, counters and rates are summed and latency
        percentiles are the worst socket's (per socket: :meth:`socket_stats`).

        Raises:
            ForkedClientError: in a child process after ``os.fork()``.

        """
        self._check_process()
        engines = self._shards.engines
        first = self._engine.stats(self._outbox_depth())
        if len(engines) == 1:
            return first
        return aggregate(first, [engine.stats() for engine in engines[1:]])

    # -- channels -----------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self.connect()

    def channel(
        self,
        topic: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        queue_size: int | None = None,
        overflow: str | None = None,
        dedicated_thread: bool = False,
        recover: Any = None,
        recover_store: Any = None,
    ) -> Channel:
        """A new :class:`Channel` for ``topic`` (not joined yet).

        Args:
            topic: the topic, e.g. ``"room:lobby"``.
            params: join payload — a mapping, a dataclass, or a callable
                returning one (re-evaluated on every rejoin).
            timeout: default timeout of this channel (default: the client's).
            queue_size: this channel's queue bound (default: ``dispatch_queue_size``).
            overflow: this channel's overflow policy (default: the client's).
            dedicated_thread: run this channel's handlers on a thread of its
                own instead of the shared pool (joined by :meth:`close`).
            recover: ``True`` or a :class:`~maxsdk.Recovery`: resume the stream
                after cuts with replay and exactly-once delivery (see
                :mod:`maxsdk.recovery`).
            recover_store: a directory where this channel's stream position
                survives the process (implies nothing without ``recover``).

        """
        channel = Channel(
            self,
            self._engine,
            topic,
            params,
            self.config.timeout if timeout is None else check_seconds("timeout", timeout),
            queue_size=queue_size,
            overflow=overflow,
            dedicated_thread=dedicated_thread,
            recover=recover,
            recover_store=recover_store,
        )
        self._channels.add(channel)
        return channel

    def _joined_channels(self) -> dict[str, Channel]:
        """The joined channels by topic (for the outbox)."""
        from maxsdk.outbox import joined_topics

        return joined_topics(list(self._channels))

    def join(
        self,
        topic: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        recover: Any = None,
        recover_store: Any = None,
    ) -> Channel:
        """Create a channel and join it (connecting first if needed); see :meth:`Channel.join`.

        ``recover=True`` (or a :class:`~maxsdk.Recovery`) and ``recover_store=``
        as for :meth:`channel`.
        """
        return self.channel(topic, params, timeout=timeout, recover=recover, recover_store=recover_store).join()

    def join_nowait(
        self,
        topic: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        recover: Any = None,
        recover_store: Any = None,
    ) -> Channel:
        """Create a channel and start joining it without waiting; see :meth:`Channel.join_nowait`.

        ::

            room = client.join_nowait("room:lobby")
            room.push_nowait("new_msg", {"body": "hi"})   # buffered until joined
            room.wait_joined()                             # raises JoinError if refused
        """
        return self.channel(topic, params, timeout=timeout, recover=recover, recover_store=recover_store).join_nowait()

    # -- misc -----------------------------------------------------------------------

    def ping(self, timeout: float | None = None) -> float:
        """Send an extra heartbeat and return its round-trip time in seconds."""
        import time

        timeout = self.config.timeout if timeout is None else timeout
        waiter = PendingReply(self._engine, "phoenix", "heartbeat", timeout)
        started = time.monotonic()
        self._engine.run(lambda session, now: session.ping(now, timeout, waiter))
        waiter.wait()
        return time.monotonic() - started

    def _outbox_depth(self) -> int | None:
        return None if self.outbox is None else self.outbox.depth()

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads this client started (for tests and diagnostics)."""
        threads = [t for engine in self._shards.engines for t in engine.threads]
        if self.outbox is not None and self.outbox.thread is not None:
            threads.append(self.outbox.thread)
        return threads
