"""wss:// verifies certificates by default; opting out warns; a custom CA works."""

from __future__ import annotations

import logging
import ssl
import time

import pytest

import maxsdk
from maxsdk import Client


def test_unverifiable_certificate_is_a_clear_fatal_error(tls_server):
    url, _ = tls_server
    client = Client(url, connect_timeout=5)
    started = time.monotonic()
    with pytest.raises(maxsdk.TLSVerificationError) as info:
        client.connect(timeout=5)
    assert time.monotonic() - started < 3, "a certificate failure is not retried"
    assert "certificate" in str(info.value).lower()
    client.close()


def test_trusted_ca_file_connects(tls_server, tmp_path):
    url, ca = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with Client(url, ca_file=str(bundle)) as client:
        assert client.join("room:lobby").push("echo", {"tls": True}).response == {"tls": True}


def test_custom_ssl_context_connects(tls_server):
    url, ca = tls_server
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with Client(url, ssl_context=context) as client:
        assert client.join("room:lobby").joined


def test_opting_out_of_verification_works_and_warns(tls_server, caplog):
    url, _ = tls_server
    caplog.set_level(logging.WARNING, logger="maxsdk")
    with Client(url, verify_tls=False) as client:
        assert client.join("room:lobby").joined
    assert any("verification is DISABLED" in r.getMessage() for r in caplog.records)


def test_default_context_requires_tls_1_2_and_hostname_checks():
    from maxsdk.config import ClientConfig, make_ssl_context

    context = make_ssl_context(ClientConfig.build("wss://example.invalid/socket"))
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED


def test_wrong_hostname_is_refused(phoenix_server, ca):
    from tests.tls.conftest import TLSFront

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(context)
    front = TLSFront(phoenix_server.port, context)
    try:
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        client = Client(f"wss://127.0.0.1:{front.port}/socket", ssl_context=client_context)
        with pytest.raises(maxsdk.TLSVerificationError):
            client.connect(timeout=5)
        client.close()
    finally:
        front.stop()
