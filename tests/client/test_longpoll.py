"""The client over long-poll (reference §1.8, checklist 39-40).

The conformance tests that do not depend on WebSocket frames run on both
transports (``transport`` parameter); the rest covers what only long-poll has:
no heartbeats, session loss (410 → close 3410 → reconnect and rejoin), the
status mapping, batching of POSTs, aborting a blocked poll, TLS and proxies.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, ChannelState, Client, ConnectionState
from maxsdk._runtime.longpoll import LongPollTransport, longpoll_url, open_longpoll
from maxsdk._runtime.transport import BINARY, CLOSE, TEXT, TransportOptions
from maxsdk.server import PhoenixServer, ServerSettings
from tests.client.helpers import Inbox, SignalLog, fast_client

TRANSPORTS = ["websocket", "longpoll"]
WINDOW = 1.0


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(phoenix_server_factory: Any) -> PhoenixServer:
    server: PhoenixServer = phoenix_server_factory(settings=ServerSettings(longpoll_window=WINDOW))
    return server


@pytest.fixture
def client(server: PhoenixServer, transport: str) -> Iterator[Client]:
    client = fast_client(server.url, transport=transport)
    client.connect()
    yield client
    client.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def post_sizes(caplog: pytest.LogCaptureFixture) -> list[int]:
    """How many messages each long-poll POST carried, from the server's DEBUG log."""
    found = (re.search(r"POST of (\d+) message", r.getMessage()) for r in caplog.records)
    return [int(match.group(1)) for match in found if match]


# -- conformance on both transports -------------------------------------------------------------


def test_checklist_13_18_join_push_reply_and_error_reply(client: Client, server: PhoenixServer, transport: str) -> None:
    assert client.diagnostics().transport == transport
    room = client.join("room:lobby", {"k": "v"})
    assert room.join_response == {"joined": "room:lobby"}
    join = server.wait_for_message(event="phx_join", topic="room:lobby")
    assert join.join_ref == join.ref == room.join_ref and join.payload == {"k": "v"}
    assert room.push("echo", {"a": "é☃"}).response == {"a": "é☃"}
    with pytest.raises(maxsdk.ReplyError) as info:
        room.push("echo_error", {"why": "x"})
    assert info.value.response == {"why": "x"}
    with pytest.raises(maxsdk.ReplyTimeoutError):
        room.push("noreply", {}, timeout=0.2)
    assert server.connections[0].transport == transport


def test_checklist_14_unmatched_topic(client: Client) -> None:
    with pytest.raises(maxsdk.JoinError) as info:
        client.join("nope:topic")
    assert info.value.reason == "unmatched topic"


def test_checklist_17_pushes_while_joining_are_buffered_in_order(client: Client, server: PhoenixServer) -> None:
    server.delay_replies(0.3)
    channel = client.channel("room:lobby")
    joiner = threading.Thread(target=channel.join)
    joiner.start()
    server.wait_for_message(event="phx_join")
    pending = [channel.push_nowait("echo", {"n": n}) for n in range(3)]
    joiner.join(5)
    assert [p.wait().response for p in pending] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {m.join_ref for m in server.messages() if m.event == "echo"} == {channel.join_ref}


def test_checklist_20_broadcasts_reach_every_subscriber(server: PhoenixServer, transport: str) -> None:
    with (
        fast_client(server.url, transport=transport, params={"user_id": "a"}) as a,
        fast_client(server.url, transport="longpoll", params={"user_id": "b"}) as b,
    ):
        room_a, room_b = a.join("room:lobby"), b.join("room:lobby")
        inbox = Inbox()
        room_b.on("shout", inbox)
        room_a.push("shout", {"from": transport})
        assert inbox.wait_count(1) == [{"from": transport}]
        server.broadcast("room:lobby", "shout", {"from": "server"})
        assert inbox.wait_count(2)[1] == {"from": "server"}


def test_checklist_35_38_presence(server: PhoenixServer, transport: str) -> None:
    with fast_client(server.url, transport=transport, params={"user_id": "ann"}) as a:
        room = a.join("room:lobby")
        assert room.presence.wait_synced(5)
        joined, left = Inbox(), Inbox()
        room.presence.on_join(lambda key, cur, new: joined(key))
        room.presence.on_leave(lambda key, cur, gone: left(key))
        with fast_client(server.url, transport=transport, params={"user_id": "ben"}) as b:
            b.join("room:lobby")
            assert "ben" in joined.wait_count(1)
            assert sorted(room.presence.keys()) == ["ann", "ben"]
        assert left.wait_count(1) == ["ben"]
        assert room.presence.keys() == ["ann"]


