"""The long-poll endpoint (reference §1.8, checklist 39-40) with requests against a real server.

Every answer is HTTP 200 with the logical status in the JSON body; the
WebSocket endpoint shares the port and keeps working.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import websocket

from maxsdk.server import ConnectRequest, PhoenixServer, ServerSettings

from .conftest import ClientFactory, ServerFactory
from .transcript import GOLDEN, normalize

WINDOW = 0.2
FAST = ServerSettings(longpoll_window=WINDOW)
NDJSON = {"content-type": "application/x-ndjson"}


class LongPoll:
    """A raw long-poll client: one requests.Session, the token in the header (or the query)."""

    def __init__(self, server: PhoenixServer, query: str = "vsn=2.0.0", *, header: bool = True) -> None:
        self.url = server.longpoll_url
        self.query = query
        self.header = header
        self.http = requests.Session()
        self.token: str | None = None

    def request(self, method: str, *, body: bytes | str | None = None, **headers: str) -> requests.Response:
        query = self.query
        all_headers = dict(headers)
        if self.token is not None:
            if self.header:
                all_headers["x-phoenix-longpoll-token"] = self.token
            else:
                query += "&token=" + self.token
        return self.http.request(method, f"{self.url}?{query}", data=body, headers=all_headers, timeout=10)

    def get(self, **headers: str) -> dict[str, Any]:
        response = self.request("GET", **headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def open(self, **headers: str) -> dict[str, Any]:
        body = self.get(**headers)
        assert body["status"] == 410 and body["messages"] == [], body
        self.token = body["token"]
        return body

    def post(self, *frames: Any, content_type: str = "application/x-ndjson") -> dict[str, Any]:
        lines = [f if isinstance(f, str) else json.dumps(f) for f in frames]
        response = self.request("POST", body="\n".join(lines), **{"content-type": content_type})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def get_messages(self) -> dict[str, Any]:
        """GET until a body with messages arrives (204s, empty windows on a busy machine, are skipped)."""
        for _ in range(20):
            body = self.get()
            assert body["status"] in (200, 204), body
            if body["status"] == 200:
                return body
        raise AssertionError("no messages after 20 polls")

    def poll(self) -> list[list[Any]]:
        """GET until messages arrive (204s are skipped); decode each message string."""
        return [json.loads(m) for m in self.get_messages()["messages"]]

    def poll_until(self, count: int) -> list[list[Any]]:
        messages: list[list[Any]] = []
        while len(messages) < count:
            messages += self.poll()
        return messages

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def lp_server(make_server: ServerFactory) -> PhoenixServer:
    return make_server(settings=FAST)


@pytest.fixture
def longpoll() -> Iterator[Any]:
    clients: list[LongPoll] = []

    def factory(server: PhoenixServer, query: str = "vsn=2.0.0", **options: Any) -> LongPoll:
        client = LongPoll(server, query, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def join(client: LongPoll, topic: str = "room:lobby", ref: str = "1") -> list[list[Any]]:
    """Join, then drain everything the join sends, so that the next poll a test inspects holds only its own.

    A ``room:*`` join is answered by the reply, then the ``presence_diff`` broadcast and the
    ``presence_state`` push (see ``reference_app``); these may arrive in one poll or several.
    """
    assert client.post([ref, ref, topic, "phx_join", {}]) == {"status": 200}
    expected = {"phx_reply", "presence_diff", "presence_state"} if topic.startswith("room:") else {"phx_reply"}
    messages: list[list[Any]] = []
    while not expected <= {m[3] for m in messages if m[2] == topic}:
        messages += client.poll()
    assert messages[0][:4] == [ref, ref, topic, "phx_reply"], messages
    return messages


# -- opening a session -----------------------------------------------------------------------


def test_checklist_39_opening_get_answers_410_with_a_token(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server, "vsn=2.0.0&user_id=u1")
    response = client.request("GET", accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == ["messages", "status", "token"]  # sorted keys, as Jason writes them
    assert body["status"] == 410 and body["messages"] == [] and isinstance(body["token"], str)
    opened = lp_server.wait_for_event(lambda e: e.kind == "opened")
    assert opened.transport == "longpoll"
    assert opened.params == {"vsn": "2.0.0", "user_id": "u1"}
    assert opened.vsn == "2.0.0" and opened.socket_id == "user_socket:u1"


def test_refused_connect_is_a_logical_403(make_server: ServerFactory, longpoll: Any) -> None:
    server = make_server(token="secret", settings=FAST)
    response = longpoll(server, "vsn=2.0.0&token=wrong").request("GET")
    assert (response.status_code, response.text) == (200, '{"status":403}')
    assert longpoll(server, "vsn=3.0.0&token=secret").get() == {"status": 403}
    refused = server.events()
    assert [(e.kind, e.transport) for e in refused] == [("refused", "longpoll"), ("refused", "longpoll")]
    assert longpoll(server, "vsn=2.0.0&token=secret").open()["status"] == 410


def test_origin_check_applies_to_long_poll(make_server: ServerFactory, longpoll: Any) -> None:
    server = make_server(settings=FAST.with_changes(allowed_origins=("https://ok.example",)))
    assert longpoll(server).get(origin="https://evil.example") == {"status": 403}
    assert longpoll(server).get(origin="https://ok.example")["status"] == 410
    assert longpoll(server).get()["status"] == 410  # no Origin header: not checked


def test_a_raising_connect_handler_is_http_500(make_server: ServerFactory, longpoll: Any) -> None:
    def explode(request: ConnectRequest) -> bool:
        raise RuntimeError("boom")

    server = make_server(connect=explode, settings=FAST)
    response = longpoll(server).request("GET")
    assert response.status_code == 500
    assert response.json() == {"errors": {"detail": "Internal Server Error"}}


def test_auth_token_header_reaches_the_connect_handler(make_server: ServerFactory, longpoll: Any) -> None:
    seen: list[tuple[str, str | None]] = []

    def connect(request: ConnectRequest) -> bool:
        seen.append((request.transport, request.auth_token))
        return request.auth_token == "s3cr3t"

    server = make_server(connect=connect, settings=FAST.with_changes(auth_token=True))
    assert longpoll(server).get(**{"x-phoenix-authtoken": "nope"}) == {"status": 403}
    longpoll(server).open(**{"x-phoenix-authtoken": "s3cr3t"})
    assert seen == [("longpoll", "nope"), ("longpoll", "s3cr3t")]
    plain = make_server(connect=connect, settings=FAST)  # auth_token disabled: the header is ignored
    assert longpoll(plain).get(**{"x-phoenix-authtoken": "s3cr3t"}) == {"status": 403}


# -- polling -------------------------------------------------------------------------------------


def test_poll_delivers_serialized_messages_then_204_after_the_window(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    token = client.token
    body = client.get()  # nothing buffered: held for the window
    assert body == {"messages": [], "status": 204, "token": token}
    assert client.post(["1", "1", "room:lobby", "phx_join", {}]) == {"status": 200}
    body = client.get_messages()
    assert body["status"] == 200 and body["token"] == token
    assert all(isinstance(message, str) for message in body["messages"])
    assert json.loads(body["messages"][0]) == ["1", "1", "room:lobby", "phx_reply", _ok({"joined": "room:lobby"})]


def test_a_held_poll_returns_as_soon_as_a_message_arrives(lp_server: PhoenixServer, longpoll: Any) -> None:
    server = lp_server.__class__(settings=ServerSettings(longpoll_window=5.0)).start()
    try:
        client = longpoll(server)
        client.open()
        join(client)
        held: list[Any] = []
        poller = threading.Thread(target=lambda: held.append(client.poll()))
        started = time.monotonic()
        poller.start()
        server.broadcast("room:lobby", "news", {"n": 1})
        poller.join(5)
        assert held and held[0][-1] == [None, None, "room:lobby", "news", {"n": 1}]
        assert time.monotonic() - started < 2.5
    finally:
        server.stop(abrupt=True)


def test_session_token_in_the_query_parameter_works_too(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server, header=False)
    client.open()
    messages = join(client)
    assert messages[0][3] == "phx_reply"


def test_the_header_token_wins_over_the_query_parameter(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    token = client.token
    assert token is not None
    response = client.http.post(
        f"{client.url}?vsn=2.0.0&token=garbage",
        data='["1","1","room:lobby","phx_join",{}]',
        headers={"x-phoenix-longpoll-token": token, **NDJSON},
    )
    assert response.json() == {"status": 200}


def test_binary_frames_from_the_server_are_strings_or_a_500(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    join(client)
    push = bytes([0, 1, 1, 10, 11]) + b"16room:lobbybinary_echo" + b"\x01\x02\x03"
    assert client.post(base64.b64encode(push).decode()) == {"status": 200}
    body = client.get_messages()
    # A binary reply that happens to be UTF-8 is put into the JSON list as a string (as Phoenix does).
    assert body["messages"] == ["\x01\x01\x01\n\x0216room:lobbyok\x01\x02\x03"]
    lp_server.wait_for_message(event="binary_echo")
    assert lp_server.messages()[-1].payload == b"\x01\x02\x03"
    assert client.post(["1", "7", "room:lobby", "push_binary", {}]) == {"status": 200}
    time_limit = time.monotonic() + 5
    while True:  # the reply and the non-UTF-8 push may land in one poll or two
        response = client.request("GET")
        if response.status_code == 500:
            break
        assert time.monotonic() < time_limit
    assert response.json() == {"errors": {"detail": "Internal Server Error"}}
    assert client.post(["1", "8", "room:lobby", "echo", {"still": "alive?"}]) == {"status": 200}
    assert client.poll_until(1)[-1][1] == "8"


def test_v1_serializer_over_long_poll(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server, "vsn=1.0.0")
    client.open()
    frame = json.dumps({"topic": "room:lobby", "event": "phx_join", "payload": {}, "ref": "1", "join_ref": "1"})
    assert client.post(frame, content_type="application/json") == {"status": 200}
    reply = client.poll_until(1)[0]
    assert reply == {"topic": "room:lobby", "event": "phx_reply", "payload": _ok({"joined": "room:lobby"}), "ref": "1"}


# -- posting ---------------------------------------------------------------------------------------


def test_ndjson_batch_with_crlf_and_binary_lines(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    join(client)
    binary = bytes([0, 1, 1, 10, 4]) + b"12room:lobbyecho" + b"\xff"
    body = '["1","2","room:lobby","echo",{"a":1}]\r\n' + base64.b64encode(binary).decode() + "\n"
    response = client.request("POST", body=body, **NDJSON)
    assert response.json() == {"status": 200}
    events = [(m.ref, m.event, m.payload) for m in lp_server.messages()[-2:]]
    assert events == [("2", "echo", {"a": 1}), ("2", "echo", b"\xff")]


def test_at_most_100_lines_of_a_batch_are_processed(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    before = lp_server.message_count
    frames: list[list[Any]] = [[None, str(n), "phoenix", "heartbeat", {}] for n in range(150)]
    assert client.post(*frames) == {"status": 200}
    received = lp_server.messages(since=before)
    assert [m.ref for m in received] == [str(n) for n in range(100)]
    assert len(client.poll_until(100)) == 100


def test_post_without_a_session_is_410(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    assert client.post(["1", "1", "room:lobby", "phx_join", {}]) == {"status": 410}
    client.token = "not-a-token"
    assert client.post(["1", "1", "room:lobby", "phx_join", {}]) == {"status": 410}


def test_unreadable_lines_are_http_400_and_crashing_lines_408(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    assert client.request("POST", body="not base64!", **NDJSON).status_code == 400
    assert client.post('["1","1","room:lobby"') == {"status": 408}  # malformed JSON crashes the session
    lp_server.wait_for_event(lambda e: e.kind == "closed" and e.code == 1011)
    old = client.token
    body = client.get()  # the session is gone: the server opens a new one
    assert body["status"] == 410 and body["token"] != old


def test_chunked_post_body(make_server: ServerFactory, longpoll: Any) -> None:
    # A window long enough that the session cannot expire between open() and the POST on a loaded machine.
    server = make_server(settings=ServerSettings(longpoll_window=2.0))
    client = longpoll(server)
    client.open()
    chunks = iter([b'["1","1","room:lobby",', b'"phx_join",{}]'])
    assert client.request("POST", body=chunks, **NDJSON).json() == {"status": 200}
    assert client.poll_until(1)[0][3] == "phx_reply"


def test_preflight_and_other_methods(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    response = client.request("OPTIONS", **{"access-control-request-headers": "x-phoenix-longpoll-token"})
    assert response.status_code == 200 and response.text == ""
    assert response.headers["access-control-allow-headers"] == "x-phoenix-longpoll-token"
    assert response.headers["access-control-allow-methods"] == "get, post, options"
    assert response.headers["access-control-max-age"] == "3600"
    assert response.headers["access-control-allow-origin"] == "*"
    assert client.request("PUT").status_code == 400
    assert client.request("DELETE").status_code == 400


def test_websocket_and_long_poll_share_the_port(lp_server: PhoenixServer, longpoll: Any) -> None:
    ws = websocket.create_connection(lp_server.url + "?vsn=2.0.0&user_id=ws", timeout=5)
    try:
        ws.send('["1","1","room:lobby","phx_join",{}]')
        client = longpoll(lp_server, "vsn=2.0.0&user_id=lp")
        client.open()
        join(client)
        ws.send('["1","2","room:lobby","shout",{"from":"ws"}]')
        shouts: list[list[Any]] = []
        while not shouts:
            shouts = [m for m in client.poll() if m[3] == "shout"]
        assert shouts[0] == [None, None, "room:lobby", "shout", {"from": "ws"}]
        assert sorted(lp_server.presence("room:lobby")) == ["lp", "ws"]
        transports = {e.transport for e in lp_server.connections}
        assert transports == {"websocket", "longpoll"}
    finally:
        ws.close()
    assert requests.get(f"http://{lp_server.host}:{lp_server.port}/elsewhere", timeout=5).status_code == 404


def test_recorder_records_long_poll_messages(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    join(client)
    message = lp_server.wait_for_message(event="phx_join")
    opened = lp_server.connections[0]
    assert (message.connection_id, message.join_ref, message.topic) == (opened.connection_id, "1", "room:lobby")


# -- session end and faults ---------------------------------------------------------------------


def test_abandoned_sessions_expire_after_one_and_a_half_windows(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    join(client)
    opened_at = time.monotonic()
    closed = lp_server.wait_for_event(lambda e: e.kind == "closed", timeout=5)
    assert closed.transport == "longpoll"
    assert closed.at - opened_at >= WINDOW * 1.5 - 0.05
    assert lp_server.presence("room:lobby") == {}
    assert client.get()["status"] == 410


def test_polling_keeps_a_session_alive(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    until = time.monotonic() + WINDOW * 4
    while time.monotonic() < until:
        assert client.get()["status"] == 204
    assert [e.kind for e in lp_server.events()] == ["opened"]


@pytest.mark.parametrize("fault", ["drop", "expire", "close", "disconnect"])
def test_faults_end_the_session_and_the_next_poll_gets_410(
    make_server: ServerFactory, longpoll: Any, fault: str
) -> None:
    server = make_server(settings=ServerSettings(longpoll_window=5.0))
    client = longpoll(server, "vsn=2.0.0&user_id=f")
    client.open()
    join(client)
    opened = server.connections[0].connection_id
    held: list[dict[str, Any]] = []
    poller = threading.Thread(target=lambda: held.append(client.get()))
    started = time.monotonic()
    poller.start()
    if fault == "drop":
        assert server.drop_connections() == 1
    elif fault == "expire":
        assert server.expire_sessions() == 1
    elif fault == "close":
        assert server.close_connections(1000) == 1
    else:
        assert server.disconnect("user_socket:f") == 1
    poller.join(5)
    # Held when the session ended: answered at once, not at the end of the window (200 if
    # presence messages were still buffered; 410, a new session, if it arrived after the end).
    assert held and held[0]["status"] in (200, 204, 410) and time.monotonic() - started < 3
    codes = {"drop": 1006, "expire": 1001, "close": 1000, "disconnect": 1001}
    closed = server.wait_for_event(lambda e: e.kind == "closed" and e.connection_id == opened)
    assert closed.code == codes[fault]
    assert client.get()["status"] == 410


def test_drop_me_kills_the_long_poll_session(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    join(client)
    assert client.post(["1", "2", "room:lobby", "drop_me", {}]) == {"status": 200}
    lp_server.wait_for_connections(0)
    assert client.get()["status"] == 410


def test_refusing_one_transport_only(lp_server: PhoenixServer, longpoll: Any, connect: ClientFactory) -> None:
    lp_server.refuse_connections(502, transport="websocket")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(lp_server.url + "?vsn=2.0.0", timeout=5)
    assert refused.value.status_code == 502
    longpoll(lp_server).open()
    lp_server.refuse_connections(503, transport="longpoll")
    assert longpoll(lp_server).request("GET").status_code == 503
    connect(lp_server).heartbeat("1")
    lp_server.refuse_connections(403)
    assert longpoll(lp_server).get() == {"status": 403}
    lp_server.accept_connections()
    longpoll(lp_server).open()


def test_send_raw_reaches_long_poll_clients(lp_server: PhoenixServer, longpoll: Any) -> None:
    client = longpoll(lp_server)
    client.open()
    assert lp_server.send_raw('["x",null,"t","e",{}]') == 1
    assert client.get()["messages"] == ['["x",null,"t","e",{}]']


def test_stop_answers_held_polls_and_restart_forgets_sessions(make_server: ServerFactory, longpoll: Any) -> None:
    server = make_server(settings=ServerSettings(longpoll_window=5.0))
    client = longpoll(server)
    client.open()
    outcome: list[Any] = []

    def poll() -> None:
        try:
            outcome.append(client.get())
        except requests.RequestException as exc:
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    server.wait_for_connections(1)
    started = time.monotonic()
    server.stop()
    poller.join(5)
    assert outcome and time.monotonic() - started < 3
    assert [e.code for e in server.events() if e.kind == "closed"] == [1012]  # a graceful stop's code
    server.start()
    assert client.get()["status"] == 410  # a restarted server knows no session


# -- the recorded real-server exchange -------------------------------------------------------------


@dataclass
class Exchange:
    """One recorded request and the response it got."""

    method: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)
    body: list[str] = field(default_factory=list)
    status: int = 0
    response: str = ""


_REQUEST = re.compile(r"^\[\s*[\d.]+s\] >> (GET|POST) (\S+)$")
_RESPONSE = re.compile(r"^\[\s*[\d.]+s\] << HTTP (\d+)\s+(.*)$")


def parse_longpoll_transcript() -> list[Exchange]:
    exchanges: list[Exchange] = []
    for line in (GOLDEN / "transcript_longpoll_v2.txt").read_text(encoding="utf-8").splitlines():
        request, response = _REQUEST.match(line), _RESPONSE.match(line)
        if request is not None:
            exchanges.append(Exchange(request.group(1), request.group(2).split("?", 1)[1]))
        elif response is not None:
            exchanges[-1].status, exchanges[-1].response = int(response.group(1)), response.group(2)
        elif line.startswith("              | "):
            exchanges[-1].body.append(line[len("              | ") :])
        elif line.startswith("              ") and ": " in line and not exchanges[-1].body:
            name, value = line.strip().split(": ", 1)
            exchanges[-1].headers[name] = value
    return exchanges


def _blank_token(text: str) -> Any:
    value = json.loads(text)
    if isinstance(value, dict):
        if "token" in value:
            value["token"] = "*"
        if "messages" in value:
            value["messages"] = [normalize(m) for m in value["messages"]]
    return value


@pytest.mark.timeout(30)
def test_longpoll_transcript_replays(make_server: ServerFactory) -> None:
    server = make_server(token="secret", settings=ServerSettings.phoenix_1_7(longpoll_window=WINDOW))
    exchanges = parse_longpoll_transcript()
    assert len(exchanges) == 17
    http = requests.Session()
    token = None
    try:
        for index, exchange in enumerate(exchanges):
            query = exchange.query
            if "token=SFMyNTY" in query:  # the recorded session token: use ours
                assert token is not None
                query = re.sub(r"token=SFMyNTY\S*", "token=" + token, query)
            expected = json.loads(exchange.response).get("messages") or []
            if exchange.method == "GET" and token is not None and expected:
                # A poll answers with what is buffered when it arrives; the recording's poll came
                # after the server had queued all of these (a join reply, then after-join pushes).
                _wait_for_buffered(server, len(expected))
            response = http.request(
                exchange.method,
                f"{server.longpoll_url}?{query}",
                data="\n".join(exchange.body) if exchange.body else None,
                headers=exchange.headers,
                timeout=5,
            )
            what = f"exchange {index}: {exchange.method} {exchange.query[:40]}"
            assert response.status_code == exchange.status, what
            assert _blank_token(response.text) == _blank_token(exchange.response), what
            body = response.json()
            if body.get("status") == 410:
                token = body["token"]
    finally:
        http.close()


def _wait_for_buffered(server: Any, count: int, timeout: float = 10.0) -> None:
    """Wait until the (one) long-poll session holds ``count`` frames for its next poll."""
    (session,) = server._listener.hub.transports()
    assert session.wait_buffered(count, timeout), f"the server did not queue {count} frames in {timeout} s"


def _ok(response: Any) -> dict[str, Any]:
    return {"response": response, "status": "ok"}
