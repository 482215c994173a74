"""Fuzzing: a raw server sends random frames; no thread dies, memory stays bounded, the client carries on.

One client and one raw server live for the whole test. Hypothesis draws
batches of frames (valid and invalid Phoenix messages, random bytes, bad
UTF-8, random opcodes and reserved bits, fragments, absurd and lying
lengths, control frames); the server sends each batch followed by a marker
broadcast. After every batch the client must either deliver the marker
(it kept working) or, when the batch broke the framing, have reconnected
and rejoined (a typed error and a reconnect). ``threading.excepthook``
catches any exception escaping any thread.
"""

from __future__ import annotations

import json
import queue
import socket
import struct
import threading
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer, frame_bytes

pytestmark = pytest.mark.timeout(300)

TOPIC = "room:fuzz"
LIMIT = 64 * 1024


def phoenix(event: str, payload: object, ref: str | None = None, join_ref: str | None = "1") -> bytes:
    return json.dumps([join_ref, ref, TOPIC, event, payload]).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.tuples(
        st.sampled_from([None, "1", "2", 7]),
        st.sampled_from([None, "1", "999", "x"]),
        st.sampled_from([TOPIC, "other", "", 3]),
        # Not phx_close/phx_error: those end or restart the channel on purpose (tested elsewhere).
        st.sampled_from(["phx_reply", "msg", "presence_diff", "presence_state", ""]),
        json_values,
    ).map(lambda parts: json.dumps(list(parts)).encode()),
    st.just(b"\xff\xfe not utf-8"),
    st.just(b"[" * 5000),  # deeply nested
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(["text"] * 6 + ["binary", "fragments", "fragments", "control", "weird", "weird", "lying"])
    )
    payload = draw(payloads)
    if kind == "text":
        return frame_bytes(0x1, payload)
    if kind == "binary":
        return frame_bytes(0x2, payload)
    if kind == "fragments":
        cut = draw(st.integers(0, len(payload)))
        middle = frame_bytes(draw(st.sampled_from([0x0, 0x1, 0x9])), b"", fin=False) if draw(st.booleans()) else b""
        return frame_bytes(0x1, payload[:cut], fin=False) + middle + frame_bytes(0x0, payload[cut:])
    if kind == "control":
        opcode = draw(st.sampled_from([0x9, 0xA, 0x8]))
        return frame_bytes(opcode, payload[: draw(st.sampled_from([0, 2, 125, 126]))], fin=draw(st.booleans()))
    if kind == "weird":
        return frame_bytes(draw(st.integers(0, 15)), payload, rsv=draw(st.integers(0, 7)), fin=draw(st.booleans()))
    # A length header that lies: huge, or larger than what follows.
    length = draw(st.sampled_from([LIMIT + 1, 2**31, 2**62, 2**63 + 1, 2**64 - 1, len(payload) + 10]))
    if length >= 2**64:
        length = 2**64 - 1
    head = bytes([0x81, 127]) + struct.pack("!Q", length)
    return head + payload


class FuzzServer:
    """Answers the join like Phoenix, then sends queued batches, each followed by a marker."""

    def __init__(self) -> None:
        self.batches: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.raw = RawServer(self._script)

    def _script(self, conn: RawConnection) -> None:
        conn.accept_upgrade()
        send_lock = threading.Lock()
        joined = threading.Event()

        def answer() -> None:
            """Reply to joins and heartbeats like Phoenix (so a swallowed reply is what ends a connection)."""
            try:
                while True:
                    opcode, data = conn.read_frame()
                    if opcode != 0x1:
                        continue
                    join_ref, ref, topic, event, _ = json.loads(data)
                    if event in ("phx_join", "heartbeat"):
                        reply = json.dumps([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}])
                        with send_lock:
                            conn.send_frame(0x1, reply.encode())
                        if event == "phx_join":
                            joined.set()
            except (OSError, ConnectionError, ValueError):
                return

        reader = threading.Thread(target=answer, name="fuzz-answer", daemon=True)
        reader.start()
        try:
            while not joined.wait(0.1):
                if self.raw.stopping.is_set() or not reader.is_alive():
                    return
            while not self.raw.stopping.is_set() and reader.is_alive():
                try:
                    number, batch = self.batches.get(timeout=0.1)
                except queue.Empty:
                    continue
                with send_lock:
                    conn.send_raw(batch)
                    conn.send_frame(0x1, phoenix("marker", {"n": number}, join_ref=None))
        finally:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            reader.join(5)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[FuzzServer]:
    server = FuzzServer()
    with server.raw:
        yield server