def test_checklist_22_leave(client: Client, server: PhoenixServer) -> None:
    log = SignalLog(client)
    room = client.join("room:lobby")
    room.leave()
    assert room.state is ChannelState.CLOSED
    server.wait_for_message(event="phx_leave")
    assert log.wait_for("channel_closed")["reason"] == "left"


def test_checklist_24_crash_then_rejoin_with_a_new_join_ref(client: Client, server: PhoenixServer) -> None:
    log = SignalLog(client)
    room = client.join("room:lobby")
    old = room.join_ref
    room.push_nowait("crash", {})
    assert log.wait_for("channel_errored")["response"] == {"reason": "channel_crash"}
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    assert room.join_ref != old
    assert room.push("echo", {"again": True}).response == {"again": True}


def test_binary_pushes_and_utf8_binary_replies(client: Client, server: PhoenixServer) -> None:
    room = client.join("room:lobby")
    assert room.push("binary_echo", b"\x01\x02\x03").response == b"\x01\x02\x03"
    assert server.wait_for_message(event="binary_echo").payload == b"\x01\x02\x03"


def test_server_pushes_arrive(client: Client) -> None:
    ticker = client.channel("ticker:t", {"interval_ms": 20})
    inbox = Inbox()
    ticker.on("tick", inbox)
    ticker.join()
    assert [t["n"] for t in inbox.wait_count(3)][:3] == [1, 2, 3]


def test_checklist_29_30_server_restart_reconnects_and_rejoins(server: PhoenixServer, transport: str) -> None:
    client = fast_client(server.url, transport=transport, reconnect=Backoff(steps=(0.01, 0.05, 0.1), jitter="none"))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        inbox = Inbox()
        room.on("shout", inbox)
        server.stop()
        log.wait_for("reconnecting", count=2)
        server.start()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        room.push("shout", {"after": "restart"})
        assert inbox.wait_count(1) == [{"after": "restart"}]
        assert client.diagnostics().reconnects == 1


def test_checklist_29_40_connection_or_session_loss_reconnects_and_rejoins(
    server: PhoenixServer, transport: str
) -> None:
    client = fast_client(server.url, transport=transport)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        server.drop_connections()
        disconnected = log.wait_for("disconnected")
        assert disconnected["will_reconnect"]
        assert disconnected["code"] == (1006 if transport == "websocket" else 3410)
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert room.push("echo", {"back": 1}).response == {"back": 1}


def test_checklist_31_disconnect_then_connect_rejoins(client: Client) -> None:
    log = SignalLog(client)
    room = client.join("room:lobby")
    client.disconnect()
    assert client.state is ConnectionState.DISCONNECTED
    assert log.of("reconnecting") == []
    client.connect()
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    assert room.push("echo", {"back": 1}).response == {"back": 1}


def test_checklist_33_socket_disconnect_reconnects(client: Client) -> None:
    log = SignalLog(client)
    room = client.join("room:lobby")
    # Over long-poll the ok reply may be lost with the session (as on Phoenix): do not wait for it.
    room.push_nowait("kick_me", {})
    assert log.wait_for("disconnected")["will_reconnect"]
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])


def test_checklist_34_in_flight_pushes_fail_instead_of_being_resent(client: Client, server: PhoenixServer) -> None:
    log = SignalLog(client)
    room = client.join("room:lobby")
    pending = room.push_nowait("slow", {"ms": 500}, timeout=5)
    server.wait_for_message(event="slow")
    server.drop_connections()
    with pytest.raises(maxsdk.ReplyLostError):
        pending.wait()
    log.wait_for("channel_joined", lambda kw: kw["rejoined"])
    room.push("echo", {})
    assert len([m for m in server.messages() if m.event == "slow"]) == 1


def test_close_leaves_channels_and_joins_every_thread(server: PhoenixServer, transport: str) -> None:
    client = fast_client(server.url, transport=transport)
    client.connect()
    client.join("room:lobby")
    threads = client.threads
    client.close()
    server.wait_for_message(event="phx_leave")
    assert not any(t.is_alive() for t in threads)


