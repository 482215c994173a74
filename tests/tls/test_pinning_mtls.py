"""TLS beyond verification: SPKI pins (with rotation) and client certificates, on all three sides.

The WebSocket, the long-poll transport and the token endpoint are each driven
against local TLS servers with throwaway certificates (trustme). A wrong pin
must be refused right after the TLS handshake, before any byte of a request
(credentials included) is sent: the raw TLS servers here record every byte
they receive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate

import maxsdk
from maxsdk import Client, TLSConfig, TokenProvider
from tests.tls.conftest import TLSFront

pytestmark = pytest.mark.timeout(60)

SECRET_PASSWORD = "k3y-pa55-s3cret"
WRONG_PIN = "sha256/" + base64.b64encode(hashlib.sha256(b"not the key").digest()).decode()


def reference_pin(pem: bytes) -> str:
    """The pin as `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256` computes it."""
    key = load_pem_x509_certificate(pem).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


class RecordingTLSServer:
    """Completes TLS handshakes on 127.0.0.1 and records what each client sends afterwards (never answers)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.handshakes = 0
        self.received = b""
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(raw,), daemon=True).start()

    def _one(self, raw: socket.socket) -> None:
        try:
            conn = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        with self._cond:
            self.handshakes += 1
            self._cond.notify_all()
        conn.settimeout(10)
        try:
            while chunk := conn.recv(65536):
                with self._cond:
                    self.received += chunk
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()
            with self._cond:
                self._cond.notify_all()

    def wait_handshakes(self, count: int, timeout: float = 10) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.handshakes >= count, timeout)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def right_pin(server_cert: trustme.LeafCert) -> str:
    return reference_pin(server_cert.cert_chain_pems[0].bytes())


def server_context(cert: trustme.LeafCert, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def front(phoenix_server: Any, server_cert: trustme.LeafCert) -> Iterator[TLSFront]:
    relay = TLSFront(phoenix_server.port, server_context(server_cert))
    yield relay
    relay.stop()


@pytest.fixture
def recorder(server_cert: trustme.LeafCert) -> Iterator[RecordingTLSServer]:
    server = RecordingTLSServer(server_context(server_cert))
    yield server
    server.close()


# -- the pin itself ---------------------------------------------------------------------------


def test_certificate_pin_is_the_sha256_of_the_subject_public_key_info(server_cert: trustme.LeafCert) -> None:
    pem = server_cert.cert_chain_pems[0].bytes()
    assert maxsdk.certificate_pin(pem.decode()) == reference_pin(pem)
    assert maxsdk.certificate_pin(ssl.PEM_cert_to_DER_cert(pem.decode())) == reference_pin(pem)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_certificate_pin_matches_the_openssl_recipe(server_cert: trustme.LeafCert, tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(path))
    pubkey = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(path)], capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey.stdout, capture_output=True)
    expected = "sha256/" + base64.b64encode(hashlib.sha256(der.stdout).digest()).decode()
    assert maxsdk.certificate_pin(path.read_text()) == expected


@pytest.mark.parametrize(
    "pins",
    [["abc"], ["sha256/short"], ["sha1/" + "A" * 27 + "="], [b"raw"], 42],
    ids=["no-prefix", "short", "sha1", "bytes", "not-a-list"],
)
def test_malformed_pins_are_configuration_errors(pins: Any) -> None:
    with pytest.raises(maxsdk.ConfigurationError):
        TLSConfig(pins=pins)


def test_tls_and_the_flat_options_cannot_be_mixed(ca_file: str) -> None:
    with pytest.raises(maxsdk.ConfigurationError, match="replaces"):
        Client("wss://127.0.0.1:1/socket", tls=TLSConfig(), ca_file=ca_file)
    with pytest.raises(maxsdk.ConfigurationError, match="replaces"):
        Client("wss://127.0.0.1:1/socket", tls=TLSConfig(), verify_tls=False)
    with pytest.raises(maxsdk.ConfigurationError, match="TLSConfig"):
        Client("wss://127.0.0.1:1/socket", tls={"pins": []})
    with pytest.raises(maxsdk.ConfigurationError, match="replaces"):
        TokenProvider("https://127.0.0.1:1/token", tls=TLSConfig(), verify=False)
    with pytest.raises(maxsdk.ConfigurationError, match="client_cert"):
        TLSConfig(client_key=ca_file)


# -- WebSocket --------------------------------------------------------------------------------


