"""The WebSocket frame reader over a socket pair: text as str, bad UTF-8, fragments, limits, pings."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from maxsdk._runtime.transport import BINARY, CLOSE, TEXT, WebSocketTransport, masked_frame
from maxsdk.errors import ConnectionLostError, MessageTooLargeError, RemoteProtocolError


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse the (masked) frames a client wrote: ``(opcode, unmasked payload)``."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        length, pos = b1 & 0x7F, pos + 2
        if length == 126:
            length, pos = struct.unpack_from("!H", data, pos)[0], pos + 2
        elif length == 127:
            length, pos = struct.unpack_from("!Q", data, pos)[0], pos + 8
        assert b1 & 0x80, "client frames are masked"
        mask, pos = data[pos : pos + 4], pos + 4
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data[pos : pos + length]))
        frames.append((b0 & 0x0F, payload))
        pos += length
    return frames


def frame(payload: bytes, opcode: int = TEXT, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes((first, n))
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    transport = WebSocketTransport(ours, 1000, "ws://test/socket/websocket")
    yield transport, theirs, None
    transport.release()
    theirs.close()


def test_text_frames_come_back_as_str_and_binary_as_bytes(pair):
    transport, peer, _ = pair
    peer.sendall(frame('["1",null,"t","e",{"é":1}]'.encode()) + frame(b"\x00\x01", BINARY))
    assert transport.recv() == (TEXT, '["1",null,"t","e",{"é":1}]')
    assert transport.recv() == (BINARY, b"\x00\x01")


def test_invalid_utf8_is_reported_and_the_next_frame_still_arrives(pair):
    transport, peer, _ = pair
    peer.sendall(frame(b"\xff\xfe not utf-8") + frame(b"[1]"))
    with pytest.raises(RemoteProtocolError):
        transport.recv()
    assert transport.recv() == (TEXT, "[1]")


def test_fragmented_text_is_joined_and_decoded(pair):
    transport, peer, _ = pair
    text = "héllo ☃ world".encode()
    peer.sendall(frame(text[:3], TEXT, fin=False) + frame(text[3:8], 0x0, fin=False) + frame(text[8:], 0x0))
    assert transport.recv() == (TEXT, "héllo ☃ world")


def test_oversize_messages_are_skipped_without_buffering_and_the_stream_continues(pair):
    transport, peer, _ = pair
    peer.sendall(frame(b"x" * 5000) + frame(b"a" * 600, TEXT, fin=False) + frame(b"b" * 600, 0x0) + frame(b"[2]"))
    with pytest.raises(MessageTooLargeError):
        transport.recv()
    with pytest.raises(MessageTooLargeError) as info:
        transport.recv()
    assert info.value.size == 1200
    assert transport.recv() == (TEXT, "[2]")


def test_pings_are_answered_and_close_frames_reported(pair):
    transport, peer, _ = pair
    peer.sendall(frame(b"hb", 0x9) + frame(struct.pack("!H", 1001) + b"bye", 0x8))
    assert transport.recv() == (CLOSE, (1001, "bye"))
    transport.abort()
    written = b""
    while chunk := peer.recv(65536):
        written += chunk
    frames = client_frames(written)
    assert (0xA, b"hb") in frames
    assert any(opcode == 0x8 for opcode, _ in frames), "the close is answered"


def test_masked_server_frames_and_eof_end_the_connection(pair):
    transport, peer, _ = pair
    peer.sendall(bytes((0x81, 0x80 | 1)) + b"mask" + b"x")
    with pytest.raises(ConnectionLostError) as info:
        transport.recv()
    assert info.value.code == 1002


def test_eof_without_a_close_frame_is_a_lost_connection(pair):
    transport, peer, _ = pair
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionLostError) as info:
        transport.recv()
    assert info.value.code == 1006


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
def test_frames_we_write_are_masked_final_frames_of_the_exact_payload(size):
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    data = masked_frame(BINARY, payload)
    assert data[0] == 0x80 | BINARY  # FIN, no RSV bits
    assert client_frames(data) == [(BINARY, payload)]
    # The same bytes as websocket-client's reference encoder would send, once unmasked.
    import websocket

    key = data[len(data) - size - 4 : len(data) - size]
    reference = websocket.ABNF(1, 0, 0, 0, BINARY, 1, payload)
    reference.get_mask_key = lambda _n: key
    assert reference.format() == data


def test_compressed_frames_set_rsv1_and_two_frames_get_different_mask_keys():
    one, two = masked_frame(TEXT, b"abcd", rsv1=True), masked_frame(TEXT, b"abcd")
    assert one[0] == 0xC0 | TEXT and two[0] == 0x80 | TEXT
    assert client_frames(one) == client_frames(two) == [(TEXT, b"abcd")]
    keys = {masked_frame(TEXT, b"abcd")[2:6] for _ in range(20)}
    assert len(keys) > 1  # a fresh random key per frame (RFC 6455 §5.3)


def test_encode_writes_text_binary_and_ping_frames(pair):
    from maxsdk.protocol.handler import WebSocketPing

    transport, _, _ = pair
    assert client_frames(transport.encode("héllo")) == [(TEXT, "héllo".encode())]
    assert client_frames(transport.encode(b"\x00\xff")) == [(BINARY, b"\x00\xff")]
    assert client_frames(transport.encode(WebSocketPing(b"hb"))) == [(0x9, b"hb")]
    with pytest.raises(ValueError):
        transport.encode(WebSocketPing(b"x" * 126))


def test_bounded_writes_to_a_peer_that_stops_reading_come_back_short_and_finish_in_order():
    listener = socket.create_server(("127.0.0.1", 0))
    ours = socket.create_connection(listener.getsockname())
    theirs, _ = listener.accept()
    listener.close()
    ours.settimeout(5.0)  # as open_websocket leaves it: a timeout socket (non-blocking descriptor)
    transport = WebSocketTransport(ours, None, "ws://test/socket/websocket", 5.0)
    try:
        assert transport._nonblocking is not None  # plain TCP with a write timeout: the fast first try
        small = masked_frame(TEXT, b"[1]")
        assert transport.write(small, 0.05) == len(small)
        big = masked_frame(BINARY, b"x" * (8 * 1024 * 1024))
        sent = transport.write(big, 0.05)  # the peer reads nothing: the socket buffers fill up
        assert 0 < sent < len(big) and transport._partial
        received = bytearray()

        def drain() -> None:
            while len(received) < len(small) + len(big):
                chunk = theirs.recv(1 << 20)
                if not chunk:
                    return
                received.extend(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        assert transport.write(memoryview(big)[sent:]) == len(big) - sent  # unbounded: all of it
        reader.join(30)
        assert not transport._partial
        assert client_frames(bytes(received)) == [(TEXT, b"[1]"), (BINARY, b"x" * (8 * 1024 * 1024))]
    finally:
        transport.release()
        theirs.close()
    assert transport._nonblocking is not None and transport._nonblocking.fileno() == -1  # closed with it


def _mixed_stream(seed: int) -> bytes:
    """Frames of every kind the reader takes apart, in a seeded random order, then a close."""
    import random

    rng = random.Random(seed)
    frames = []
    for n in range(400):
        pick = rng.random()
        size = rng.choice([0, 1, 50, 125, 126, 127, 1000, 65535, 65536, 70000, 80000])
        body = f'["1",null,"t","e",{n}]'.encode().ljust(size, b" ") if size >= 30 else f"[{n}]".encode()
        if pick < 0.6:
            frames.append(frame(body))
        elif pick < 0.7:
            frames.append(frame(bytes([n % 256]) * 3, BINARY))
        elif pick < 0.75:
            frames.append(frame(b"hb", 0x9))  # a ping (answered, not returned)
        elif pick < 0.8:
            frames.append(frame(b"\xff\xfe" + body))  # not UTF-8: reported, then the stream goes on
        elif pick < 0.85:
            frames.append(frame(b"x" * 75000))  # over max_message_size: skipped unbuffered, reported
        else:
            frames.append(frame(body[:10], TEXT, fin=False) + frame(b"hb", 0x9) + frame(body[10:], 0x0))
    return b"".join(frames) + frame(struct.pack("!H", 1000), CLOSE)


def _events(read) -> list:
    events = []
    while True:
        try:
            batch = read()
        except (RemoteProtocolError, MessageTooLargeError) as exc:
            events.append(("error", type(exc).__name__))
            continue
        for kind, data in batch:
            events.append((kind, data))
            if kind == CLOSE:
                return events


def _read_all(wire: bytes, limit: int | None) -> tuple[list, list[int]]:
    """Feed ``wire`` to a transport; read it with recv() (``limit=None``) or recv_many(limit)."""
    ours, theirs = socket.socketpair()
    transport = WebSocketTransport(ours, 70000, "ws://test/socket/websocket")
    sender = threading.Thread(target=theirs.sendall, args=(wire,))

    def drain() -> None:  # pongs and our close frame
        while theirs.recv(65536):
            pass

    drainer = threading.Thread(target=drain)
    sender.start()
    drainer.start()
    sizes: list[int] = []

    def read() -> list:
        if limit is None:
            return [transport.recv()]
        batch = transport.recv_many(limit)
        sizes.append(len(batch))
        return batch

    try:
        return _events(read), sizes
    finally:
        sender.join(30)
        transport.release()
        theirs.shutdown(socket.SHUT_RDWR)
        drainer.join(30)
        theirs.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("limit", [1, 7, 128])
def test_batched_reads_return_exactly_what_single_reads_do_in_the_same_order(seed, limit):
    wire = _mixed_stream(seed)
    single, _ = _read_all(wire, None)
    batched, sizes = _read_all(wire, limit)
    assert batched == single
    assert sum(1 for e in single if e[0] == "error") > 0 and sum(1 for e in single if e[0] == TEXT) > 100
    assert max(sizes) <= limit
    if limit > 1:
        assert max(sizes) > 1, "several buffered messages came in one batch"


def test_abort_wakes_a_blocked_reader_and_keeps_the_descriptor_until_the_reader_releases_it(pair):
    """Closing the descriptor from another thread would let a new socket take its number under the reader."""
    transport, _, _ = pair
    fileno = transport._sock.fileno()
    woke: list[BaseException] = []

    def read() -> None:
        try:
            transport.recv()
        except BaseException as exc:
            woke.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    transport.abort()
    reader.join(5)
    assert not reader.is_alive() and isinstance(woke[0], ConnectionLostError)
    assert transport._sock.fileno() == fileno, "abort() shuts the socket down but leaves the descriptor"
    newcomer = socket.socket()
    try:
        assert newcomer.fileno() != fileno, "the number is still ours: no other socket can take it"
    finally:
        newcomer.close()
    transport.release()
    assert transport._sock.fileno() == -1
    transport.release()  # idempotent
