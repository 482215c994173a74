"""A fault-injection TCP proxy for tests: sits between a client and a server on 127.0.0.1.

::

    with FaultProxy(("127.0.0.1", server_port)) as proxy:
        client = maxsdk.Client(proxy.rewrite(server.url))
        ...
        proxy.blackhole()        # half-open link: TCP stays up, nothing flows either way
        proxy.reset()            # back to normal (held bytes are delivered, as TCP would retransmit)
        proxy.cut("rst")         # every connection reset (or "fin": closed cleanly)
        proxy.refuse()           # new connections refused (ECONNREFUSED) until reset()

Faults apply to both directions unless ``direction`` is ``"upstream"``
(client to server) or ``"downstream"`` (server to client):

* :meth:`~FaultProxy.blackhole`: stop reading and writing; the sockets stay
  open, so the peers see a silent link (kernel buffers fill, then senders block);
* :meth:`~FaultProxy.delay`: hold each chunk this many seconds before forwarding it;
* :meth:`~FaultProxy.throttle`: forward at most this many bytes per second;
* :meth:`~FaultProxy.cut`: close every connection now, with RST (``SO_LINGER``
  0) or FIN (``shutdown``); the next connections are forwarded as usual;
* :meth:`~FaultProxy.refuse`: close the listening socket, so that connects are
  refused; :meth:`~FaultProxy.reset` binds the same port again.

Design: one I/O thread runs a ``selectors`` loop over non-blocking sockets; it
is the only thread that touches a socket. Control methods change settings under
a lock and wake the loop through a socket pair; :meth:`cut`, :meth:`refuse` and
:meth:`reset` wait until the loop has carried them out. Timed faults (delay,
throttle) become deadlines that bound the ``select`` timeout, so the loop never
sleeps or polls. :meth:`stop` closes every socket and joins the thread.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

__all__ = ["CutMode", "Direction", "FaultProxy", "ProxyStats"]

Direction = Literal["both", "upstream", "downstream"]
CutMode = Literal["rst", "fin"]

_CHUNK = 65536
#: Stop reading from a peer while this many bytes wait to be written to the other one.
_HIGH_WATER = 1 << 20
_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class ProxyStats:
    """Counters of a :class:`FaultProxy`.

    Attributes:
        accepted: connections accepted since start.
        active: connections open now.
        cut: connections closed by :meth:`FaultProxy.cut`.
        bytes_upstream: bytes forwarded from clients to the server.
        bytes_downstream: bytes forwarded from the server to clients.

    """

    accepted: int
    active: int
    cut: int
    bytes_upstream: int
    bytes_downstream: int


@dataclass
class _Faults:
    """The faults of one direction."""

    blackhole: bool = False
    delay: float = 0.0
    rate: float | None = None


@dataclass
class _Pipe:
    """One direction of a connection: bytes read from ``src`` wait in ``buffer`` for ``dst``."""

    direction: Literal["upstream", "downstream"]
    src: socket.socket
    dst: socket.socket
    buffer: deque[tuple[float, bytes]] = field(default_factory=deque)
    buffered: int = 0
    eof: bool = False  # src sent FIN
    shut: bool = False  # FIN forwarded to dst
    blocked: bool = False  # dst's send buffer is full: wait for writability
    next_send: float = 0.0  # throttle: earliest time of the next write


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    connecting: bool = True
    up: _Pipe = field(init=False)
    down: _Pipe = field(init=False)

    def __post_init__(self) -> None:
        self.up = _Pipe("upstream", self.client, self.upstream)
        self.down = _Pipe("downstream", self.upstream, self.client)


class FaultProxy:
    """A TCP proxy on ``host:port`` forwarding to ``upstream``, with faults switched on at any moment.

    Args:
        upstream: ``(host, port)`` of the server.
        host: the interface to listen on (loopback).
        port: the port to listen on; 0 picks a free one (kept across :meth:`refuse`/:meth:`reset`).
        name: the I/O thread's name.

    """

    def __init__(
        self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0, name: str = "faultproxy"
    ) -> None:
        self.upstream = upstream
        self._host = host
        self._port = port
        self._name = name
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._faults = {"upstream": _Faults(), "downstream": _Faults()}
        self._commands: deque[tuple[Callable[[], None], threading.Event]] = deque()
        self._stopping = False
        self._accepted = self._cut = self._bytes_up = self._bytes_down = 0
        self._connections: list[_Connection] = []
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._registered: dict[socket.socket, int] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind, listen and start the I/O thread; returns ``self``."""
        if self._thread is not None:
            return self
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._listen()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and socket and join the I/O thread (safe to call twice)."""
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            self._stopping = True
        self._wake()
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the fault proxy's I/O thread did not stop")
        self._thread = None
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- where to connect ----------------------------------------------------------------

    @property
    def host(self) -> str:
        """The listening host."""
        return self._host

    @property
    def port(self) -> int:
        """The listening port (known after :meth:`start`)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return self._host, self._port

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (``ws://127.0.0.1:PORT/...``)."""
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, f"{self._host}:{self._port}", parts.path, parts.query, parts.fragment))

    # -- faults ------------------------------------------------------------------------------

    def blackhole(self, direction: Direction = "both") -> None:
        """Stop forwarding (a half-open link): sockets stay open, no byte moves until :meth:`reset`."""
        self._set(direction, blackhole=True)

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        """Hold each chunk ``seconds`` before forwarding it (0 = no delay)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._set(direction, delay=float(seconds))

    def throttle(self, bytes_per_second: float | None, direction: Direction = "both") -> None:
        """Forward at most ``bytes_per_second`` (``None`` = unlimited)."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be > 0 or None")
        self._set(direction, rate=bytes_per_second)

    def cut(self, mode: CutMode = "rst", timeout: float = 5.0) -> int:
        """Close every open connection now, both sides, with RST or FIN; return how many were cut."""
        if mode not in ("rst", "fin"):
            raise ValueError("mode must be 'rst' or 'fin'")
        count: list[int] = []
        self._call(lambda: count.append(self._cut_all(mode)), timeout)
        return count[0]

    def refuse(self, timeout: float = 5.0) -> None:
        """Refuse new connections (the listening socket is closed) until :meth:`reset`."""
        self._call(self._close_listener, timeout)

    def reset(self, timeout: float = 5.0) -> None:
        """Back to normal: no blackhole, delay or throttle, and new connections accepted again."""
        with self._lock:
            self._faults = {"upstream": _Faults(), "downstream": _Faults()}
        self._call(self._listen_if_closed, timeout)

    # -- observation ----------------------------------------------------------------------------

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(self._accepted, len(self._connections), self._cut, self._bytes_up, self._bytes_down)

    def wait_for(self, predicate: Callable[[ProxyStats], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate(stats)`` holds (re-checked on every change); ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: predicate(
                    ProxyStats(self._accepted, len(self._connections), self._cut, self._bytes_up, self._bytes_down)
                ),
                timeout,
            )

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads this proxy runs (its I/O thread while started)."""
        return [self._thread] if self._thread is not None else []

    # -- control plumbing ------------------------------------------------------------------------

    def _set(self, direction: Direction, **changes: Any) -> None:
        names = ("upstream", "downstream") if direction == "both" else (direction,)
        if any(name not in self._faults for name in names):
            raise ValueError("direction must be 'both', 'upstream' or 'downstream'")
        with self._lock:
            for name in names:
                for key, value in changes.items():
                    setattr(self._faults[name], key, value)
        self._wake()

    def _call(self, action: Callable[[], None], timeout: float) -> None:
        """Run ``action`` on the I/O thread and wait for it."""
        if self._thread is None:
            raise RuntimeError("the fault proxy is not started")
        done = threading.Event()
        with self._lock:
            self._commands.append((action, done))
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError("the fault proxy did not carry out the command")

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken (buffer full) or stopped

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- the I/O thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._selector is not None
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        break
                    commands = list(self._commands)
                    self._commands.clear()
                faults = self._snapshot()
                for action, done in commands:
                    action()
                    done.set()
                deadline = self._pump_all(faults, time.monotonic())
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = self._selector.select(timeout)
                # Settings changed before the wake-up byte was written: read them after select().
                faults = self._snapshot()
                for key, events in ready:
                    self._on_event(key, events, faults)
        finally:
            self._shutdown()

    def _snapshot(self) -> dict[str, _Faults]:
        with self._lock:
            return {name: _Faults(f.blackhole, f.delay, f.rate) for name, f in self._faults.items()}

    def _on_event(self, key: selectors.SelectorKey, events: int, faults: dict[str, _Faults]) -> None:
        sock = key.fileobj
        if sock is self._wake_r:
            _discard_input(self._wake_r)
            return
        if sock is self._listener:
            self._accept()
            return
        conn: _Connection = key.data
        if conn not in self._connections:
            return  # closed earlier in this round
        now = time.monotonic()
        if events & selectors.EVENT_WRITE:
            if conn.connecting and sock is conn.upstream:
                self._finish_connect(conn)
            for pipe in (conn.up, conn.down):
                if pipe.dst is sock:
                    pipe.blocked = False
        if events & selectors.EVENT_READ and conn in self._connections:
            pipe = conn.up if sock is conn.client else conn.down
            self._read(conn, pipe, faults[pipe.direction], now)

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self._host, self._port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self._port = listener.getsockname()[1]
        self._listener = listener
        assert self._selector is not None
        self._selector.register(listener, selectors.EVENT_READ)

    def _listen_if_closed(self) -> None:
        if self._listener is None:
            self._listen()

    def _close_listener(self) -> None:
        if self._listener is not None and self._selector is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. the connection was reset while in the backlog
            client.setblocking(False)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.connect_ex(self.upstream)
            conn = _Connection(client, upstream)
            with self._lock:
                self._connections.append(conn)
                self._accepted += 1
            self._notify()

    def _finish_connect(self, conn: _Connection) -> None:
        error = conn.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._close(conn, rst=True)  # the server is down: the client sees a reset
        else:
            conn.connecting = False

    def _read(self, conn: _Connection, pipe: _Pipe, faults: _Faults, now: float) -> None:
        try:
            data = pipe.src.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, rst=True)  # a reset on one side is passed on to the other
            return
        if not data:
            pipe.eof = True
        else:
            pipe.buffer.append((now + faults.delay, data))
            pipe.buffered += len(data)
        self._flush(conn, pipe, faults, time.monotonic())

    def _flush(self, conn: _Connection, pipe: _Pipe, faults: _Faults, now: float) -> float | None:
        """Write what is due to ``pipe.dst``; return the next deadline of this pipe, if any."""
        if conn.connecting or pipe.blocked or faults.blackhole:
            return None
        while pipe.buffer:
            ready_at, data = pipe.buffer[0]
            if ready_at > now:
                return ready_at
            if faults.rate is not None and pipe.next_send > now:
                return pipe.next_send
            limit = len(data) if faults.rate is None else max(1, int(faults.rate * 0.05))
            try:
                sent = pipe.dst.send(data[:limit])
            except (BlockingIOError, InterruptedError):
                pipe.blocked = True
                return None
            except OSError:
                self._close(conn, rst=True)
                return None
            if faults.rate is not None:
                pipe.next_send = max(pipe.next_send, now) + sent / faults.rate
            pipe.buffered -= sent
            if sent == len(data):
                pipe.buffer.popleft()
            else:
                pipe.buffer[0] = (ready_at, data[sent:])
            with self._lock:
                if pipe.direction == "upstream":
                    self._bytes_up += sent
                else:
                    self._bytes_down += sent
            self._notify()
        if pipe.eof and not pipe.shut:
            pipe.shut = True
            try:
                pipe.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if conn.up.shut and conn.down.shut:
                self._close(conn, rst=False)
        return None

    def _pump_all(self, faults: dict[str, _Faults], now: float) -> float | None:
        """Flush every pipe, update the selector's interests, and return the earliest deadline."""
        deadline: float | None = None
        for conn in list(self._connections):
            for pipe in (conn.up, conn.down):
                if conn in self._connections:
                    due = self._flush(conn, pipe, faults[pipe.direction], now)
                    if due is not None:
                        deadline = due if deadline is None else min(deadline, due)
        for conn in self._connections:
            self._register(conn.client, self._interest(conn, conn.client, faults), conn)
            self._register(conn.upstream, self._interest(conn, conn.upstream, faults), conn)
        return deadline

    def _interest(self, conn: _Connection, sock: socket.socket, faults: dict[str, _Faults]) -> int:
        events = 0
        reading = conn.up if sock is conn.client else conn.down
        writing = conn.down if sock is conn.client else conn.up
        if not reading.eof and reading.buffered < _HIGH_WATER and not faults[reading.direction].blackhole:
            events |= selectors.EVENT_READ
        if (conn.connecting and sock is conn.upstream) or writing.blocked:
            events |= selectors.EVENT_WRITE
        return events

    def _register(self, sock: socket.socket, events: int, conn: _Connection) -> None:
        assert self._selector is not None
        current = self._registered.get(sock, 0)
        if events == current:
            return
        if current == 0:
            self._selector.register(sock, events, conn)
        elif events == 0:
            self._selector.unregister(sock)
        else:
            self._selector.modify(sock, events, conn)
        if events:
            self._registered[sock] = events
        else:
            self._registered.pop(sock, None)

    def _close(self, conn: _Connection, *, rst: bool) -> None:
        """Close both sockets of ``conn``: with RST (``SO_LINGER`` 0) or an orderly FIN."""
        for sock in (conn.client, conn.upstream):
            if self._registered.pop(sock, 0) and self._selector is not None:
                self._selector.unregister(sock)
            try:
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                else:
                    sock.shutdown(socket.SHUT_WR)
                    _discard_input(sock)  # unread input would turn the FIN into a RST
            except OSError:
                pass
            sock.close()
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        self._notify()

    def _cut_all(self, mode: CutMode) -> int:
        connections = list(self._connections)
        for conn in connections:
            self._close(conn, rst=mode == "rst")
        with self._lock:
            self._cut += len(connections)
        self._notify()
        return len(connections)

    def _shutdown(self) -> None:
        for conn in list(self._connections):
            self._close(conn, rst=True)
        self._close_listener()
        with self._lock:
            for _, done in self._commands:
                done.set()
            self._commands.clear()

    def __repr__(self) -> str:
        stats = self.stats()
        return (
            f"<FaultProxy {self._host}:{self._port} -> {self.upstream[0]}:{self.upstream[1]} "
            f"active={stats.active} accepted={stats.accepted}>"
        )


def _discard_input(sock: socket.socket) -> None:
    try:
        while sock.recv(_CHUNK):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOTCONN, errno.ECONNRESET):
            raise
