"""A hostile long-poll server: the same limits and typed errors as WebSocket (issue 13, item 8).

Deeply nested JSON is a typed error on connect and a lost connection (then a
reconnect) mid-session, never a ``RecursionError``; ``max_message_size``
drops larger messages as it does on WebSocket, and bounds the answer bodies.
"""

from __future__ import annotations

import sys
import threading

import pytest

import maxsdk
from maxsdk import signals

from .rawlongpoll import RawLongPollServer

pytestmark = pytest.mark.timeout(60)

NESTED = b"[" * (sys.getrecursionlimit() * 20) + b"]" * (sys.getrecursionlimit() * 20)
NESTED_OBJECT = b'{"status":200,"token":"x","messages":' + NESTED + b"}"


def _client(server: RawLongPollServer, **options: object) -> maxsdk.Client:
    return maxsdk.Client(server.url, transport="longpoll", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "inside-the-envelope"])
def test_a_deeply_nested_opening_answer_is_a_typed_error_not_a_recursion_error(body):
    with RawLongPollServer() as server:
        server.open_bodies.extend([body] * 50)
        client = _client(server, reconnect=False)
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=5)
            chain = [caught.value, caught.value.__cause__, caught.value.__context__]
            assert not any(isinstance(e, RecursionError) for e in chain), chain
            handshake = next(e for e in chain if isinstance(e, maxsdk.HandshakeError))
            assert "nested too deeply" in str(handshake) or "not JSON" in str(handshake)
        finally:
            client.close()


def test_a_deeply_nested_poll_answer_mid_session_reconnects_and_rejoins():
    with RawLongPollServer() as server:
        client = _client(server)
        lost = threading.Event()
        client.on_signal(signals.disconnected, lambda sender, **kw: lost.set())
        try:
            client.connect(timeout=10)
            room = client.join("room:deep", timeout=10)
            assert room.push("echo", {"n": 1}, timeout=10).response == {"n": 1}
            server.poll_bodies.append(NESTED_OBJECT)
            assert lost.wait(10), "the nested answer did not end the session"
            assert server.wait_for(lambda: server.sessions >= 2 and server.joins.count("room:deep") >= 2)
            assert room.push("echo", {"n": 2}, timeout=10).response == {"n": 2}
            assert not client.closed
        finally:
            client.close()


def test_max_message_size_drops_larger_long_poll_messages_like_websocket():
    with RawLongPollServer() as server:
        client = _client(server, max_message_size=4096)
        errors: list[BaseException] = []
        reported = threading.Event()

        def on_error(sender: object, error: BaseException) -> None:
            errors.append(error)
            reported.set()

        client.on_signal(signals.protocol_error, on_error)
        got: list[object] = []
        small = threading.Event()
        try:
            client.connect(timeout=10)
            room = client.join("room:big", timeout=10)
            room.on("big", got.append)
            room.on("small", lambda payload: small.set())
            server.push("room:big", "big", {"blob": "x" * 65536})
            server.push("room:big", "small", {})
            assert small.wait(10)
            assert reported.wait(10)
            assert got == []  # the 64 KiB message was never delivered
            assert isinstance(errors[0], maxsdk.MessageTooLargeError)
            assert errors[0].limit == 4096 and errors[0].size > 65536
            assert client.connected and server.sessions == 1  # dropped, the session carries on
        finally:
            client.close()


def test_an_answer_body_beyond_the_bound_ends_the_session_with_1009_and_reconnects():
    with RawLongPollServer() as server:
        client = _client(server, max_message_size=4096)
        lost: list[dict[str, object]] = []
        gone = threading.Event()

        def on_lost(sender: object, **kwargs: object) -> None:
            lost.append(kwargs)
            gone.set()

        client.on_signal(signals.disconnected, on_lost)
        try:
            client.connect(timeout=10)
            client.join("room:huge", timeout=10)
            # Every message is under the limit, the body (~200 KiB) is far above 8 x 4 KiB + 64 KiB.
            for n in range(200):
                server.push("room:huge", "part", {"n": n, "pad": "y" * 1000})
            assert gone.wait(10)
            assert server.wait_for(lambda: server.sessions >= 2 and server.joins.count("room:huge") >= 2)
            assert not client.closed
            assert any(kw.get("code") == 1009 for kw in lost), lost
        finally:
            client.close()
