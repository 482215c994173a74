"""A TLS terminator in front of the embedded server, with a throwaway CA (trustme)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import trustme

from tests.support.relay import TcpRelay


class TLSFront(TcpRelay):
    """Accepts TLS on 127.0.0.1 and forwards plaintext to an upstream port."""

    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(upstream_port)

    def serve(self, raw: socket.socket) -> None:
        try:
            client = self.track(self._context.wrap_socket(raw, server_side=True))
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.pipe_both_ways(client, self.connect_upstream())


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(phoenix_server, ca) -> Iterator[tuple[str, trustme.CA]]:
    """``(wss url, CA)`` of the embedded server behind TLS with a certificate for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    front = TLSFront(phoenix_server.port, context)
    yield f"wss://127.0.0.1:{front.port}/socket", ca
    front.stop()
