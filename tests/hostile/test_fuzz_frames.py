"""Fuzzing at volume: thousands of random frames from a raw server; nothing escapes or dies, memory stays bounded.

One client talks to a raw server for the whole test. A seeded generator
(deterministic: the same bytes on every run) draws batches of frames: valid
and malformed Phoenix messages (JSON and binary), junk JSON (deep nesting,
huge numbers, lone surrogates), invalid UTF-8, fragments with control frames
between them, pings and pongs, messages at, just over and far over
``max_message_size`` (whole or fragmented), and, in some batches, one frame
that breaks the WebSocket framing (reserved bits, unknown opcodes, bad control
frames, a continuation without a message, a new message inside a fragmented
one, a masked server frame, a length with its top bit set, a close frame).

Each batch is followed by a marker message. The oracle is exact: a batch with
a framing breaker must end the connection (the client reconnects and rejoins);
a batch without one must not (the marker is delivered, no reconnect). Either
way a push then gets its reply: the client still works. Throughout,
``threading.excepthook`` catches any exception escaping any thread, the
``maxsdk`` logger must log no error, the reader thread stays alive, the thread
count stays flat and tracemalloc's peak stays within a small multiple of
``max_message_size``.

Frames whose declared length lies (more than is sent) are left out: the client
would wait for the missing bytes until a heartbeat timeout, and they have their
own tests in ``test_transport_frames.py``. ``phx_close``/``phx_error`` are sent
on the joined channel's topic only with a stale ``join_ref`` (which must be
ignored); with the current one they end the channel on purpose.

``MAXSDK_FUZZ_SEED`` and ``MAXSDK_FUZZ_BATCHES`` explore other streams locally;
a failure names the seed, the batch number and its frames.
"""

from __future__ import annotations

import json
import logging
import os
import random
import struct
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer, frame_bytes

pytestmark = pytest.mark.timeout(120)

SEED = int(os.environ.get("MAXSDK_FUZZ_SEED", "20261203"))
BATCHES = int(os.environ.get("MAXSDK_FUZZ_BATCHES", "200"))
TOPIC = "room:fuzz"
LIMIT = 256 * 1024
#: A batch carries a framing breaker this often.
BREAK_RATE = 0.3
#: A batch carries one message about max_message_size this often.
BIG_RATE = 0.3

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA

# What a frame must do to the connection.
KEEPS, BREAKS, EITHER = "keeps", "breaks", "either"


# -- the frame generator ---------------------------------------------------------------------------


