"""Replay the real-server recordings in tests/golden against the embedded server.

The server runs with ``ServerSettings.phoenix_1_7()``, the behaviour of the
recorded Phoenix 1.7.23/Bandit server (no join_ref check, ``{}`` crash
payload, 1000 on socket-id disconnect, 1002 on idle); only the idle timeout
is shortened. Each client frame is sent as recorded and the server's frames
must match byte for byte, except the run-varying ``phx_ref`` and ``online_at``.
"""

from __future__ import annotations

import pytest
import websocket

from maxsdk.server import PhoenixServer, ServerSettings

from .conftest import ServerFactory
from .transcript import GOLDEN, Section, Step, normalize, parse
from .wire import WireClient

TRANSCRIPTS = ["transcript_v2.txt", "transcript_v1.txt"]


class Replay:
    """Drives one transcript: a current connection plus the steps of each section."""

    def __init__(self, server: PhoenixServer, baseline: int) -> None:
        self.server = server
        self.baseline = baseline  # connections open besides the replayed one (lp1)
        self.client: WireClient | None = None

    def run(self, section: Section) -> None:
        for index, step in enumerate(section.steps):
            try:
                self.step(step)
            except AssertionError as exc:
                raise AssertionError(f"section {section.title!r}, step {index} ({step.kind}): {exc}") from exc

    def step(self, step: Step) -> None:
        if step.kind == "connect":
            self.connect(step)
        elif step.kind == "send":
            assert self.client is not None
            self.client.send(step.text if step.text is not None else step.data)
        elif step.kind == "send_close":
            assert self.client is not None and step.code is not None
            self.client.ws.send_close(step.code, step.reason.encode())
        elif step.kind == "expect":
            self.expect(step)
        elif step.kind == "close":
            assert self.client is not None
            assert self.client.expect_close() == (step.code, step.reason)
            self.forget_client()
        elif step.kind == "drop":
            assert self.client is not None
            self.client.expect_drop()
            self.forget_client()

    def connect(self, step: Step) -> None:
        url = f"{self.server.url}?{step.query}"
        if step.status != 101:
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(url, timeout=5)
            assert refused.value.status_code == step.status
            return
        if self.client is not None:
            self.forget_client()
        self.client = WireClient.open(url)

    def expect(self, step: Step) -> None:
        assert self.client is not None
        frame = self.client.recv()
        if step.text is not None:
            assert isinstance(frame, str), f"expected text, got binary {frame!r}"
            assert normalize(frame) == normalize(step.text)
        else:
            assert frame == step.data

    def forget_client(self) -> None:
        """Close the current connection and wait until the server has cleaned it up.

        Phoenix untracks presence asynchronously too; waiting keeps the next
        section's presence_state deterministic.
        """
        assert self.client is not None
        self.client.close()
        self.client = None
        self.server.wait_for_connections(self.baseline, timeout=5)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_transcript_replays(make_server: ServerFactory, name: str) -> None:
    server = make_server(token="secret", settings=ServerSettings.phoenix_1_7(idle_timeout=0.8))
    sections = parse(GOLDEN / name)
    assert len(sections) > 20
    if name == "transcript_v2.txt":
        # The recorded room:lobby also held "lp1", a long-poll session of the recording run.
        server.endpoint.presence.track(object(), "room:lobby", "lp1", {"online_at": "1795459700"})
    replay = Replay(server, baseline=0)
    try:
        for section in sections:
            replay.run(section)
    finally:
        if replay.client is not None:
            replay.client.close()


def test_transcripts_parse() -> None:
    for name in TRANSCRIPTS:
        sections = parse(GOLDEN / name)
        kinds = {step.kind for section in sections for step in section.steps}
        assert {"connect", "send", "expect", "close", "drop"} <= kinds
