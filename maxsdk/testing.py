"""Pytest fixtures backed by the embedded Phoenix server (:mod:`maxsdk.server`).

Enable them in your top-level ``conftest.py``::

    pytest_plugins = ["maxsdk.testing"]

Then::

    def test_echo(phoenix_server):
        ws = websocket.create_connection(phoenix_server.url + "?vsn=2.0.0")
        ...

    def test_idle(phoenix_server_factory):
        server = phoenix_server_factory(settings=ServerSettings(idle_timeout=0.5))
        ...

Fixtures:

* ``phoenix_server``: a started :class:`~maxsdk.server.PhoenixServer` running
  the reference app on 127.0.0.1 and a free port; stopped at teardown.
* ``phoenix_server_factory``: ``factory(**kwargs) -> PhoenixServer`` with the
  constructor's arguments; every server it made is started now and stopped at
  teardown.
* ``phoenix_url``: the ``phoenix_server`` URL with ``?vsn=2.0.0``.
* ``jsonrpc_server`` / ``jsonrpc_server_factory``: a started
  :class:`~maxsdk.server.JsonRpcServer` (JSON-RPC 2.0), or a factory of them.
* ``json_topic_server`` / ``json_topic_server_factory``: a started
  :class:`~maxsdk.server.JsonTopicServer` (JSON topic feed), or a factory of them.

Teardown stops servers abruptly (no close handshake to wait for), which the
clients under test see as a dropped connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from maxsdk.server import JsonRpcServer, JsonTopicServer, PhoenixServer

__all__ = [
    "json_topic_server",
    "json_topic_server_factory",
    "jsonrpc_server",
    "jsonrpc_server_factory",
    "phoenix_server",
    "phoenix_server_factory",
    "phoenix_url",
]

ServerFactory = Callable[..., PhoenixServer]


S = TypeVar("S", PhoenixServer, JsonRpcServer, JsonTopicServer)


def _started_servers(server_class: type[S]) -> Iterator[Callable[..., S]]:
    """Yield a factory of started servers of ``server_class``; stop them all afterwards."""
    servers: list[S] = []

    def factory(*args: Any, **kwargs: Any) -> S:
        server = server_class(*args, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in reversed(servers):
        server.stop(abrupt=True)


@pytest.fixture
def phoenix_server_factory() -> Iterator[ServerFactory]:
    """Make started servers (``factory(**PhoenixServer kwargs)``); all are stopped at teardown."""
    yield from _started_servers(PhoenixServer)


@pytest.fixture
def phoenix_server(phoenix_server_factory: ServerFactory) -> PhoenixServer:
    """A started server running the reference app; stopped at teardown."""
    return phoenix_server_factory()


@pytest.fixture
def phoenix_url(phoenix_server: PhoenixServer) -> str:
    """``ws://127.0.0.1:PORT/socket/websocket?vsn=2.0.0`` of ``phoenix_server``."""
    return phoenix_server.url + "?vsn=2.0.0"


@pytest.fixture
def jsonrpc_server_factory() -> Iterator[Callable[..., JsonRpcServer]]:
    """Make started JSON-RPC servers (``factory(**JsonRpcServer kwargs)``); all are stopped at teardown."""
    yield from _started_servers(JsonRpcServer)


@pytest.fixture
def jsonrpc_server(jsonrpc_server_factory: Callable[..., JsonRpcServer]) -> JsonRpcServer:
    """A started JSON-RPC 2.0 server (reference methods); stopped at teardown."""
    return jsonrpc_server_factory()


@pytest.fixture
def json_topic_server_factory() -> Iterator[Callable[..., JsonTopicServer]]:
    """Make started JSON topic-feed servers; all are stopped at teardown."""
    yield from _started_servers(JsonTopicServer)


@pytest.fixture
def json_topic_server(json_topic_server_factory: Callable[..., JsonTopicServer]) -> JsonTopicServer:
    """A started JSON topic-feed server; stopped at teardown."""
    return json_topic_server_factory()
