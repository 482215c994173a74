"""permessage-deflate: negotiation, the codec, bounded inflation, and real peers.

Peers: the ``websockets`` library's server (it implements RFC 7692) and a
hostile raw-socket server sending a compressed "zip bomb".
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

import maxsdk
from maxsdk import Deflate
from maxsdk._runtime.deflate import negotiate
from maxsdk._runtime.transport import TEXT, TransportOptions, open_websocket
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(60)

MESSAGE = json.dumps({"topic": "room:lobby", "rows": [{"id": i, "name": f"user {i}", "ok": True} for i in range(90)]})


# -- negotiation ----------------------------------------------------------------------------------


def test_the_offer_lists_the_chosen_options():
    assert Deflate().offer() == "permessage-deflate; client_max_window_bits"
    offer = Deflate(
        client_no_context_takeover=True,
        server_no_context_takeover=True,
        client_max_window_bits=10,
        server_max_window_bits=12,
    ).offer()
    assert offer == (
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
        "client_max_window_bits=10; server_max_window_bits=12"
    )


def test_negotiation_takes_what_the_server_answers():
    assert negotiate(Deflate(), None) is None  # declined: uncompressed
    session = negotiate(Deflate(), "permessage-deflate; server_no_context_takeover; client_max_window_bits=11")
    assert session is not None
    assert session.server_no_context_takeover and not session.client_no_context_takeover


@pytest.mark.parametrize(
    "answer",
    [
        "x-webkit-deflate-frame",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_max_window_bits=8",
    ],
)
def test_an_answer_we_did_not_offer_is_refused(answer):
    with pytest.raises(maxsdk.RemoteProtocolError):
        negotiate(Deflate(), answer)


def test_a_server_may_not_widen_the_window_we_asked_for():
    with pytest.raises(maxsdk.RemoteProtocolError):
        negotiate(Deflate(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=12")


def test_invalid_settings_are_configuration_errors():
    for bad in ({"client_max_window_bits": 8}, {"server_max_window_bits": 16}, {"level": 10}, {"min_size": -1}):
        with pytest.raises(maxsdk.ConfigurationError):
            Deflate(**bad)
    with pytest.raises(maxsdk.ConfigurationError):
        maxsdk.Client("ws://h/socket", compression="yes")


# -- the codec --------------------------------------------------------------------------------------


def _pair(**options):
    """A client-side codec and a matching peer codec (its sender compresses, our reader inflates)."""
    settings = Deflate(**options)
    ours = negotiate(settings, settings.offer().replace("client_max_window_bits", "client_max_window_bits=15"))
    assert ours is not None
    return ours


def _peer_compress(compressor, data: bytes) -> bytes:
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def test_round_trip_and_context_takeover_shrinks_repeated_messages():
    ours = _pair()
    peer_inflate = zlib.decompressobj(-15)
    sizes = []
    for _ in range(3):
        payload = ours.compress(MESSAGE.encode())
        sizes.append(len(payload))
        assert peer_inflate.decompress(payload + b"\x00\x00\xff\xff") == MESSAGE.encode()
    assert sizes[1] < sizes[0] / 4  # the window still holds the first copy


def test_client_no_context_takeover_compresses_every_message_alone():
    ours = _pair(client_no_context_takeover=True)
    sizes = []
    for _ in range(3):
        payload = ours.compress(MESSAGE.encode())
        sizes.append(len(payload))
        assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") == MESSAGE.encode()  # alone
    assert sizes[0] == sizes[1] == sizes[2]


def test_inflation_is_bounded_by_the_limit_a_zip_bomb_costs_nothing():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b""
    chunk = bytes(1 << 20)
    for _ in range(1024):  # 1 GiB of zeros -> about 1 MB compressed
        bomb += compressor.compress(chunk)
    bomb += compressor.flush(zlib.Z_SYNC_FLUSH)
    ours = _pair()
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(maxsdk.MessageTooLargeError):
        ours.decompress(bomb[:-4], 1 << 20)
    cpu = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 << 20, peak  # never near the 1 GiB it would inflate to
    assert cpu < 1.0, cpu
    assert not ours.usable  # the shared window is lost: the connection must close


def test_without_server_context_takeover_a_refused_message_leaves_the_codec_usable():
    ours = negotiate(Deflate(server_no_context_takeover=True), "permessage-deflate; server_no_context_takeover")
    assert ours is not None
    big = _peer_compress(zlib.compressobj(6, zlib.DEFLATED, -15), bytes(100_000))
    with pytest.raises(maxsdk.MessageTooLargeError):
        ours.decompress(big, 1000)
    assert ours.usable
    small = _peer_compress(zlib.compressobj(6, zlib.DEFLATED, -15), b"hello")
    assert ours.decompress(small, 1000) == b"hello"


# -- against the websockets library's server ------------------------------------------------------------


@pytest.fixture
def websockets_echo() -> Iterator[tuple[str, list]]:
    """An echo server of the ``websockets`` library (permessage-deflate on); yields (url, negotiated extensions)."""
    from websockets.sync.server import serve

    negotiated: list = []

    def echo(connection):
        negotiated.append(list(connection.protocol.extensions))
        for message in connection:
            connection.send(message)

    server = serve(echo, "127.0.0.1", 0, compression="deflate")
    thread = threading.Thread(target=server.serve_forever, name="websockets-echo")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/", negotiated
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize(
    "settings",
    [
        Deflate(),
        Deflate(client_no_context_takeover=True, server_no_context_takeover=True),
        Deflate(server_max_window_bits=10),
    ],
    ids=["takeover", "no-takeover", "small-window"],
)
def test_compressed_echo_with_the_websockets_server(websockets_echo, settings):
    url, negotiated = websockets_echo
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with FaultProxy(("127.0.0.1", port)) as proxy:
        transport = open_websocket(proxy.rewrite(url), TransportOptions(compression=settings), redacted_url=url)
        try:
            assert transport.deflate is not None
            for n in range(20):
                message = MESSAGE.replace("room:lobby", f"room:{n}")
                transport.send(message)
                assert transport.recv() == (TEXT, message)
            transport.send("short")  # under min_size: sent uncompressed, still fine
            assert transport.recv() == (TEXT, "short")
        finally:
            transport.close()
            transport.abort()
        compressed_bytes = proxy.stats().bytes_upstream
    assert negotiated and negotiated[0], "the server negotiated permessage-deflate"
    assert compressed_bytes < 20 * len(MESSAGE) / 3  # well under the raw size on the wire


def test_compression_off_by_default_and_declined_by_our_server(phoenix_server):
    with maxsdk.Client(phoenix_server.url, compression=True) as client:  # offered, not accepted
        room = client.join("room:lobby")
        assert room.push("echo", {"text": MESSAGE}).response == {"text": MESSAGE}
        assert client._engine._transport is not None and client._engine._transport.deflate is None
    assert maxsdk.Client(phoenix_server.url).config.compression is None


# -- a hostile server: the zip bomb ----------------------------------------------------------------------


def _raw_deflate_server(
    frames: list[bytes], *, answer: bytes = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
) -> tuple[socket.socket, threading.Thread, list[bytes]]:
    """Accept one WebSocket upgrade (answering with ``answer``), send ``frames``, record what comes back."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n" + answer + b"\r\n"
            )
            for frame in frames:
                conn.sendall(frame)
            conn.settimeout(5)
            try:
                while chunk := conn.recv(65536):
                    received.append(chunk)
            except OSError:
                pass

    thread = threading.Thread(target=serve, name="zip-bomb-server")
    thread.start()
    return listener, thread, received


