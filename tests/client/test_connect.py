"""Connecting: URL and params, vsn, refused upgrades, auth token, origin, redaction (checklist 1-5)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import pytest

import maxsdk
from maxsdk import AuthenticationError, Client, ConnectionState, HandshakeError
from maxsdk.endpoint import build_socket_url, encode_params, redact_url
from maxsdk.server import Refuse, ServerSettings
from tests.client.helpers import SignalLog, fast_client


def test_checklist_01_connects_with_vsn_2_last(phoenix_server):
    with Client(phoenix_server.url, params={"a": "1"}) as client:
        assert client.state is ConnectionState.CONNECTED
        event = phoenix_server.wait_for_event(lambda e: e.kind == "opened")
        assert event.vsn == "2.0.0"
        assert event.params["a"] == "1"


def test_checklist_01_url_puts_vsn_last_and_appends_websocket():
    url = build_socket_url("ws://h:4000/socket", {"token": "x", "vsn": "9"}, "2.0.0")
    assert url == "ws://h:4000/socket/websocket?token=x&vsn=2.0.0"
    assert build_socket_url("https://h/socket/websocket?a=1", None, "2.0.0") == "wss://h/socket/websocket?a=1&vsn=2.0.0"


def test_checklist_01_v1_serializer_works_end_to_end(phoenix_server):
    with Client(phoenix_server.url, vsn="1.0.0") as client:
        room = client.join("room:lobby")
        assert room.push("echo", {"v": 1}).response == {"v": 1}
        assert phoenix_server.wait_for_event(lambda e: e.kind == "opened").vsn == "1.0.0"


def test_checklist_01_unsupported_vsn_is_refused_locally():
    with pytest.raises(maxsdk.ConfigurationError):
        Client("ws://127.0.0.1:1/socket", vsn="3.0.0")


def test_checklist_02_nested_params_use_bracket_keys():
    assert encode_params({"user": {"id": 1, "tags": ["a", "b"]}, "ok": True, "none": None}) == [
        ("user[id]", "1"),
        ("user[tags][0]", "a"),
        ("user[tags][1]", "b"),
        ("ok", "true"),
        ("none", ""),
    ]


def test_checklist_02_nested_params_reach_the_server(phoenix_server):
    with Client(phoenix_server.url, params={"user": {"id": 7}}):
        event = phoenix_server.wait_for_event(lambda e: e.kind == "opened")
        assert event.params["user"] == {"id": "7"}


def test_checklist_02_params_callable_is_evaluated_on_every_attempt(phoenix_server):
    calls = []

    def params():
        calls.append(1)
        return {"attempt": str(len(calls))}

    client = fast_client(phoenix_server.url, params=params)
    log = SignalLog(client)
    with client:
        phoenix_server.wait_for_connections(1)
        phoenix_server.drop_connections()
        log.wait_for("connected", lambda kw: kw["reconnect"])
        phoenix_server.wait_for_connections(1)  # the second connection is recorded too
        opened = [e for e in phoenix_server.events() if e.kind == "opened"]
        assert [e.params["attempt"] for e in opened] == ["1", "2"]


def test_checklist_03_refused_connect_raises_authentication_error_at_once(phoenix_server_factory):
    server = phoenix_server_factory(token="secret")
    client = Client(server.url, params={"token": "wrong"}, connect_timeout=5)
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        client.connect()
    assert info.value.status == 403
    assert time.monotonic() - started < 2.0, "a 403 must not be retried until the timeout"
    assert client.state is ConnectionState.CLOSED
    client.close()


def test_checklist_03_custom_refusal_status_is_surfaced(phoenix_server_factory):
    server = phoenix_server_factory(connect=lambda request: Refuse(404))
    client = Client(server.url)
    with pytest.raises(HandshakeError) as info:
        client.connect()
    assert info.value.status == 404
    client.close()


@contextlib.contextmanager
def _connecting_while_refused(server) -> Iterator[tuple[Client, SignalLog]]:
    """A client connecting in the background to ``server``, which refuses with 503 for now."""
    server.refuse_connections(503)
    client = fast_client(server.url)
    log = SignalLog(client)
    client.connect_nowait()
    try:
        yield client, log
    finally:
        client.close()


def test_checklist_03_retryable_refusal_is_retried_until_it_succeeds(phoenix_server):
    with _connecting_while_refused(phoenix_server) as (_client, log):
        log.wait_for("reconnecting", count=2)
        phoenix_server.accept_connections()
        log.wait_for("connected")
        failures = [kw["error"] for kw in log.of("reconnecting")]
        assert all(isinstance(e, HandshakeError) and e.status == 503 for e in failures)


def test_checklist_04_auth_token_goes_in_the_subprotocol(phoenix_server_factory):
    seen = []

    def connect(request):
        seen.append(request.auth_token)
        return True

    server = phoenix_server_factory(connect=connect, settings=ServerSettings(auth_token=True))
    with Client(server.url, auth_token="s3cr3t/+token") as client:
        assert client.join("room:lobby").joined
    assert seen == ["s3cr3t/+token"]


def test_checklist_05_no_origin_header_unless_configured(phoenix_server_factory):
    headers = []

    def connect(request):
        headers.append(dict(request.headers))
        return True

    server = phoenix_server_factory(connect=connect)
    with Client(server.url):
        pass
    with Client(server.url, origin="https://app.example"):
        pass
    assert "origin" not in headers[0]
    assert headers[1]["origin"] == "https://app.example"


def test_custom_headers_are_sent(phoenix_server_factory):
    headers = []
    server = phoenix_server_factory(connect=lambda r: headers.append(dict(r.headers)) or True)
    with Client(server.url, headers={"X-Api-Key": "k"}):
        pass
    assert headers[0]["x-api-key"] == "k"


def test_connection_refused_times_out_with_the_cause_chained():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = fast_client(f"ws://127.0.0.1:{port}/socket")
    with pytest.raises(maxsdk.ConnectTimeoutError) as info:
        client.connect(timeout=0.5)
    assert isinstance(info.value.__cause__, maxsdk.ConnectFailedError)
    assert "refused" in str(info.value)
    assert client.state is not ConnectionState.CONNECTED
    client.close()


def test_redaction_hides_tokens_in_urls_reprs_errors_and_logs(phoenix_server_factory, caplog):
    server = phoenix_server_factory(token="right")
    assert redact_url("wss://u:pw@h/s?token=abc&vsn=2.0.0") == "wss://***@h/s?token=***&vsn=2.0.0"
    client = Client(server.url, params={"token": "TOPSECRET"})
    caplog.set_level(logging.DEBUG, logger="maxsdk")
    with pytest.raises(AuthenticationError) as info:
        client.connect()
    client.close()
    texts = [str(info.value), repr(info.value), repr(client), repr(client.config), str(client.diagnostics())]
    texts += [r.getMessage() for r in caplog.records if not r.name.startswith("maxsdk.server")]
    assert all("TOPSECRET" not in text for text in texts)
    assert any("token=***" in text for text in texts)


def test_bad_url_is_a_configuration_error():
    with pytest.raises(maxsdk.ConfigurationError):
        Client("localhost:4000/socket")
    with pytest.raises(maxsdk.ConfigurationError):
        Client("ftp://localhost/socket")


def test_unknown_option_and_bad_values_are_rejected():
    with pytest.raises(TypeError):
        Client("ws://h/socket", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(maxsdk.ConfigurationError):
        Client("ws://h/socket", timeout=0)
    with pytest.raises(maxsdk.ConfigurationError):
        Client("ws://h/socket", overflow="explode")


def test_push_timeouts_fire_while_every_connection_attempt_is_refused(phoenix_server):
    """The timer runs from the first retry on, though no connection ever opened."""
    with _connecting_while_refused(phoenix_server) as (client, log):
        log.wait_for("reconnecting")
        room = client.join_nowait("room:lobby")
        pending = room.push_nowait("echo", {"n": 1}, timeout=0.2)
        assert pending.wait_done(3.0), "the push's own deadline ended it, with no connection"
        with pytest.raises(maxsdk.ReplyTimeoutError):
            pending.wait(0)