class Frames:
    """Random frames from a seeded generator: each as ``(kind, expectation, bytes)``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- JSON and Phoenix messages

    def text(self, size: int = 12) -> str:
        rng = self.rng
        alphabet = 'abcXYZ019 _:-/"\\\n\t\u00e9\u4e2d\U0001f600\u0000\u2028'
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))
        return value + "\ud800" if rng.random() < 0.05 else value  # a lone surrogate

    def value(self, depth: int = 0) -> object:
        rng = self.rng
        roll = rng.random()
        if depth > 3 or roll < 0.45:
            return rng.choice(
                [
                    None,
                    True,
                    False,
                    rng.randint(-(2**70), 2**70),
                    rng.uniform(-1e300, 1e300),
                    float("inf"),
                    self.text(),
                    "",
                ]
            )
        if roll < 0.75:
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {self.text(6): self.value(depth + 1) for _ in range(rng.randint(0, 4))}

    def phoenix_message(self) -> bytes:
        """A 5-element Phoenix message, well-formed or not, never closing the live channel."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            topic = TOPIC
            event = rng.choice(["msg", "new_msg", "presence_state", "presence_diff", "phx_reply", "phx_join", ""])
            join_ref = rng.choice([None, "1", "2", 7, [], {}, "stale"])
        elif roll < 0.6:
            # Stale join_ref: must be ignored (phoenix.js isMember), the channel stays joined.
            topic, event, join_ref = TOPIC, rng.choice(["phx_close", "phx_error"]), rng.choice(["stale", "x9"])
        else:
            topic = rng.choice(["other:room", "phoenix", "", "room:*", 3, None, ["x"]])
            event = rng.choice(["phx_close", "phx_error", "phx_reply", "msg", "presence_diff", "heartbeat"])
            join_ref = rng.choice([None, "1", "5", 9])
        ref = rng.choice([None, "1", "999999", "x", 12, -1, []])
        if event == "phx_reply" and rng.random() < 0.7:
            payload: object = {"status": rng.choice(["ok", "error", "", None, 5]), "response": self.value()}
        elif event.startswith("presence") and rng.random() < 0.7:
            payload = rng.choice(
                [
                    {"joins": self.value(), "leaves": self.value()},
                    {"joins": [1, 2], "leaves": {}},
                    {"u1": {"metas": [1, "x", None]}},
                    {self.text(4): {"metas": self.value()}},
                ]
            )
        else:
            payload = self.value()
        parts: list[object] = [join_ref, ref, topic, event, payload]
        if rng.random() < 0.1:
            parts = parts[: rng.randint(0, 4)] + [self.value()] * rng.randint(0, 2)  # the wrong arity
        return json.dumps(parts, allow_nan=True).encode("utf-8", "surrogatepass")

    def junk_json(self) -> bytes:
        rng = self.rng
        return rng.choice(
            [
                lambda: b"[" * 50000 + b"]" * 50000,  # deeper than the recursion limit
                lambda: b'[null,null,"room:fuzz","msg",' + b"9" * 5000 + b"]",  # past int's digit limit
                lambda: b'[null,null,"room:fuzz","msg",{"a":NaN,"b":-Infinity}]',
                lambda: b'[null,null,"room:fuzz","msg",{"a":' + b"1" * 20 + b"}",  # truncated
                lambda: b'{"topic":"room:fuzz","event":"msg"}',  # version 1 shape
                lambda: json.dumps(self.value()).encode(),
                lambda: bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 80))),
                lambda: b"",
            ]
        )()

    def phoenix_binary(self) -> bytes:
        """A Phoenix binary message (push, reply or broadcast), its sizes consistent or not."""
        rng = self.rng
        kind = rng.choice([0, 1, 2, 3, 255])
        fields = [
            rng.choice([b"", b"1", b"stale"]),
            rng.choice([b"", b"7"]),
            rng.choice([TOPIC.encode(), b"other", b""]),
            rng.choice([b"msg", b"ok", b"\xff\xfe", b""]),
        ]
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        sizes = [len(f) for f in fields]
        if rng.random() < 0.3:
            sizes = [rng.randrange(256) for _ in sizes]  # sizes that lie about the fields
        return bytes([kind, *sizes]) + b"".join(fields) + body

    def invalid_utf8(self) -> bytes:
        return self.rng.choice([b"\xff\xfe", b'[null,null,"room:fuzz","msg","\xc3\x28"]', b"\xed\xa0\x80", b"\xc0"])

    def big(self, size: int) -> bytes:
        """A valid broadcast of about ``size`` bytes."""
        head = json.dumps([None, None, TOPIC, "big", {"pad": ""}]).encode()
        return head.replace(b'""', b'"' + b"p" * max(0, size - len(head)) + b'"')

    # -- frames

    def data_message(self) -> tuple[int, bytes]:
        roll = self.rng.random()
        if roll < 0.55:
            return TEXT, self.phoenix_message()
        if roll < 0.75:
            return TEXT, self.junk_json()
        if roll < 0.92:
            return BINARY, self.phoenix_binary()
        return BINARY, self.junk_json()

    def fragmented(self, opcode: int, message: bytes, *, first_empty: bool = False, cut: bool = False) -> bytes:
        """``message`` in pieces, with pings and pongs between them (legal, RFC 6455 5.4).

        With ``cut``, the message stops after a random number of its frames (at
        least the first), unfinished.
        """
        rng = self.rng
        cuts = sorted(rng.sample(range(1, len(message)), min(len(message) - 1, rng.randint(1, 30)))) if message else []
        pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)])]
        if first_empty:
            pieces.insert(0, b"")
        if len(pieces) < 2:
            pieces.append(b"")
        if cut:
            pieces = pieces[: 1 if rng.random() < 0.3 else rng.randint(1, len(pieces) - 1)]
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(frame_bytes(opcode if i == 0 else CONT, piece, fin=last and not cut))
            if not last and rng.random() < 0.2:
                out.append(frame_bytes(rng.choice([PING, PONG]), self.text(20).encode("utf-8", "surrogatepass")[:125]))
        return b"".join(out)

    def keeper(self) -> tuple[str, str, bytes]:
        """A frame that must not end the connection (or, for a few, may: see ``EITHER``)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            opcode, message = self.data_message()
            return "message", KEEPS, frame_bytes(opcode, message)
        if roll < 0.7:
            opcode, message = self.data_message()
            return "fragments", KEEPS, self.fragmented(opcode, message, first_empty=rng.random() < 0.2)
        if roll < 0.8:
            payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 20, 125])))
            return "ping/pong", KEEPS, frame_bytes(rng.choice([PING, PONG]), payload)
        if roll < 0.85:
            return "invalid utf-8", EITHER, frame_bytes(TEXT, self.invalid_utf8())
        if roll < 0.9:
            # A length in a longer encoding than needed: RFC 6455 says minimal, many accept it.
            payload = self.phoenix_message()
            return "long length", EITHER, bytes([0x81, 127]) + struct.pack("!Q", len(payload)) + payload
        return "message", KEEPS, frame_bytes(TEXT, self.phoenix_message())

    def big_frame(self) -> tuple[str, str, bytes]:
        """A message at, just over or far over the limit, whole or fragmented (at most one per batch)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.4:
            return "near limit", KEEPS, frame_bytes(TEXT, self.big(rng.randint(LIMIT - 2048, LIMIT)))
        if roll < 0.6:
            return "near limit fragments", KEEPS, self.fragmented(TEXT, self.big(rng.randint(LIMIT - 2048, LIMIT)))
        if roll < 0.8:
            return "oversize", KEEPS, frame_bytes(rng.choice([TEXT, BINARY]), self.big(LIMIT + rng.randint(1, 4096)))
        return "oversize fragments", KEEPS, self.fragmented(TEXT, self.big(LIMIT + rng.randint(1, 65536)))

    def breaker(self) -> tuple[str, bytes]:
        """A frame after which the connection cannot go on (RFC 6455 5.2-5.5, 7)."""
        rng = self.rng
        message = self.phoenix_message()
        choices: list[tuple[str, Callable[[], bytes]]] = [
            ("reserved bits", lambda: frame_bytes(rng.choice([TEXT, BINARY]), message, rsv=rng.randint(1, 7))),
            ("unknown opcode", lambda: frame_bytes(rng.choice([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]), message)),
            ("fragmented control", lambda: frame_bytes(rng.choice([PING, PONG]), b"abc", fin=False)),
            ("long control", lambda: frame_bytes(rng.choice([PING, PONG, CLOSE]), b"p" * rng.randint(126, 300))),
            ("continuation alone", lambda: frame_bytes(CONT, message, fin=rng.random() < 0.5)),
            (
                "message inside a fragmented one",
                lambda: (
                    self.fragmented(rng.choice([TEXT, BINARY]), message, first_empty=rng.random() < 0.5, cut=True)
                    + frame_bytes(rng.choice([TEXT, BINARY]), message)
                ),
            ),
            (
                "message after an empty first fragment",
                lambda: (
                    frame_bytes(rng.choice([TEXT, BINARY]), b"", fin=False)
                    + frame_bytes(rng.choice([TEXT, BINARY]), message)
                ),
            ),
            (
                "message inside an oversize fragmented one",
                lambda: (
                    frame_bytes(TEXT, self.big(LIMIT + rng.randint(1, 4096)), fin=False)
                    + b"".join(frame_bytes(CONT, b"x" * 100, fin=False) for _ in range(rng.randint(0, 3)))
                    + frame_bytes(rng.choice([TEXT, BINARY]), message)
                ),
            ),
            (
                "masked server frame",
                lambda: bytes([0x81, 0x80 | len(message[:125])]) + b"\x01\x02\x03\x04" + message[:125],
            ),
            ("length top bit", lambda: bytes([0x81, 127]) + struct.pack("!Q", rng.randint(2**63, 2**64 - 1))),
            ("close", self.close_frame),
        ]
        name, make = rng.choice(choices)
        return name, make()

    def close_frame(self) -> bytes:
        rng = self.rng
        if rng.random() < 0.2:
            return frame_bytes(CLOSE, rng.choice([b"", b"\x03"]))
        code = rng.choice([1000, 1001, 1002, 1003, 1008, 1011, 1012, 3000, 4000, 4999, 0, 999, 65535])
        reason = rng.choice([b"", b"bye", b"\xff\xfe", "\u00e9t\u00e9".encode()])
        return frame_bytes(CLOSE, struct.pack("!H", code) + reason)

    def batch(self) -> Batch:
        rng = self.rng
        frames = [self.keeper() for _ in range(rng.randint(10, 40))]
        if rng.random() < BIG_RATE:
            frames.insert(rng.randint(0, len(frames)), self.big_frame())
        if rng.random() < BREAK_RATE:
            name, data = self.breaker()
            frames.insert(rng.randint(0, len(frames)), (name, BREAKS, data))
        return Batch(frames)


