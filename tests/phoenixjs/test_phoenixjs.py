"""The official phoenix.js client (npm ``phoenix`` 1.8.12) against the embedded server.

``run.js`` drives the WebSocket transport, ``longpoll.js`` the LongPoll one
(on Node's global ``fetch``: phoenix.js's Ajax falls back to it when there is
no ``XMLHttpRequest``, so no shim package is needed).

Needs Node (CI has it): the test fails, never skips, when ``node`` or ``npm``
is missing. ``npm ci`` runs first when ``node_modules`` is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maxsdk.server import ConnectRequest, PhoenixServer, ServerSettings

HERE = Path(__file__).resolve().parent


def ensure_node_modules() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the phoenix.js test (install Node >= 18)")
    if not (HERE / "node_modules" / "phoenix").is_dir():
        command = "ci" if (HERE / "package-lock.json").exists() else "install"
        subprocess.run(
            [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )
    return node


def run_phoenixjs(node: str, *endpoints: str, script: str = "run.js") -> dict[str, Any]:
    completed = subprocess.run(
        [node, str(HERE / script), *endpoints],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no output from node (rc={completed.returncode}): {completed.stderr}"
    output: dict[str, Any] = json.loads(lines[-1])
    assert output["ok"], f"{output.get('error')}\nresults so far: {output.get('results')}\n{completed.stderr}"
    results: dict[str, Any] = output["results"]
    return results


@pytest.mark.timeout(360)
def test_phoenixjs_against_the_embedded_server() -> None:
    node = ensure_node_modules()
    tokens: list[str | None] = []

    def with_token(request: ConnectRequest) -> bool:
        tokens.append(request.auth_token)
        return request.auth_token == "s3cr3t/+token"

    with (
        PhoenixServer() as server,
        PhoenixServer(connect=with_token, settings=ServerSettings(auth_token=True)) as auth_server,
    ):
        endpoint = server.url.removesuffix("/websocket")
        auth_endpoint = auth_server.url.removesuffix("/websocket")
        results = run_phoenixjs(node, endpoint, auth_endpoint)
        received = server.messages()
        server.stop(abrupt=True)
        auth_server.stop(abrupt=True)

    assert results["join"]["status"] == "ok"
    assert results["join"]["response"] == {"joined": "room:lobby"}
    assert results["echo"] == {"status": "ok", "response": {"hello": "world", "uni": "héllo ☃"}}
    assert results["echo_error"] == {"status": "error", "response": {"why": "because"}}
    assert results["unknown"]["response"] == {"event": "no_such_event", "reason": "unknown event"}
    assert results["private_refused"] == {"status": "error", "response": {"reason": "unauthorized"}}
    assert results["unmatched"] == {"status": "error", "response": {"reason": "unmatched topic"}}

    assert results["presence_alone"] == ["alice"]
    assert results["presence_both"] == ["alice", "bob"]
    assert results["presence_after_leave"] == ["alice"]
    assert results["shout_reply"] == {"status": "ok", "response": {}}
    assert results["shout_received"] == {"msg": "hi"}

    assert results["bin"] == [1, 2, 3, 255]
    assert results["push_binary_reply"]["status"] == "ok"
    assert results["binary_echo"] == {"status": "ok", "response": [0, 1, 2, 250, 255]}
    assert results["binary_shout"] == [0, 98, 105, 110, 255]

    assert results["crash_error"] == {"reason": "channel_crash"}
    first, second = results["crash_join_refs"]
    assert first != second
    assert results["after_rejoin"] == {"status": "ok", "response": {"again": True}}
    assert isinstance(results["ping_ms"], int)

    assert results["echo_join"]["status"] == "ok"
    assert results["echo_channel"] == {"status": "ok", "response": {"n": 1}}

    assert results["auth_token_protocol"] == "phoenix"
    assert results["auth_token_join"]["status"] == "ok"
    assert tokens == ["s3cr3t/+token"]

    # What phoenix.js put on the wire, as the server decoded it.
    joins = [m for m in received if m.event == "phx_join"]
    assert joins and all(m.join_ref == m.ref and isinstance(m.ref, str) for m in joins)
    crashy = [m.join_ref for m in joins if m.topic == "room:crashy"]
    assert crashy == [first, second]
    binary = [m for m in received if isinstance(m.payload, bytes)]
    assert [m.event for m in binary] == ["binary_echo", "shout"]
    assert any(m.topic == "phoenix" and m.event == "heartbeat" for m in received)
    assert all(m.join_ref is not None for m in received if m.topic == "room:lobby")


@pytest.mark.timeout(360)
def test_phoenixjs_longpoll_against_the_embedded_server() -> None:
    node = ensure_node_modules()
    tokens: list[str | None] = []

    def with_token(request: ConnectRequest) -> bool:
        tokens.append(request.auth_token)
        return request.auth_token == "s3cr3t/+token"

    settings = ServerSettings(longpoll_window=0.5)
    with (
        PhoenixServer(settings=settings) as server,
        PhoenixServer(connect=with_token, settings=settings.with_changes(auth_token=True)) as auth_server,
    ):
        endpoint = server.url.removesuffix("/websocket")
        auth_endpoint = auth_server.url.removesuffix("/websocket")
        results = run_phoenixjs(node, endpoint, auth_endpoint, script="longpoll.js")
        received = server.messages()
        events = server.events()
        server.stop(abrupt=True)
        auth_server.stop(abrupt=True)

    assert results["transport"] == "LongPoll"
    assert results["join"] == {"joined": "room:lobby"}
    assert results["echo"] == {"status": "ok", "response": {"hello": "world", "uni": "héllo ☃"}}
    assert results["echo_error"] == {"status": "error", "response": {"why": "because"}}
    assert results["private_refused"] == {"status": "error", "response": {"reason": "unauthorized"}}
    assert results["presence_alone"] == ["alice"]
    assert results["presence_both"] == ["alice", "bob"]
    assert results["presence_after_leave"] == ["alice"]
    assert results["shout_reply"] == {"status": "ok", "response": {}}
    assert results["shout_received"] == {"msg": "hi"}
    assert results["batch"] == [1, 2, 3, 4, 5]
    assert results["crash_error"] == {"reason": "channel_crash"}
    first, second = results["crash_join_refs"]
    assert first != second
    assert results["after_rejoin"] == {"status": "ok", "response": {"again": True}}
    assert 3410 in results["session_loss_close_codes"]
    before, after = results["session_loss_join_refs"]
    assert before != after
    assert results["after_session_loss"] == {"status": "ok", "response": {"back": True}}
    assert results["auth_token_join"] == {"joined": "room:token"}
    assert tokens == ["s3cr3t/+token"]

    # What phoenix.js put on the wire, as the server decoded it.
    assert {e.transport for e in events} == {"longpoll"}
    assert not [m for m in received if m.event == "heartbeat"], "phoenix.js skips heartbeats on long-poll"
    binary = [m for m in received if isinstance(m.payload, bytes)]
    assert [(m.event, m.payload) for m in binary] == [("noreply", bytes([0, 1, 2, 250, 255]))]
    joins = [m for m in received if m.event == "phx_join"]
    assert joins and all(m.join_ref == m.ref and isinstance(m.ref, str) for m in joins)