def _frame(payload: bytes, *, rsv1: bool) -> bytes:
    b0 = 0x80 | (0x40 if rsv1 else 0) | TEXT
    length = len(payload)
    if length < 126:
        return bytes([b0, length]) + payload
    if length < 1 << 16:
        return bytes([b0, 126]) + struct.pack("!H", length) + payload
    return bytes([b0, 127]) + struct.pack("!Q", length) + payload


def test_a_zip_bomb_from_a_raw_server_is_refused_without_inflating_it():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(512))  # 512 MiB of zeros
    bomb = (bomb + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    listener, thread, received = _raw_deflate_server([_frame(bomb, rsv1=True)])
    try:
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        options = TransportOptions(compression=Deflate(), max_message_size=1 << 20)
        transport = open_websocket(url, options, redacted_url=url)
        assert transport.deflate is not None
        tracemalloc.start()
        with pytest.raises(maxsdk.MessageTooLargeError):
            transport.recv()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 16 << 20, peak
        with pytest.raises(maxsdk.ConnectionLostError):  # closed with 1009: the window is lost
            transport.recv()
        thread.join(10)
        close = b"".join(received)
        assert close[:1] == b"\x88"  # a close frame (masked) reached the server...
        mask = close[2:6]
        code = bytes(b ^ mask[i % 4] for i, b in enumerate(close[6:8]))
        assert struct.unpack("!H", code)[0] == 1009  # ...with 1009 message too big
    finally:
        listener.close()
        thread.join(10)


def test_rsv1_without_negotiation_is_a_protocol_error():
    payload = _peer_compress(zlib.compressobj(6, zlib.DEFLATED, -15), b'{"a":1}')
    listener, thread, _ = _raw_deflate_server([_frame(payload, rsv1=True)], answer=b"")
    try:
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        transport = open_websocket(url, TransportOptions(), redacted_url=url)  # no offer made
        with pytest.raises(maxsdk.ConnectionLostError) as caught:
            transport.recv()
        assert caught.value.code == 1002
    finally:
        listener.close()
        thread.join(10)


def test_an_extension_the_client_did_not_offer_fails_the_attempt():
    # RFC 6455 4.1: the client fails the connection when the server answers with an extension it did not ask for.
    listener, thread, _ = _raw_deflate_server([])
    try:
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(maxsdk.ConnectFailedError, match="did not offer"):
            open_websocket(url, TransportOptions(), redacted_url=url)
    finally:
        listener.close()
        thread.join(10)


def test_a_compressed_message_from_a_raw_server_is_inflated():
    payload = _peer_compress(zlib.compressobj(6, zlib.DEFLATED, -15), MESSAGE.encode())
    listener, thread, _ = _raw_deflate_server([_frame(payload, rsv1=True), _frame(b"plain", rsv1=False)])
    try:
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        transport = open_websocket(url, TransportOptions(compression=Deflate()), redacted_url=url)
        assert transport.recv() == (TEXT, MESSAGE)
        assert transport.recv() == (TEXT, "plain")
        transport.close()
        transport.abort()
    finally:
        listener.close()
        thread.join(10)


# -- the whole client against a compressing peer -------------------------------------------------------


@pytest.fixture
def compressing_phoenix_peer() -> Iterator[tuple[int, list]]:
    """A minimal Phoenix V2 peer on the ``websockets`` server, compression on; yields (port, negotiated)."""
    from websockets.sync.server import serve

    negotiated: list = []

    def session(connection):
        negotiated.append([type(e).__name__ for e in connection.protocol.extensions])
        for text in connection:
            join_ref, ref, topic, event, payload = json.loads(text)
            response = payload if event == "echo" else {}
            connection.send(json.dumps([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": response}]))
            if event == "flood":
                for i in range(payload["n"]):
                    connection.send(json.dumps([join_ref, None, topic, "flood_msg", {"i": i, "text": MESSAGE}]))

    server = serve(session, "127.0.0.1", 0, compression="deflate")
    thread = threading.Thread(target=server.serve_forever, name="websockets-phoenix")
    thread.start()
    try:
        yield server.socket.getsockname()[1], negotiated
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize(
    "compression",
    [True, Deflate(client_no_context_takeover=True, server_no_context_takeover=True)],
    ids=["takeover", "no-takeover"],
)
def test_a_client_with_compression_joins_pushes_and_receives_through_a_compressing_peer(
    compressing_phoenix_peer, compression
):
    port, negotiated = compressing_phoenix_peer
    with FaultProxy(("127.0.0.1", port)) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/socket/websocket"
        received: list[int] = []
        done = threading.Event()

        def on_flood(payload: dict) -> None:
            assert payload["text"] == MESSAGE
            received.append(payload["i"])
            if len(received) == 200:
                done.set()

        with maxsdk.Client(url, compression=compression, heartbeat_interval=0.1) as client:
            room = client.join("room:lobby")
            room.on("flood_msg", on_flood)
            for n in range(20):
                assert room.push("echo", {"n": n, "text": MESSAGE}).response == {"n": n, "text": MESSAGE}
            room.push("flood", {"n": 200})
            assert done.wait(20) and received == list(range(200))
            assert client.ping(5) >= 0  # heartbeats go through the compressed stream too
        stats = proxy.stats()
    assert negotiated == [["PerMessageDeflate"]]
    # 20 echoes and 200 events of ~4 KB each way, far fewer bytes on the wire.
    assert stats.bytes_upstream < 20 * len(MESSAGE) / 3
    assert stats.bytes_downstream < 220 * len(MESSAGE) / 3