@dataclass
class Batch:
    frames: list[tuple[str, str, bytes]]

    @property
    def breaks(self) -> bool:
        return any(expect == BREAKS for _, expect, _ in self.frames)

    @property
    def may_break(self) -> bool:
        return any(expect != KEEPS for _, expect, _ in self.frames)

    def describe(self) -> str:
        return "; ".join(f"{name} {data[:40]!r}{'...' if len(data) > 40 else ''}" for name, _, data in self.frames)


# -- the raw server --------------------------------------------------------------------------------


class Peer:
    """One accepted connection: the test thread sends batches, the server thread answers the client."""

    def __init__(self, conn: RawConnection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, *pieces: bytes) -> bool:
        """Send bytes in one go (replies never land between them); ``False`` if the client is gone.

        Piece by piece, not joined: a copy of the batch would count in the test's memory figures.
        """
        with self.lock:
            try:
                for data in pieces:
                    self.conn.send_raw(data)
            except OSError:
                return False
        return True

    def reply(self, join_ref: object, ref: object, topic: object, response: object) -> None:
        message = [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": response}]
        self.send(frame_bytes(TEXT, json.dumps(message).encode()))


class FuzzServer:
    """Answers joins, heartbeats and ``probe`` pushes like Phoenix; the test sends batches to ``current``."""

    def __init__(self) -> None:
        self.current: Peer | None = None
        self.joined = threading.Condition()
        self.joins = 0
        self.raw = RawServer(self._script)

    def _script(self, conn: RawConnection) -> None:
        conn.accept_upgrade()
        peer = Peer(conn)
        while True:
            try:
                opcode, data = conn.read_frame()
            except (OSError, ConnectionError):
                return
            if opcode == CLOSE:
                return  # the client closed: the raw server closes the socket
            if opcode != TEXT:
                continue
            join_ref, ref, topic, event, payload = json.loads(data)
            if event == "phx_join":
                with self.joined:
                    self.current = peer
                    self.joins += 1
                    self.joined.notify_all()
            if event in ("phx_join", "heartbeat", "phx_leave"):
                peer.reply(join_ref, ref, topic, {})
            elif event == "probe":
                peer.reply(join_ref, ref, topic, payload)


# -- what the client does --------------------------------------------------------------------------


@dataclass
class Observed:
    """Everything the client reported, collected on the dispatcher thread."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    markers: set[int] = field(default_factory=set)
    protocol_errors: list[type[BaseException]] = field(default_factory=list)
    disconnects: list[tuple[object, bool]] = field(default_factory=list)

    def marker(self, payload: dict) -> None:
        with self.cond:
            self.markers.add(payload["n"])
            self.cond.notify_all()

    def protocol_error(self, sender: object, error: BaseException, **_: object) -> None:
        with self.cond:
            self.protocol_errors.append(type(error))  # not the error: its traceback holds the reader's frames

    def disconnected(self, sender: object, code: object, will_reconnect: bool, **_: object) -> None:
        with self.cond:
            self.disconnects.append((code, will_reconnect))

    def joined(self, sender: object, **_: object) -> None:
        with self.cond:
            self.cond.notify_all()  # a waiter checks the reconnect and the channel's state


class ErrorLog(logging.Handler):
    """Formats every ``maxsdk`` record (a hostile frame must not break a log line) and keeps the errors."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if record.levelno >= logging.ERROR:
            self.records.append(line)
        else:
            self.warnings += 1


@pytest.fixture
def escaped() -> Iterator[list[BaseException | None]]:
    """Exceptions that escape any thread."""
    errors: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    yield errors
    threading.excepthook = previous


@contextmanager
def only_to(handler: ErrorLog) -> Iterator[None]:
    """Send the ``maxsdk`` log to ``handler`` alone: pytest keeps every record of a test in memory
    (attaching itself to non-propagating loggers too), and thousands of expected warnings would make
    the tracemalloc figures about pytest, not the client.
    """
    logger = logging.getLogger("maxsdk")
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved


def marker_frame(number: int) -> bytes:
    return frame_bytes(TEXT, json.dumps([None, None, TOPIC, "marker", {"n": number}]).encode())


def test_thousands_of_random_frames_never_kill_a_thread_and_the_client_carries_on(
    escaped: list[BaseException | None],
) -> None:
    error_log = ErrorLog()
    frames = Frames(SEED)
    server = FuzzServer()
    observed = Observed()
    sent_frames = breaking_batches = 0
    with server.raw, only_to(error_log):
        client = maxsdk.Client(
            server.raw.url + "/socket",
            max_message_size=LIMIT,
            # Heartbeats run among the junk; the long timeout keeps load from ending a connection.
            heartbeat_interval=1.0,
            heartbeat_timeout=20.0,
            reconnect=Backoff(steps=(0.01,), jitter="none"),
            rejoin=Backoff(steps=(0.05,), jitter="none"),
            reconnect_on_normal_close=True,  # a random close 1000 would otherwise end the client on purpose
            timeout=15.0,
        )
        try:
            room = client.channel(TOPIC)
            room.on("marker", observed.marker)
            client.on_signal(maxsdk.signals.protocol_error, observed.protocol_error)
            client.on_signal(maxsdk.signals.disconnected, observed.disconnected)
            client.on_signal(maxsdk.signals.channel_joined, observed.joined)
            client.connect(timeout=10)
            room.join(timeout=10)
            threads_before = threading.active_count()
            reader = next(t for t in client.threads if t.name.endswith("reader"))
            tracemalloc.start()
            try:
                for number in range(1, BATCHES + 1):
                    batch = frames.batch()
                    context = f"seed {SEED}, batch {number}: {batch.describe()}"
                    broke = run_batch(client, room, server, observed, number, batch, context)
                    sent_frames += len(batch.frames)
                    breaking_batches += broke
                    # The client still works: a push gets its reply (on the same or the new connection).
                    assert room.push("probe", {"n": number}, timeout=15).response == {"n": number}, context
                    assert not escaped, (escaped, context)
                    assert not error_log.records, (error_log.records, context)
                    assert reader.is_alive(), context
                    assert threading.active_count() <= threads_before + 6, (threading.enumerate(), context)
                left, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            client.close()
    assert not escaped, escaped
    assert not [t for t in client.threads if t.is_alive()]
    # The stream was what it claims: thousands of frames, several connections, typed reports.
    assert sent_frames >= 20 * BATCHES
    assert breaking_batches >= 0.1 * BATCHES
    assert server.joins == breaking_batches + 1
    assert error_log.warnings >= len(observed.protocol_errors) > 0
    assert all(issubclass(e, maxsdk.RemoteProtocolError) for e in observed.protocol_errors)
    assert [will for _, will in observed.disconnects[:breaking_batches]] == [True] * breaking_batches
    # Near-limit messages parsed, oversize ones skipped without buffering: a small multiple of the limit.
    # (The test's own batch bytes count too.) Nothing accumulates from batch to batch.
    assert peak < 12 * LIMIT, f"peak {peak / 2**20:.2f} MiB with max_message_size {LIMIT / 2**20:.2f} MiB"
    assert left < 6 * LIMIT, f"{left / 2**20:.2f} MiB still allocated after {BATCHES} batches"


def run_batch(
    client: maxsdk.Client,
    room: maxsdk.Channel,
    server: FuzzServer,
    observed: Observed,
    number: int,
    batch: Batch,
    context: str,
) -> bool:
    """Send ``batch`` and the marker ``number``; wait for the outcome the batch calls for.

    Returns whether the connection ended (and the client reconnected and rejoined).
    """
    with server.joined:
        peer = server.current
    assert peer is not None
    reconnects_before = client.stats().reconnects  # before the batch: the drop may be instant
    peer.send(*(data for _, _, data in batch.frames), marker_frame(number))

    def reconnected() -> bool:
        return client.stats().reconnects > reconnects_before and room.state is maxsdk.ChannelState.JOINED

    with observed.cond:
        outcome = observed.cond.wait_for(lambda: number in observed.markers or reconnected(), 30)
    assert outcome, (client.diagnostics(), context)
    if batch.breaks:
        assert number not in observed.markers, f"a framing error went unnoticed; {context}"
        return True
    if not batch.may_break:
        assert client.stats().reconnects == reconnects_before, f"the connection ended; {context}"
        return False
    if number in observed.markers:
        return False
    with server.joined:  # the rejoin's reply went out on the new connection before JOINED
        assert server.current is not peer, context
    return True
