"""Connecting: vsn negotiation, connect handlers, HTTP statuses, authToken (reference §1)."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

import pytest
import websocket

from maxsdk.server import Accept, ConnectRequest, PhoenixServer, Refuse, ServerSettings
from maxsdk.server.connect import ConnectDecision

from .conftest import ClientFactory, ServerFactory
from .wire import WireClient


def raw_request(
    server: PhoenixServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    """Send one HTTP request by hand; returns the response (status, headers)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def status_of(url: str, **options: Any) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=5, **options)
    return refused.value.status_code


def test_vsn_absent_means_v1_objects(server: PhoenixServer, connect: ClientFactory) -> None:
    client = connect(server, vsn=None)
    client.send({"topic": "room:lobby", "event": "phx_join", "payload": {}, "ref": "1"})
    assert client.recv_json() == {
        "event": "phx_reply",
        "payload": {"response": {"joined": "room:lobby"}, "status": "ok"},
        "ref": "1",
        "topic": "room:lobby",
    }
    opened = server.wait_for_event(lambda e: e.kind == "opened")
    assert opened.vsn == "1.0.0"


@pytest.mark.parametrize("vsn", ["3.0.0", "123.1.1", "abc", "2.0"])
def test_unsupported_or_invalid_vsn_is_403(server: PhoenixServer, vsn: str) -> None:
    assert status_of(f"{server.url}?vsn={vsn}") == 403
    refused = server.wait_for_event(lambda e: e.kind == "refused")
    assert refused.status == 403 and refused.params == {"vsn": vsn}


