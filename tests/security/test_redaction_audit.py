"""The redaction audit: a whole session at DEBUG, everything that can be printed, grepped for the secrets.

Secrets: a token in the query (fetched from a token endpoint with a client
secret in its URL and body), a header, the ``authToken`` subprotocol and a
SOCKS proxy password. Captured: every logger's records at DEBUG (maxsdk's and
its dependencies': urllib3, requests, websocket, persistqueue...), reprs,
``diagnostics()``, ``stats()``, every exception along the chain, and
the CLI's ``-vv`` output.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import maxsdk
from maxsdk.auth import TokenProvider
from maxsdk.server.settings import ServerSettings
from tests.support.socks5 import Socks5Proxy

pytestmark = pytest.mark.timeout(90)

QUERY_TOKEN = "qtok3n-AUDIT-1"
HEADER_SECRET = "hdr-AUDIT-s3cr3t"
SUBPROTOCOL_TOKEN = "subpr0t0-AUDIT"
PROXY_PASSWORD = "pr0xy-AUDIT-pw"
CLIENT_SECRET = "cl13nt-AUDIT-s3cr3t"
SECRETS = (
    QUERY_TOKEN,
    HEADER_SECRET,
    SUBPROTOCOL_TOKEN,
    base64.b64encode(SUBPROTOCOL_TOKEN.encode()).decode().rstrip("="),  # as it goes on the wire
    PROXY_PASSWORD,
    CLIENT_SECRET,
)


class _Everything(logging.Handler):
    """Formats every record, with its traceback, as a handler the user might install would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.names: set[str] = set()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._guard:
            self.lines.append(text)
            self.names.add(record.name)


class _TokenEndpoint(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"access_token": QUERY_TOKEN, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 20:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _texts_of(errors: list[BaseException]) -> list[str]:
    texts = []
    for error in errors:  # ours and any dependency's exception chained to them
        texts += [str(error), repr(error), repr(getattr(error, "__dict__", {}))]
        texts.append("".join(traceback.format_exception_only(error)))
    return texts


def test_a_debug_session_never_prints_a_secret(phoenix_server_factory: Any, tmp_path: Path) -> None:
    server = phoenix_server_factory(token=QUERY_TOKEN, settings=ServerSettings(auth_token=True))
    idp = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    idp_thread = threading.Thread(target=idp.serve_forever, daemon=True)
    idp_thread.start()
    proxy = Socks5Proxy(credentials=("audit", PROXY_PASSWORD))
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    loggers = ["maxsdk", "urllib3", "requests", "websocket", "persistqueue", "blinker", "python_socks", "socks"]
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts: list[str] = []
    try:
        token_url = f"http://127.0.0.1:{idp.server_address[1]}/oauth/token?client_secret={CLIENT_SECRET}"
        provider = TokenProvider(token_url, data={"grant_type": "client_credentials", "client_secret": CLIENT_SECRET})
        client = maxsdk.Client(
            server.url,
            params=lambda: {"token": provider()},
            headers={"Authorization": f"Bearer {HEADER_SECRET}", "X-Api-Key": HEADER_SECRET},
            auth_token=SUBPROTOCOL_TOKEN,
            proxy=f"socks5://audit:{PROXY_PASSWORD}@{proxy.address}",
            outbox=str(tmp_path / "outbox"),
        )
        with client:
            room = client.join("room:lobby", {"password": CLIENT_SECRET})
            assert room.push("echo", {"n": 1}).response == {"n": 1}
            room.send("echo", {"durable": True})
            try:
                room.push("no_such_event_replies_error", {}, timeout=2)
            except maxsdk.MaxsdkError as exc:
                texts += _texts_of(_chain(exc))
            texts += [
                repr(client),
                repr(room),
                repr(client.config),
                repr(provider),
                repr(room.presence),
            ]
            texts += [repr(client.diagnostics()), repr(client.stats()), repr(room.stats())]
            texts += [repr(client.socket_diagnostics()), repr(client.socket_stats())]
        # A refused connection with the same credentials: its whole exception chain.
        refusing = maxsdk.Client(
            server.url,
            params={"token": "wrong", "other": QUERY_TOKEN},
            headers={"Authorization": f"Bearer {HEADER_SECRET}"},
            auth_token=SUBPROTOCOL_TOKEN,
            reconnect=False,
        )
        with pytest.raises(maxsdk.ConnectFailedError) as caught:
            refusing.connect(timeout=10)
        texts += [*_texts_of(_chain(caught.value)), repr(refusing), repr(refusing.diagnostics())]
        refusing.close()
        provider.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        proxy.stop()
        idp.shutdown()
        idp.server_close()
        idp_thread.join(5)
    assert proxy.requests, "the session did not go through the proxy"
    assert {"maxsdk.frames", "urllib3.connectionpool"} <= handler.names, handler.names  # DEBUG really was on
    client_lines = [line for line in handler.lines if not line.startswith("maxsdk.server")]
    everything = "\n".join(client_lines + texts)
    leaks = {secret: [t for t in client_lines + texts if secret in t][:3] for secret in SECRETS if secret in everything}
    assert not leaks, leaks


def test_cli_vv_output_has_no_secret(phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(token=QUERY_TOKEN)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "maxsdk",
            "-vv",
            "push",
            server.url,
            "room:lobby",
            "echo",
            '{"x": 1}',
            "--token",
            QUERY_TOKEN,
            "--param",
            f"api_key={CLIENT_SECRET}",
            "--join-payload",
            json.dumps({"password": HEADER_SECRET}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "maxsdk.frames" in result.stderr  # -vv really logged frames
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "maxsdk.server" not in line]
    leaks = [line for line in lines if any(secret in line for secret in SECRETS)]
    assert not leaks, leaks
