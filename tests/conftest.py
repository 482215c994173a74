"""Shared fixtures: every test fails if it leaves a client thread running."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

pytest_plugins = ["maxsdk.testing"]

CLIENT_THREAD = re.compile(r"^maxsdk-\d+-(reader|timer|dispatch|dispatch-\d+|outbox)$")


def client_threads() -> list[threading.Thread]:
    """Threads started by maxsdk clients (default names) that are still alive."""
    return [t for t in threading.enumerate() if CLIENT_THREAD.match(t.name) and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_client_threads() -> Iterator[None]:
    """Fail a test that leaves client threads behind (close() must join them all)."""
    before = set(client_threads())
    yield
    deadline = time.monotonic() + 3.0
    leaked = [t for t in client_threads() if t not in before]
    while leaked and time.monotonic() < deadline:
        leaked[0].join(0.1)
        leaked = [t for t in client_threads() if t not in before]
    if leaked:
        pytest.fail(f"client threads still running after the test: {sorted(t.name for t in leaked)}")
