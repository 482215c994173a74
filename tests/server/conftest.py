"""Fixtures for the embedded server's tests: real servers on 127.0.0.1:0, raw clients, leak checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maxsdk.server import PhoenixServer

from .wire import WireClient

ServerFactory = Callable[..., PhoenixServer]
ClientFactory = Callable[..., WireClient]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves any thread it started running (servers must join them all)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    while leaked and time.monotonic() < deadline:
        leaked[0].join(0.1)
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    if leaked:
        pytest.fail(f"threads still running after the test: {sorted(t.name for t in leaked)}")


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Start servers with ``PhoenixServer`` arguments; stopped (abruptly) at teardown."""
    servers: list[PhoenixServer] = []

    def factory(*args: Any, **kwargs: Any) -> PhoenixServer:
        server = PhoenixServer(*args, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop(abrupt=True)


@pytest.fixture
def server(make_server: ServerFactory) -> PhoenixServer:
    """A reference-app server with default (Phoenix 1.8.12) settings."""
    return make_server()


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    """Open raw clients: ``connect(server, vsn="2.0.0", **params)``; closed at teardown."""
    clients: list[WireClient] = []

    def factory(server: PhoenixServer, vsn: str | None = "2.0.0", **params: str) -> WireClient:
        query = dict(params)
        if vsn is not None:
            query["vsn"] = vsn
        url = server.url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        client = WireClient.open(url)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()
