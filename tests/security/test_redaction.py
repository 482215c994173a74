"""Redaction edge cases (issue 13, item 13): no secret in a repr, a message or a log line.

* a token given as a bare query key (``?<token>``);
* a 403 whose body echoes our request line (raw-socket server);
* an identity provider reflecting the client secret in its OAuth ``error``;
* urllib3's DEBUG request log with the token URL's query (a real local HTTP server).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses

import maxsdk
from maxsdk._redaction import redact_query, redact_text
from maxsdk.auth import TokenProvider
from maxsdk.endpoint import redact_url

pytestmark = pytest.mark.timeout(30)

BARE = "bare0k3y7s3cr3t"
QUERY_SECRET = "qu3rys3cr3tv4lue"
HEADER_SECRET = "h34d3rs3cr3t"
CLIENT_SECRET = "cl13nt-s3cr3t-x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"wss://h/socket/websocket?{BARE}", "wss://h/socket/websocket?***"),
        (f"wss://h/socket/websocket?{BARE}&vsn=2.0.0", "wss://h/socket/websocket?***&vsn=2.0.0"),
        (f"wss://h/s?token={QUERY_SECRET}&{BARE}", "wss://h/s?token=***&***"),
        (f"wss://h/s?{BARE}=1", "wss://h/s?***"),  # digit-heavy key: a secret used as a name
        (f"wss://h/s?a%20b={QUERY_SECRET}", "wss://h/s?***"),
        (f"wss://u:{QUERY_SECRET}@h/s?user_id=7&filter[room]=x", "wss://***@h/s?user_id=***&filter[room]=***"),
    ],
)
def test_redact_url_hides_bare_keys_and_odd_keys(url, shown):
    assert redact_url(url) == shown


def test_redact_text_hides_queries_userinfo_and_bearer_tokens_in_free_text():
    text = (
        f"GET /socket/websocket?token={QUERY_SECRET}&{BARE}&vsn=2.0.0 HTTP/1.1\r\n"
        f"Authorization: Bearer {HEADER_SECRET}\r\nProxy: http://u:{CLIENT_SECRET}@proxy:3128\r\n"
    )
    redacted = redact_text(text)
    for secret in (QUERY_SECRET, BARE, HEADER_SECRET, CLIENT_SECRET):
        assert secret not in redacted
    assert "vsn=2.0.0" in redacted and "Bearer ***" in redacted
    assert redact_query("") == "" and redact_query("vsn=1.0.0") == "vsn=1.0.0"


def test_a_bare_query_key_token_is_not_in_repr_or_diagnostics():
    client = maxsdk.Client(f"ws://127.0.0.1:9/socket?{BARE}", reconnect=False)
    try:
        for text in (repr(client), repr(client.diagnostics()), str(client.diagnostics().url), repr(client.config)):
            assert BARE not in text, text
    finally:
        client.close()


def _echoing_403_server() -> tuple[socket.socket, threading.Thread]:
    """Refuses every upgrade with a 403 whose body is the request it received (a raw socket)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                body = b"Forbidden: " + request
                conn.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )

    thread = threading.Thread(target=serve, name="echo-403", daemon=True)
    thread.start()
    return listener, thread


def test_a_403_echoing_the_request_line_does_not_put_secrets_in_the_exception():
    listener, thread = _echoing_403_server()
    port = listener.getsockname()[1]
    client = maxsdk.Client(
        f"ws://127.0.0.1:{port}/socket?{BARE}",
        params={"token": QUERY_SECRET},
        headers={"Authorization": f"Bearer {HEADER_SECRET}"},
        reconnect=False,
    )
    try:
        with pytest.raises(maxsdk.ConnectFailedError) as caught:
            client.connect(timeout=10)
        chain: list[BaseException] = []
        error: BaseException | None = caught.value
        while error is not None and len(chain) < 10:
            chain.append(error)
            error = error.__cause__ or error.__context__
        texts = [f"{e!s} {e!r} {getattr(e, 'body', '')} {getattr(e, 'url', '')}" for e in chain]
        texts += [repr(client), repr(client.diagnostics())]
        for text in texts:
            for secret in (BARE, QUERY_SECRET, HEADER_SECRET):
                assert secret not in text, text
        assert any(isinstance(e, maxsdk.AuthenticationError) and e.status == 403 for e in chain), chain
    finally:
        client.close()
        listener.close()
        thread.join(5)


def test_handshake_error_redacts_an_echoed_request_in_its_body():
    error = maxsdk.HandshakeError(403, body=f"GET /socket/websocket?token={QUERY_SECRET}&{BARE} HTTP/1.1")
    assert QUERY_SECRET not in str(error) and BARE not in str(error) and QUERY_SECRET not in error.body
    assert "token=***" in error.body


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        {"error": CLIENT_SECRET, "error_description": f"bad secret {CLIENT_SECRET}"},
        {"error": f"invalid_client {CLIENT_SECRET}"},
        {"error": "invalid_client", "error_description": f"client_secret={CLIENT_SECRET} is wrong"},
    ],
)
def test_an_idp_reflecting_the_client_secret_does_not_get_it_into_token_fetch_error(body):
    url = "https://idp.example/token"
    responses.add(responses.POST, url, json=body, status=401)
    provider = TokenProvider(url, data={"grant_type": "client_credentials", "client_secret": CLIENT_SECRET})
    with pytest.raises(maxsdk.TokenFetchError) as caught:
        provider()
    error = caught.value
    for text in (str(error), repr(error), error.reason, str(error.url), repr(provider)):
        assert CLIENT_SECRET not in text, text
    if body["error"] == "invalid_client":
        assert "(invalid_client)" in str(error)  # a registered code is still shown
    provider.close()


class _TokenEndpoint(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"access_token": "tok", "expires_in": 60}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_urllib3_debug_log_does_not_print_the_token_url_query(caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/token?client_id=app&client_secret={CLIENT_SECRET}&{BARE}"
        with caplog.at_level(logging.DEBUG):
            provider = TokenProvider(url)
            assert provider() == "tok"
            provider.close()
        assert any(r.name.startswith("urllib3") for r in caplog.records), "urllib3 logged nothing"
        assert CLIENT_SECRET not in caplog.text and BARE not in caplog.text, caplog.text
        assert "client_secret=***" in caplog.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
