"""Fixtures: third-party servers (see servers.py) and a condition wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Callable

import pytest

from tests.interop.servers import JsonRpcLibraryServer, NesServer, RpcWebsocketsServer


@pytest.fixture
def rpc_websockets() -> Iterator[RpcWebsocketsServer]:
    server = RpcWebsocketsServer()
    yield server
    server.stop()


@pytest.fixture
def jsonrpc_library() -> Iterator[JsonRpcLibraryServer]:
    server = JsonRpcLibraryServer()
    yield server
    server.stop()


@pytest.fixture
def nes() -> Iterator[NesServer]:
    server = NesServer()
    yield server
    server.stop()


def wait_until(condition: Callable[[], object], timeout: float = 10.0, message: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.01)