# -- long-poll only ---------------------------------------------------------------------------------


def test_checklist_40_no_heartbeats_are_sent_over_long_poll(server: PhoenixServer) -> None:
    with fast_client(server.url, transport="longpoll", heartbeat_interval=0.05) as client:
        room = client.join("room:lobby")
        room.push("slow", {"ms": 400})  # many heartbeat intervals pass
        assert not [m for m in server.messages() if m.event == "heartbeat"]
        assert client.diagnostics().last_heartbeat_rtt is None
    with fast_client(server.url, transport="websocket", heartbeat_interval=0.05) as client:
        client.join("room:lobby").push("slow", {"ms": 400})
        assert [m for m in server.messages() if m.event == "heartbeat"], "the control: WebSocket does heartbeat"


def test_checklist_40_session_expiry_mid_stream_reconnects_and_rejoins(server: PhoenixServer) -> None:
    client = fast_client(server.url, transport="longpoll")
    log = SignalLog(client)
    with client:
        ticker = client.channel("ticker:t", {"interval_ms": 20})
        inbox = Inbox()
        ticker.on("tick", inbox)
        ticker.join()
        inbox.wait_count(3)
        assert server.expire_sessions() == 1
        disconnected = log.wait_for("disconnected")
        assert (disconnected["code"], disconnected["reason"]) == (3410, "session_gone")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        seen = len(inbox.items)
        inbox.wait_count(seen + 3)  # ticks flow again on the new session
        joins = [m.connection_id for m in server.messages() if m.event == "phx_join"]
        assert len(joins) == 2 and joins[0] != joins[1]  # rejoined on a new session
        assert any(e.kind == "closed" and e.connection_id == joins[0] for e in server.events())


def test_session_loss_while_idle_is_noticed_by_the_next_poll(phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(settings=ServerSettings(longpoll_window=0.2))
    client = fast_client(server.url, transport="longpoll")
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        server.restart()
        assert log.wait_for("disconnected")["code"] in (1011, 3410)
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])


def test_queued_frames_go_out_in_batches_of_at_most_100(
    server: PhoenixServer, caplog: pytest.LogCaptureFixture
) -> None:
    with fast_client(server.url, transport="longpoll") as client:
        server.delay_replies(0.3)
        channel = client.channel("room:lobby")
        joiner = threading.Thread(target=channel.join)
        joiner.start()
        server.wait_for_message(event="phx_join")
        caplog.set_level(logging.DEBUG, logger="maxsdk.server.longpoll")
        pending = [channel.push_nowait("echo", {"n": n}) for n in range(250)]  # buffered until the join reply
        joiner.join(5)
        assert [p.wait().response["n"] for p in pending] == list(range(250))
        assert post_sizes(caplog)[-3:] == [100, 100, 50]
        assert [m.payload["n"] for m in server.messages() if m.event == "echo"] == list(range(250))


def test_v1_serializer_over_long_poll(server: PhoenixServer) -> None:
    with fast_client(server.url, transport="longpoll", vsn="1.0.0") as client:
        room = client.join("room:lobby")
        assert room.push("echo", {"v": 1}).response == {"v": 1}
        assert server.connections[0].vsn == "1.0.0"


