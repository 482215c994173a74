"""The state diagrams are drawn from the code, and match what a real client goes through."""

from __future__ import annotations

import threading

import pytest

import maxsdk
from maxsdk import Backoff, ConnectionState, signals
from maxsdk.protocol.phoenix.channel import TRANSITIONS
from tests.client.helpers import fast_client
from tests.docs.helpers import docs_extension

docs = docs_extension()


def test_the_channel_diagram_has_every_transition_of_the_table():
    page = docs.channel_state_markdown()
    for (state, trigger), target in TRANSITIONS.items():
        assert f"| `{state}` | `{trigger}` | `{target}` |" in page
        assert f"{state} --> {target}: " in page


def test_the_connection_diagram_covers_connection_state_and_the_engine():
    assert docs.connection_problems() == []
    assert set(docs.connection_states()) == {state.value for state in ConnectionState}


def test_the_engine_scan_finds_state_changes():
    source = """
class Engine:
    def start(self):
        old, self._state = self._state, ConnectionState.CONNECTING
        self._set_state(ConnectionState.CONNECTED, "x")
        self._end_session(ConnectionState.CLOSED, "y")
"""
    assert docs.engine_target_states(source) == {"connecting", "connected", "closed"}


class Transitions:
    """Every (old, new) connection state change a client reports."""

    def __init__(self, client: maxsdk.Client) -> None:
        self.seen: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        client.on_signal(signals.state_changed, self._record)

    def _record(self, _client, *, old, new, **kwargs):
        with self._cond:
            self.seen.append((str(old), str(new)))
            self._cond.notify_all()

    def wait_for(self, new: str, count: int = 1) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: [n for _, n in self.seen].count(new) >= count, 5), self.seen


@pytest.mark.timeout(60)
def test_every_transition_a_real_client_makes_is_in_the_diagram(phoenix_server):
    documented = {(source, target) for source, _, target in docs.CONNECTION_TRANSITIONS}
    seen: set[tuple[str, str]] = set()

    # connect, drop and reconnect, a normal server close, connect again, disconnect, close
    client = fast_client(phoenix_server.url)
    log = Transitions(client)
    client.connect()
    room = client.join("room:lobby")
    phoenix_server.drop_connections()
    log.wait_for("connected", 2)
    room.wait_joined(timeout=10)  # the rejoin was answered: the server holds the new connection
    phoenix_server.close_connections(1000)
    log.wait_for("disconnected")
    client.connect()
    client.disconnect()
    client.close()
    seen |= set(log.seen)

    # a fatal refusal ends the client
    phoenix_server.refuse_connections(403)
    refused = fast_client(phoenix_server.url)
    log = Transitions(refused)
    with pytest.raises(maxsdk.AuthenticationError):
        refused.connect()
    refused.close()
    seen |= set(log.seen)
    phoenix_server.accept_connections()

    # a drop with reconnecting disabled ends the client
    once = fast_client(phoenix_server.url, reconnect=Backoff(steps=(0.01,), jitter="none", max_attempts=0))
    log = Transitions(once)
    once.connect()
    phoenix_server.wait_for_connections(1)
    phoenix_server.drop_connections()
    log.wait_for("closed")
    once.close()
    seen |= set(log.seen)

    assert seen - documented == set()
    assert {("connected", "reconnecting"), ("reconnecting", "connecting"), ("connected", "disconnected")} <= seen
