"""Hostile framing: fragment floods and absurd lengths cost what was sent, never what was claimed."""

from __future__ import annotations

import json
import threading
import tracemalloc

import pytest

import maxsdk
from maxsdk import Backoff
from tests.support.rawserver import RawConnection, RawServer, frame_bytes

pytestmark = pytest.mark.timeout(90)


def client_for(server: RawServer, **options) -> maxsdk.Client:
    options.setdefault("reconnect", Backoff(steps=(0.05,), jitter="none"))
    options.setdefault("heartbeat_interval", 30.0)
    return maxsdk.Client(server.url + "/socket", **options)


@pytest.fixture
def thread_errors():
    """Every exception that escapes a thread during the test."""
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    yield errors
    threading.excepthook = previous


def fragmented(message: bytes, piece: int = 1) -> bytes:
    chunks = [message[i : i + piece] for i in range(0, len(message), piece)]
    frames = [frame_bytes(0x1, chunks[0], fin=False)]
    frames += [frame_bytes(0x0, chunk, fin=False) for chunk in chunks[1:-1]]
    frames.append(frame_bytes(0x0, chunks[-1], fin=True))
    return b"".join(frames)


def test_a_message_in_one_byte_fragments_costs_a_small_multiple_of_its_size() -> None:
    size = 512 * 1024
    body = json.dumps({"pad": "y" * (size - 12)}).encode()
    event = json.dumps([None, None, "room:lobby", "big", "PAYLOAD"]).encode()
    message = event.replace(b'"PAYLOAD"', body)
    wire = fragmented(message)
    go = threading.Event()

    def script(conn: RawConnection) -> None:
        conn.accept_upgrade()
        go.wait(30)
        conn.send_raw(wire)
        conn.hold()

    received = threading.Event()
    with RawServer(script) as server:
        client = client_for(server, max_message_size=4 * 1024 * 1024)
        try:
            client.connect(timeout=5)
            client.on_signal(maxsdk.signals.message_received, lambda sender, **kw: received.set())
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                go.set()
                assert received.wait(60), "the fragmented message never arrived"
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            client.close()
    # The message once in the reassembly buffer, once decoded, once parsed, plus read buffers.
    assert peak < 6 * len(message) + 2 * 1024 * 1024, (
        f"peak {peak / 2**20:.1f} MiB for a {len(message) / 2**20:.1f} MiB message"
    )


@pytest.mark.parametrize("declared", [1 << 62, (1 << 63) + 1])
def test_an_absurd_length_with_no_size_limit_is_survived_and_reconnected(declared: int, thread_errors) -> None:
    connections = []

    def script(conn: RawConnection) -> None:
        connections.append(conn)
        conn.accept_upgrade()
        if len(connections) == 1:
            conn.send_frame(0x1, b"just a few bytes", length=declared)
            return  # the connection closes with the frame unfinished
        conn.hold()

    with RawServer(script) as server:
        client = client_for(server, max_message_size=None)
        try:
            client.connect(timeout=5)
            assert server.wait_for_connections(2, timeout=10), "the client did not reconnect"
            assert not client.closed
        finally:
            client.close()
    assert thread_errors == []


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(frame_bytes(0x1, b"", fin=False), id="after-an-empty-first-fragment"),
        pytest.param(frame_bytes(0x1, b"x" * 5000, fin=False), id="inside-an-oversize-fragmented-message"),
        pytest.param(
            frame_bytes(0x1, b"x" * 5000, fin=False) + frame_bytes(0x0, b"y" * 10, fin=False),
            id="inside-an-oversize-message-after-its-continuation",
        ),
    ],
)
def test_a_new_message_inside_a_fragmented_one_is_a_protocol_error(opening: bytes, thread_errors) -> None:
    """RFC 6455 5.4: a data frame other than a continuation before the fragmented message ended
    fails the connection: never delivered, never swallowed as part of the skipped message.
    """
    intruder = json.dumps([None, None, "room:lobby", "intruder", {}]).encode()
    connections = []

    def script(conn: RawConnection) -> None:
        connections.append(conn)
        conn.accept_upgrade()
        if len(connections) == 1:
            conn.send_raw(opening + frame_bytes(0x1, intruder))
        conn.hold()

    delivered = []
    with RawServer(script) as server:
        client = client_for(server, max_message_size=4096)
        client.on_signal(maxsdk.signals.message_received, lambda sender, message, **kw: delivered.append(message))
        try:
            client.connect(timeout=5)
            assert server.wait_for_connections(2, timeout=10), "the framing error went unnoticed"
        finally:
            client.close()
    assert [m for m in delivered if m.event == "intruder"] == []
    assert thread_errors == []