@pytest.fixture(scope="module")
def escaped() -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value or RuntimeError(str(args)))
    yield errors
    threading.excepthook = previous


class Markers:
    """Marker broadcasts the client delivered, with a condition to wait on."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.cond = threading.Condition()

    def marker(self, payload: dict) -> None:
        with self.cond:
            self.seen.add(payload["n"])
            self.cond.notify_all()


def send_batch(server: FuzzServer, client: maxsdk.Client, room: maxsdk.Channel, markers: Markers, batch: bytes) -> int:
    """Have the server send ``batch`` then a marker; wait until the client delivered the marker or,
    if the batch broke the connection, reconnected and rejoined. Returns the marker's number, or 0
    when it was lost with the connection.
    """
    number = next(counter)
    reconnects_before = client.stats().reconnects  # before the batch goes out: the drop may be instant
    server.batches.put((number, batch))

    def recovered() -> bool:
        return client.stats().reconnects > reconnects_before and room.state is maxsdk.ChannelState.JOINED

    with markers.cond:
        assert markers.cond.wait_for(lambda: number in markers.seen or recovered(), 20), client.diagnostics()
        return number if number in markers.seen else 0


@pytest.fixture(scope="module")
def fuzzed_client(fuzz_server: FuzzServer) -> Iterator[tuple[maxsdk.Client, maxsdk.Channel, Markers]]:
    markers = Markers()
    client = maxsdk.Client(
        fuzz_server.raw.url + "/socket",
        max_message_size=LIMIT,
        # A lying length swallows what follows, heartbeat replies included: the heartbeat timeout ends it.
        heartbeat_interval=0.3,
        heartbeat_timeout=0.3,
        reconnect=Backoff(steps=(0.01,), jitter="none"),
    )
    room = client.channel(TOPIC)
    room.on("marker", markers.marker)
    client.connect(timeout=10)
    room.join(timeout=10)
    yield client, room, markers
    client.close()


batches = st.lists(frames(), min_size=1, max_size=8).map(b"".join)
counter = iter(range(1, 10**9))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(batch=batches)
def test_random_frames_never_kill_a_thread_and_the_client_carries_on(
    batch: bytes, fuzz_server: FuzzServer, fuzzed_client, escaped: list[BaseException]
) -> None:
    client, room, markers = fuzzed_client
    if not send_batch(fuzz_server, client, room, markers, batch):
        # The recovered connection works: a clean batch's marker arrives.
        assert send_batch(fuzz_server, client, room, markers, b""), client.diagnostics()
    assert not escaped, escaped
    assert all(t.is_alive() for t in client.threads if t.name.endswith(("reader", "timer")))


def test_memory_stays_bounded_under_lying_lengths_and_fragments(fuzz_server: FuzzServer, fuzzed_client) -> None:
    client, room, markers = fuzzed_client
    tracemalloc.start()
    try:
        for i in range(20):
            lies = bytes([0x81, 127]) + struct.pack("!Q", 2**62) + b"x" * 1000
            fragments = frame_bytes(0x1, b"[", fin=False) + b"".join(
                frame_bytes(0x0, b" ", fin=False) for _ in range(5000)
            )
            send_batch(fuzz_server, client, room, markers, (lies if i % 2 else fragments) + frame_bytes(0x0, b"]"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * LIMIT + 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