def test_reference_token(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(token="secret")
    assert status_of(f"{server.url}?vsn=2.0.0&token=wrong") == 403
    assert status_of(f"{server.url}?vsn=2.0.0") == 403
    client = connect(server, token="secret", user_id="u1")
    assert client.join("room:lobby")[4]["status"] == "ok"
    opened = server.wait_for_event(lambda e: e.kind == "opened")
    assert opened.socket_id == "user_socket:u1"
    assert opened.params == {"token": "secret", "user_id": "u1", "vsn": "2.0.0"}


def test_connect_handler_statuses_and_params(make_server: ServerFactory, connect: ClientFactory) -> None:
    seen: list[ConnectRequest] = []

    def handler(request: ConnectRequest) -> ConnectDecision:
        seen.append(request)
        if request.params.get("mode") == "busy":
            return Refuse(429)
        if request.params.get("mode") == "no":
            return False
        if request.params.get("mode") == "boom":
            raise RuntimeError("connect crashed")
        return Accept(assigns={"user": request.params.get("user")}, socket_id="s:1")

    server = make_server(connect=handler)
    assert status_of(f"{server.url}?vsn=2.0.0&mode=busy") == 429
    assert status_of(f"{server.url}?vsn=2.0.0&mode=no") == 403
    assert status_of(f"{server.url}?vsn=2.0.0&mode=boom") == 500
    client = connect(server, **{"user[id]": "7", "user[tags][]": "a"})
    client.heartbeat()
    assert seen[-1].params["user"] == {"id": "7", "tags": ["a"]}
    assert seen[-1].vsn == "2.0.0"
    assert seen[-1].transport == "websocket"


def test_wrong_path_is_404_and_non_get_is_400(server: PhoenixServer) -> None:
    assert raw_request(server, "/nope/websocket?vsn=2.0.0", headers=UPGRADE)[0] == 404
    assert raw_request(server, "/socket/websocket?vsn=2.0.0", "POST", headers=UPGRADE)[0] == 400
    assert raw_request(server, "/socket/websocket?vsn=2.0.0", "DELETE", headers=UPGRADE)[0] == 400
    # A plain GET that is not an upgrade fails the WebSocket upgrade: 400 (§1.1).
    assert raw_request(server, "/socket/websocket?vsn=2.0.0")[0] == 400
    statuses = [e.status for e in server.events() if e.kind == "refused"]
    assert statuses[:3] == [404, 400, 400]


def test_custom_path(make_server: ServerFactory) -> None:
    server = make_server(path="/live/")
    assert server.url.endswith("/live/websocket")
    client = WireClient.open(server.url + "?vsn=2.0.0")
    try:
        client.heartbeat()
    finally:
        client.close()


def bearer(token: str) -> str:
    return "base64url.bearer.phx." + base64.b64encode(token.encode()).decode().rstrip("=")


def test_auth_token_subprotocol(make_server: ServerFactory, connect: ClientFactory) -> None:
    tokens: list[str | None] = []

    def handler(request: ConnectRequest) -> ConnectDecision:
        tokens.append(request.auth_token)
        return request.auth_token == "tok/en+?"

    server = make_server(connect=handler, settings=ServerSettings(auth_token=True))
    protocols = ["phoenix", bearer("tok/en+?")]
    client = WireClient.open(server.url + "?vsn=2.0.0", subprotocols=protocols)
    try:
        assert client.ws.getsubprotocol() == "phoenix"
        client.heartbeat()
    finally:
        client.close()
    assert status_of(server.url + "?vsn=2.0.0", subprotocols=["phoenix", bearer("wrong")]) == 403
    assert tokens == ["tok/en+?", "wrong"]


def test_auth_token_disabled_selects_no_subprotocol(server: PhoenixServer) -> None:
    headers = {**UPGRADE, "Sec-WebSocket-Protocol": "phoenix, " + bearer("t")}
    status, response_headers = raw_request(server, "/socket/websocket?vsn=2.0.0", headers=headers)
    assert status == 101
    assert "sec-websocket-protocol" not in response_headers


def test_socket_id_disconnect_closes_every_matching_connection(server: PhoenixServer, connect: ClientFactory) -> None:
    first = connect(server, user_id="u")
    second = connect(server, user_id="u")
    other = connect(server, user_id="v")
    server.wait_for_connections(3)
    assert server.disconnect("user_socket:u") == 2
    assert first.expect_close() == (1001, "")
    assert second.expect_close() == (1001, "")
    server.wait_for_connections(1)
    other.heartbeat()
    closed = [e.code for e in server.events() if e.kind == "closed"]
    assert closed == [1001, 1001]


def test_disconnect_close_code_is_configurable(make_server: ServerFactory, connect: ClientFactory) -> None:
    server = make_server(settings=ServerSettings(disconnect_close_code=1000))
    client = connect(server, user_id="k")
    assert client.join("room:lobby")[4]["status"] == "ok"
    client.recv_many(2)
    client.send(["1", "2", "room:lobby", "kick_me", {}])
    assert client.recv_json() == ["1", "2", "room:lobby", "phx_reply", {"response": {}, "status": "ok"}]
    assert client.expect_close() == (1000, "")


def test_connect_info_headers(make_server: ServerFactory, connect: ClientFactory) -> None:
    requests: list[ConnectRequest] = []

    def remember(request: ConnectRequest) -> bool:
        requests.append(request)
        return True

    server = make_server(connect=remember)
    client = connect(server)
    client.heartbeat()
    assert requests[0].headers["upgrade"].lower() == "websocket"
    assert requests[0].remote_address[0] == "127.0.0.1"
    assert json.dumps(dict(requests[0].params)) == '{"vsn": "2.0.0"}'


def test_invalid_connect_results_are_403(make_server: ServerFactory) -> None:
    results = iter([Accept(socket_id=42), "yes"])  # type: ignore[arg-type]
    server = make_server(connect=lambda request: next(results))
    assert status_of(f"{server.url}?vsn=2.0.0") == 403
    assert status_of(f"{server.url}?vsn=2.0.0") == 403


def test_origin_check(make_server: ServerFactory) -> None:
    server = make_server(settings=ServerSettings(allowed_origins=("https://app.example",)))
    assert status_of(f"{server.url}?vsn=2.0.0", origin="https://evil.example") == 403
    allowed = WireClient.open(f"{server.url}?vsn=2.0.0", origin="https://app.example")
    try:
        allowed.heartbeat()
    finally:
        allowed.close()
    # websocket-client sends an Origin by default; without one there is no check.
    assert status_of(f"{server.url}?vsn=2.0.0") == 403
    no_origin = WireClient.open(f"{server.url}?vsn=2.0.0", suppress_origin=True)
    try:
        no_origin.heartbeat()
    finally:
        no_origin.close()