def test_websocket_with_the_right_pin_connects(front: TLSFront, ca_file: str, right_pin: str) -> None:
    tls = TLSConfig(ca_file=ca_file, pins=[right_pin])
    with Client(f"wss://127.0.0.1:{front.port}/socket", tls=tls) as client:
        assert client.join("room:lobby").push("echo", {"pinned": True}).response == {"pinned": True}


def test_rotation_any_one_pin_is_enough(front: TLSFront, ca_file: str, right_pin: str) -> None:
    tls = TLSConfig(ca_file=ca_file, pins=[WRONG_PIN, right_pin])
    with Client(f"wss://127.0.0.1:{front.port}/socket", tls=tls) as client:
        assert client.join("room:lobby").joined


def test_websocket_with_a_wrong_pin_sends_nothing_and_is_not_retried(
    recorder: RecordingTLSServer, ca_file: str, right_pin: str
) -> None:
    tls = TLSConfig(ca_file=ca_file, pins=[WRONG_PIN])
    client = Client(
        f"wss://127.0.0.1:{recorder.port}/socket",
        tls=tls,
        auth_token="ws-secret-token",
        headers={"Authorization": "Bearer ws-secret-token"},
        reconnect=maxsdk.Backoff(steps=(0.01,), jitter="none"),
    )
    try:
        with pytest.raises(maxsdk.CertificatePinError) as info:
            client.connect(timeout=5)
    finally:
        client.close()
    assert info.value.seen == right_pin
    assert info.value.expected == (WRONG_PIN,)
    assert right_pin in str(info.value) and WRONG_PIN in str(info.value)
    assert isinstance(info.value, maxsdk.TLSVerificationError)
    assert recorder.wait_handshakes(1)
    # A retryable failure would have kept connect() trying until its timeout (ConnectTimeoutError).
    assert recorder.handshakes == 1, "a pin mismatch is fatal: no second attempt"
    assert recorder.received == b"", "bytes were sent to a server that failed the pin"


def test_pins_do_not_replace_verification(recorder: RecordingTLSServer, right_pin: str) -> None:
    # The right pin, but a certificate from a CA the client does not trust.
    client = Client(f"wss://127.0.0.1:{recorder.port}/socket", tls=TLSConfig(pins=[right_pin]))
    try:
        with pytest.raises(maxsdk.TLSVerificationError) as info:
            client.connect(timeout=5)
    finally:
        client.close()
    assert not isinstance(info.value, maxsdk.CertificatePinError)
    assert recorder.received == b""


# -- long-poll --------------------------------------------------------------------------------


def test_long_poll_with_the_right_pin_works(front: TLSFront, ca_file: str, right_pin: str) -> None:
    tls = TLSConfig(ca_file=ca_file, pins=[right_pin])
    with Client(f"wss://127.0.0.1:{front.port}/socket", tls=tls, transport="longpoll") as client:
        assert client.join("room:lobby").push("echo", {"lp": 1}).response == {"lp": 1}


def test_long_poll_with_a_wrong_pin_sends_nothing(recorder: RecordingTLSServer, ca_file: str) -> None:
    tls = TLSConfig(ca_file=ca_file, pins=[WRONG_PIN])
    client = Client(
        f"wss://127.0.0.1:{recorder.port}/socket",
        tls=tls,
        transport="longpoll",
        auth_token="lp-secret-token",
        reconnect=maxsdk.Backoff(steps=(0.01,), jitter="none"),
    )
    try:
        with pytest.raises(maxsdk.CertificatePinError):
            client.connect(timeout=5)
    finally:
        client.close()
    assert recorder.wait_handshakes(1)
    assert recorder.handshakes == 1
    assert recorder.received == b""


# -- token endpoint ---------------------------------------------------------------------------


