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

Teardown stops servers abruptly (no close handshake to wait for), which the
clients under test see as a dropped connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maxsdk.server import PhoenixServer

__all__ = ["phoenix_server", "phoenix_server_factory", "phoenix_url"]

ServerFactory = Callable[..., PhoenixServer]


@pytest.fixture
def phoenix_server_factory() -> Iterator[ServerFactory]:
    """Make started servers (``factory(**PhoenixServer kwargs)``); all are stopped at teardown."""
    servers: list[PhoenixServer] = []

    def factory(*args: Any, **kwargs: Any) -> PhoenixServer:
        server = PhoenixServer(*args, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in reversed(servers):
        server.stop(abrupt=True)


@pytest.fixture
def phoenix_server(phoenix_server_factory: ServerFactory) -> PhoenixServer:
    """A started server running the reference app; stopped at teardown."""
    return phoenix_server_factory()


@pytest.fixture
def phoenix_url(phoenix_server: PhoenixServer) -> str:
    """``ws://127.0.0.1:PORT/socket/websocket?vsn=2.0.0`` of ``phoenix_server``."""
    return phoenix_server.url + "?vsn=2.0.0"
