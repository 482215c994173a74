"""After ``os.fork()``, the observability calls refuse in the child instead of deadlocking (issue 13, item 10).

A fork copies the engine's lock in whatever state another thread left it: a
reader thread busy with a message flood holds it often. The child must raise
:class:`~maxsdk.ForkedClientError` at once, never wait on that lock.
"""

from __future__ import annotations

import os
import select
import signal
import threading

import pytest

import maxsdk
from maxsdk import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

CHILDREN = 20
CHILD_TIMEOUT = 10.0


def _run_child(client: Client, room: maxsdk.Channel, write: int) -> None:
    """In the child: call every observability method, report the outcomes, never return into pytest."""
    outcomes = []
    for call in (client.diagnostics, client.stats, client.socket_diagnostics, client.socket_stats, room.stats):
        try:
            call()
            outcomes.append("returned")
        except maxsdk.ForkedClientError:
            outcomes.append("ForkedClientError")
        except BaseException as exc:  # report anything else to the parent
            outcomes.append(type(exc).__name__)
    os.write(write, ",".join(outcomes).encode())
    os._exit(0)


def _wait_for_child(pid: int, read: int) -> str | None:
    """The child's report, or None if it did not answer within CHILD_TIMEOUT (then it is killed)."""
    ready, _, _ = select.select([read], [], [], CHILD_TIMEOUT)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None
    report = os.read(read, 1000).decode()
    os.waitpid(pid, 0)
    return report


def test_diagnostics_and_stats_in_forked_children_during_a_flood_raise_instead_of_deadlocking(phoenix_server):
    client = Client(phoenix_server.url)
    client.connect()
    room = client.join("room:flood")
    received = threading.Event()
    room.on("tick", lambda payload: received.set())
    stop = threading.Event()

    def flood() -> None:
        n = 0
        while not stop.is_set():
            phoenix_server.broadcast("room:flood", "tick", {"n": n, "pad": "x" * 200})
            n += 1

    flooder = threading.Thread(target=flood, name="flood", daemon=True)
    flooder.start()
    try:
        assert received.wait(10), "the flood never reached the client"
        reports = []
        for _ in range(CHILDREN):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                _run_child(client, room, write)
            os.close(write)
            try:
                reports.append(_wait_for_child(pid, read))
            finally:
                os.close(read)
    finally:
        stop.set()
        flooder.join(10)
    expected = ",".join(["ForkedClientError"] * 5)
    assert reports == [expected] * CHILDREN, reports
    # The parent is untouched by its children's attempts.
    assert client.diagnostics().state is maxsdk.ConnectionState.CONNECTED
    assert client.stats().frames_in > 0
    client.close()