class TokenServer:
    """An HTTPS token endpoint on 127.0.0.1 (optionally requiring a client certificate)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.dumps({"access_token": "tok-123", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_token_endpoint_with_the_right_pin(server_cert: trustme.LeafCert, ca_file: str, right_pin: str) -> None:
    server = TokenServer(server_context(server_cert))
    try:
        provider = TokenProvider(server.url, tls=TLSConfig(ca_file=ca_file, pins=[WRONG_PIN, right_pin]))
        assert provider() == "tok-123"
        provider.close()
    finally:
        server.close()


def test_token_endpoint_with_a_wrong_pin_sends_no_credential_and_is_not_retried(
    recorder: RecordingTLSServer, ca_file: str
) -> None:
    provider = TokenProvider(
        f"https://127.0.0.1:{recorder.port}/token",
        data={"client_secret": "oauth-client-secret"},
        tls=TLSConfig(ca_file=ca_file, pins=[WRONG_PIN]),
        retry=maxsdk.Backoff.constant(0.0, max_attempts=3),
    )
    try:
        with pytest.raises(maxsdk.TokenFetchError, match="none of the pins") as info:
            provider()
    finally:
        provider.close()
    assert recorder.wait_handshakes(1)
    assert info.value.attempts == 1, "a pin mismatch is not retried"
    assert recorder.handshakes == 1
    assert recorder.received == b""


# -- client certificates (mutual TLS) ---------------------------------------------------------


@pytest.fixture
def client_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """A client certificate from the same CA: combined PEM, and cert + password-protected key."""
    leaf = ca.issue_cert("client@example.test")
    combined = tmp_path / "client.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(combined))
    cert = tmp_path / "client-cert.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = tmp_path / "client-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(SECRET_PASSWORD.encode()),
        )
    )
    return {"combined": str(combined), "cert": str(cert), "key": str(encrypted)}


@pytest.fixture
def mtls_front(phoenix_server: Any, server_cert: trustme.LeafCert, ca: trustme.CA) -> Iterator[TLSFront]:
    relay = TLSFront(phoenix_server.port, server_context(server_cert, client_ca=ca))
    yield relay
    relay.stop()


def test_a_server_requiring_a_client_certificate_accepts_ours(
    mtls_front: TLSFront, ca_file: str, client_files: dict[str, str], right_pin: str
) -> None:
    tls = TLSConfig(ca_file=ca_file, client_cert=client_files["combined"], pins=[right_pin])
    url = f"wss://127.0.0.1:{mtls_front.port}/socket"
    with Client(url, tls=tls) as client:
        assert client.join("room:lobby").joined
    with Client(url, tls=tls, transport="longpoll") as client:
        assert client.join("room:lobby").joined


def test_an_encrypted_key_with_its_password(
    mtls_front: TLSFront, ca_file: str, client_files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    tls = TLSConfig(
        ca_file=ca_file, client_cert=client_files["cert"], client_key=client_files["key"], key_password=SECRET_PASSWORD
    )
    with Client(f"wss://127.0.0.1:{mtls_front.port}/socket", tls=tls) as client:
        assert client.join("room:lobby").joined
        shown = [repr(tls), repr(client), str(client.diagnostics())]
    shown.append(caplog.text)
    assert SECRET_PASSWORD not in "\n".join(shown)
    assert "key_password='***'" in repr(tls)


def test_a_wrong_key_password_is_a_configuration_error_without_the_password(
    ca_file: str, client_files: dict[str, str]
) -> None:
    with pytest.raises(maxsdk.ConfigurationError) as info:
        TLSConfig(
            client_cert=client_files["cert"], client_key=client_files["key"], key_password="wrong-" + SECRET_PASSWORD
        )
    assert SECRET_PASSWORD not in str(info.value)
    assert "client-cert.pem" in str(info.value)


def test_without_a_client_certificate_the_server_refuses_with_a_typed_error(mtls_front: TLSFront, ca_file: str) -> None:
    client = Client(
        f"wss://127.0.0.1:{mtls_front.port}/socket",
        tls=TLSConfig(ca_file=ca_file),
        reconnect=maxsdk.Backoff(steps=(0.05,), jitter="none", max_attempts=1),
    )
    try:
        with pytest.raises(maxsdk.ConnectFailedError):
            client.connect(timeout=3)
    finally:
        client.close()


def test_the_token_endpoint_uses_the_same_client_certificate(
    server_cert: trustme.LeafCert, ca: trustme.CA, ca_file: str, client_files: dict[str, str]
) -> None:
    server = TokenServer(server_context(server_cert, client_ca=ca))
    try:
        with_cert = TokenProvider(server.url, tls=TLSConfig(ca_file=ca_file, client_cert=client_files["combined"]))
        assert with_cert() == "tok-123"
        with_cert.close()
        without = TokenProvider(
            server.url, tls=TLSConfig(ca_file=ca_file), retry=maxsdk.Backoff.constant(0.0, max_attempts=1)
        )
        with pytest.raises(maxsdk.TokenFetchError):
            without()
        without.close()
    finally:
        server.close()
    assert server.requests == 1