def test_refused_session_is_an_authentication_error(phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(token="right", settings=ServerSettings(longpoll_window=WINDOW))
    client = Client(server.url, transport="longpoll", params={"token": "TOPSECRET"})
    with pytest.raises(maxsdk.AuthenticationError) as info:
        client.connect()
    client.close()
    assert info.value.status == 403
    assert "TOPSECRET" not in str(info.value) + repr(info.value) + str(info.value.url)
    assert info.value.url is not None and "token=***" in info.value.url and "/longpoll" in info.value.url
    assert {e.transport for e in server.events() if e.kind == "refused"} == {"longpoll"}


def test_auth_token_goes_in_the_header_of_the_opening_get(phoenix_server_factory: Any) -> None:
    tokens: list[str | None] = []

    def connect(request: Any) -> bool:
        tokens.append(request.auth_token)
        return request.auth_token == "s3cr3t/+token"

    server = phoenix_server_factory(connect=connect, settings=ServerSettings(auth_token=True, longpoll_window=WINDOW))
    with Client(server.url, transport="longpoll", auth_token="s3cr3t/+token") as client:
        assert client.join("room:lobby").joined
    assert tokens == ["s3cr3t/+token"]


def test_headers_and_origin_are_sent(phoenix_server_factory: Any) -> None:
    seen: list[dict[str, str]] = []
    server = phoenix_server_factory(connect=lambda r: seen.append(dict(r.headers)) or True)
    with Client(server.url, transport="longpoll", headers={"X-Api-Key": "k"}, origin="https://app.example"):
        pass
    assert seen[0]["x-api-key"] == "k" and seen[0]["origin"] == "https://app.example"


def test_secrets_stay_out_of_logs_and_errors(server: PhoenixServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with fast_client(server.url, transport="longpoll", params={"token": "TOPSECRET"}) as client:
        client.join("room:lobby").push("echo", {})
        text = repr(client) + str(client.diagnostics())
    text += "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("maxsdk.server"))
    assert "TOPSECRET" not in text
    assert "/longpoll?" in text  # urllib3 logged its requests, values redacted


# -- the transport itself ---------------------------------------------------------------------------


def options(**overrides: Any) -> TransportOptions:
    return TransportOptions(connect_timeout=overrides.pop("connect_timeout", 3.0), **overrides)


def test_longpoll_url() -> None:
    assert longpoll_url("ws://h:1/socket/websocket?a=1&vsn=2.0.0") == "http://h:1/socket/longpoll?a=1&vsn=2.0.0"
    assert longpoll_url("wss://h/socket") == "https://h/socket/longpoll"


def test_abort_wakes_a_blocked_poll_at_once_and_leaks_nothing(phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(settings=ServerSettings(longpoll_window=5.0))
    url = server.url + "?vsn=2.0.0"
    for _ in range(3):  # warm up: imports, pools
        open_longpoll(url, options()).abort()
    server.expire_sessions()
    server.wait_for_connections(0)
    fds, threads = open_fds(), threading.active_count()
    delays = []
    for _ in range(10):
        transport = open_longpoll(url, options())
        outcome: list[Any] = []

        def receive(transport: LongPollTransport = transport, outcome: list[Any] = outcome) -> None:
            try:
                outcome.append(transport.recv())
            except maxsdk.ConnectionLostError as exc:
                outcome.append(exc)

        reader = threading.Thread(target=receive)
        reader.start()
        server.wait_for_connections(1)
        transport.send('[null,"1","phoenix","heartbeat",{}]')  # the reply proves the poll is running
        assert reader.join(5) is None and outcome[0][0] == TEXT
        outcome.clear()
        reader = threading.Thread(target=receive)
        reader.start()
        reader.join(0.05)  # let it block in the held poll
        started = time.monotonic()
        transport.abort()
        reader.join(5)
        delays.append(time.monotonic() - started)
        assert isinstance(outcome[0], maxsdk.ConnectionLostError) and outcome[0].code == 1006
        server.expire_sessions()
        server.wait_for_connections(0)
    assert max(delays) < 0.1, delays
    server.stop()  # closes the server's side of every connection and joins the server's threads
    gc.collect()  # exceptions kept in ``outcome`` hold frames; nothing else may hold a socket
    assert open_fds() <= fds
    assert threading.active_count() <= threads


def test_close_makes_recv_return_a_close(phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(settings=ServerSettings(longpoll_window=5.0))
    transport = open_longpoll(server.url + "?vsn=2.0.0", options())
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(transport.recv()))
    reader.start()
    reader.join(0.05)
    transport.close(1000, "client closing")
    reader.join(2)
    assert results == [(CLOSE, (1000, "client closing"))]
    transport.abort()
    with pytest.raises(maxsdk.ConnectionLostError):
        transport.send('[null,"2","phoenix","heartbeat",{}]')


def test_send_many_splits_batches_of_100_and_sends_binary_as_base64(
    phoenix_server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = phoenix_server_factory(settings=ServerSettings(longpoll_window=WINDOW))
    transport = open_longpoll(server.url + "?vsn=2.0.0", options())
    try:
        caplog.set_level(logging.DEBUG, logger="maxsdk.server.longpoll")
        frames: list[str | bytes] = [f'[null,"{n}","phoenix","heartbeat",{{}}]' for n in range(250)]
        frames.append(bytes([0, 0, 1, 4, 4]) + b"2room" + b"ping" + b"\xff")
        transport.send_many(frames)
        assert post_sizes(caplog) == [100, 100, 51]
        received = server.messages()
        assert [m.ref for m in received[:250]] == [str(n) for n in range(250)]
        assert received[250].payload == b"\xff"
        kinds = []
        while len(kinds) < 251:
            kind, _ = transport.recv()
            kinds.append(kind)
        assert set(kinds) == {TEXT}  # 250 heartbeat replies + "unmatched topic" for the binary push
    finally:
        transport.abort()


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted ``(HTTP status, body or None = hang, delay)``."""

    protocol_version = "HTTP/1.1"
    script: list[tuple[int, str | None]] = []
    requests: list[tuple[str, str, dict[str, str]]] = []
    release = threading.Event()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        type(self).requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        status, body = type(self).script.pop(0) if type(self).script else (200, '{"status":204,"messages":[]}')
        if body is None:
            type(self).release.wait(5)
            return
        data = body.encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[Scripted]]]:
    handler = type("Handler", (Scripted,), {"script": [], "requests": [], "release": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever)
    thread.start()
    yield f"ws://127.0.0.1:{httpd.server_address[1]}/socket/websocket?token=SECRET&vsn=2.0.0", handler
    handler.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


OPEN = (200, '{"messages":[],"status":410,"token":"T1"}')


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        ((200, '{"status":403}'), maxsdk.AuthenticationError, 403),
        ((403, ""), maxsdk.AuthenticationError, 403),
        ((401, ""), maxsdk.AuthenticationError, 401),
        ((404, "no such route"), maxsdk.HandshakeError, 404),
        ((503, ""), maxsdk.HandshakeError, 503),
        ((200, "<html>proxy login</html>"), maxsdk.HandshakeError, 200),
        ((200, '{"status":200,"messages":[]}'), maxsdk.HandshakeError, 200),
    ],
)
def test_opening_failures_map_to_handshake_errors(
    scripted: tuple[str, type[Scripted]], answer: tuple[int, str], error: type[Exception], status: int
) -> None:
    url, handler = scripted
    handler.script.append(answer)
    with pytest.raises(error) as info:
        open_longpoll(url, options())
    assert getattr(info.value, "status", None) == status
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, '{"status":410,"token":"T2","messages":[]}'), 3410),
        ((200, '{"status":403}'), 1008),
        ((500, '{"errors":{"detail":"Internal Server Error"}}'), 1011),
        ((502, "bad gateway"), 1011),
        ((200, '{"status":999}'), 1011),
        ((200, "not json"), 1011),
    ],
)
def test_poll_statuses_map_to_close_codes(
    scripted: tuple[str, type[Scripted]], answer: tuple[int, str], code: int
) -> None:
    url, handler = scripted
    handler.script += [OPEN, (200, '{"status":200,"token":"T1","messages":["[null,null,\\"t\\",\\"e\\",{}]"]}'), answer]
    transport = open_longpoll(url, options())
    try:
        assert transport.recv() == (TEXT, '[null,null,"t","e",{}]')
        with pytest.raises(maxsdk.ConnectionLostError) as info:
            transport.recv()
        assert info.value.code == code
        assert "SECRET" not in str(info.value) and "T1" not in str(info.value)
    finally:
        transport.abort()
    method, path, headers = handler.requests[1]
    assert (method, headers["x-phoenix-longpoll-token"]) == ("GET", "T1")
    assert path.endswith("&vsn=2.0.0&token=T1")  # older servers read the query parameter
    assert "x-phoenix-longpoll-token" not in handler.requests[0][2]


def test_a_poll_outliving_the_timeout_is_close_1005(scripted: tuple[str, type[Scripted]]) -> None:
    url, handler = scripted
    handler.script += [OPEN, (200, None)]
    transport = open_longpoll(url, options(), poll_timeout=0.3)
    try:
        with pytest.raises(maxsdk.ConnectionLostError) as info:
            transport.recv()
        assert (info.value.code, info.value.reason) == (1005, "timeout")
    finally:
        transport.abort()


@pytest.mark.parametrize(
    ("answer", "code"),
    [((200, '{"status":410}'), 3410), ((200, '{"status":408}'), 1011), ((500, ""), 1011)],
)
def test_failed_posts_lose_the_connection(
    scripted: tuple[str, type[Scripted]], answer: tuple[int, str], code: int
) -> None:
    url, handler = scripted
    handler.script += [OPEN, answer]
    transport = open_longpoll(url, options())
    try:
        with pytest.raises(maxsdk.ConnectionLostError) as sent:
            transport.send_many(['["1","1","t","phx_join",{}]', b"\x00\x01"])
        assert sent.value.code == code
        method, _, headers = handler.requests[1]
        assert (method, headers["content-type"]) == ("POST", "application/x-ndjson")
        transport.abort()
        with pytest.raises(maxsdk.ConnectionLostError) as received:
            transport.recv()
        assert received.value.code == code  # the reader learns why
    finally:
        transport.abort()


def test_abort_cuts_a_post_in_flight_short(scripted: tuple[str, type[Scripted]]) -> None:
    url, handler = scripted
    handler.script += [OPEN, (200, None)]  # the POST is never answered
    transport = open_longpoll(url, options())
    outcome: list[Any] = []

    def send() -> None:
        try:
            transport.send('["1","1","t","phx_join",{}]')
        except maxsdk.ConnectionLostError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(0.1)
    started = time.monotonic()
    transport.abort()
    sender.join(5)
    assert time.monotonic() - started < 0.5
    assert outcome and outcome[0].code == 1006  # aborted, not a failed POST


def test_binary_messages_from_the_server_come_back_as_bytes(scripted: tuple[str, type[Scripted]]) -> None:
    url, handler = scripted
    handler.script += [OPEN, (200, json.dumps({"status": 200, "token": "T1", "messages": ["\x02\x01\x01te\x00"]}))]
    transport = open_longpoll(url, options())
    try:
        assert transport.recv() == (BINARY, b"\x02\x01\x01te\x00")
    finally:
        transport.abort()


def test_connection_refused_is_connect_failed() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(maxsdk.ConnectFailedError, match="refused"):
        open_longpoll(f"ws://127.0.0.1:{port}/socket/websocket?token=SECRET", options())


# -- TLS and proxies --------------------------------------------------------------------------------


@pytest.fixture
def tls_url(server: PhoenixServer) -> Iterator[tuple[str, Any]]:
    trustme = pytest.importorskip("trustme")
    from tests.tls.conftest import TLSFront

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    front = TLSFront(server.port, context)
    yield f"wss://127.0.0.1:{front.port}/socket", ca
    front.stop()


def test_tls_is_verified_with_the_clients_settings(tls_url: tuple[str, Any], tmp_path: Any) -> None:
    url, ca = tls_url
    client = Client(url, transport="longpoll")
    with pytest.raises(maxsdk.TLSVerificationError):
        client.connect(timeout=5)
    client.close()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with Client(url, transport="longpoll", ca_file=str(bundle)) as client:
        assert client.join("room:lobby").push("echo", {"tls": True}).response == {"tls": True}
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with Client(url, transport="longpoll", ssl_context=context) as client:
        assert client.join("room:lobby").joined
    with Client(url, transport="longpoll", verify_tls=False) as client:
        assert client.join("room:lobby").joined


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests), counting what passed through it."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        handler = type("ProxyHandler", (_ProxyHandler,), {"proxy": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: ForwardProxy

    def _forward(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        self.proxy.seen.append(f"{self.command} {urlsplit(self.path).path}")
        self.proxy.auth.append(self.headers.get("proxy-authorization"))
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        upstream = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "connection")}
        url = urlsplit(self.path)
        upstream.request(self.command, url.path + ("?" + url.query if url.query else ""), body or None, headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = _forward  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_proxy_option_and_https_proxy_environment(server: PhoenixServer, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ForwardProxy(server.port)
    try:
        host_url = server.url.replace("127.0.0.1", "localhost")  # requests never proxies 127.0.0.1 by default
        with Client(host_url, transport="longpoll", proxy=proxy.url.replace("http://", "http://u:p@")) as client:
            assert client.join("room:lobby").push("echo", {"via": "proxy"}).response == {"via": "proxy"}
        assert proxy.seen[0] == "GET /socket/longpoll" and "POST /socket/longpoll" in proxy.seen
        assert proxy.auth[0] is not None and proxy.auth[0].startswith("Basic ")
        proxy.seen.clear()
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with Client(host_url, transport="longpoll") as client:
            assert client.join("room:lobby").joined
        assert proxy.seen and proxy.seen[0] == "GET /socket/longpoll"
    finally:
        proxy.stop()
