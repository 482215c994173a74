"""JsonClient against a real JSON publish/subscribe feed: hapi with the npm @hapi/nes plugin (not our code).

nes over one WebSocket, all JSON objects (from its published source)::

    >> {"type": "hello", "id": 1, "version": "2"}          first, or everything else is refused
    << {"type": "hello", "id": 1, "heartbeat": {...}, "socket": "..."}
    >> {"type": "sub", "id": 2, "path": "/items/a"}         << {"type": "sub", "id": 2, "path": "/items/a"}
    << {"type": "pub", "path": "/items/a", "message": {...}}  (updates)
    >> {"type": "unsub", "id": 3, "path": "/items/a"}       << {"type": "unsub", "id": 3}
    >> {"type": "message", "id": 4, "message": {...}}       << {"type": "message", "id": 4, "message": {...}}
    << {"type": "ping"}   >> {"type": "ping", "id": ...}    (the server's heartbeat; no answer: dropped)
    << {"statusCode": 404, "payload": {"error": ..., "message": ...}, "type": "sub", "id": 2}   (errors)
    << {"type": "update", "message": {...}}                 (a broadcast to every client)
    << {"type": "revoke", "path": "/items/a"}               (the server ended a subscription)

Clients cannot publish to a path themselves: a nes application publishes, here
from its ``onMessage`` handler when a client's message asks it to.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, JsonFormat, signals
from tests.interop.conftest import wait_until
from tests.interop.servers import NesServer

pytestmark = pytest.mark.timeout(60)

NES = JsonFormat(
    op_field="type",
    args_field="path",
    topic_field="path",
    data_field="message",
    update={"type": "pub"},
    notification={"type": "update"},
    topics_as="string",
    subscribe_op="sub",
    unsubscribe_op="unsub",
    result_field="message",
    is_error=lambda reply: reply.get("statusCode", 200) >= 400,
    auth_op="hello",
    handshake=True,
    op_fields={"hello": {"version": "2"}, "request": {"method": "GET"}},
    op_args_fields={"hello": "auth", "message": "message"},
    server_ping={"type": "ping"},
    pong_reply={"type": "ping"},
    pong_id=True,
    ping=None,
    websocket_pings=True,
    pong=None,
    reconnect=None,
)


class Recorder:
    """Collects updates (any thread) for condition waits."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.items)


def feed(url: str, fmt: JsonFormat = NES, **options: Any) -> maxsdk.JsonClient:
    options.setdefault("reconnect", Backoff(steps=(0.02, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1), jitter="none"))
    options.setdefault("timeout", 5.0)
    return maxsdk.JsonClient(url, format=fmt, **options)


@pytest.fixture
def fast_heartbeat_nes() -> Iterator[NesServer]:
    server = NesServer(heartbeat_interval=0.3, heartbeat_timeout=0.25)
    yield server
    server.stop()


def test_nes_greeting_then_updates_for_subscribed_paths_only(nes: NesServer) -> None:
    a, b = Recorder(), Recorder()
    with feed(nes.url) as client:
        client.subscribe("/items/a", a)
        client.subscribe("/items/b", b)
        subscribers = nes.stats("/items/a", "/items/b", "/items/c")["subscribers"]
        assert subscribers == {"/items/a": 1, "/items/b": 1, "/items/c": 0}
        nes.publish("/items/c", {"n": 0})
        nes.publish("/items/a", {"n": 1})
        nes.publish("/items/b", {"n": 2})
        nes.publish("/items/a", {"n": 3})
        wait_until(lambda: len(a.snapshot()) == 2 and len(b.snapshot()) == 1, message="the updates of a and b")
        assert a.snapshot() == [{"n": 1}, {"n": 3}] and b.snapshot() == [{"n": 2}]
        counters = client.diagnostics().counters
        assert counters["unroutable"] == 0 and counters["unknown_messages"] == 0
        assert nes.stats()["connections"] == 1


def test_nes_refusals_raise_and_the_connection_stays(nes: NesServer) -> None:
    with feed(nes.url) as client:
        with pytest.raises(maxsdk.SubscriptionError) as unknown_path:
            client.subscribe("/nope")
        assert unknown_path.value.topic == "/nope"
        with pytest.raises(maxsdk.RpcError):
            client.request("message", {"refuse": True})
        assert client.request("message", {"hi": 1}) == {"echo": {"hi": 1}}
        assert client.diagnostics().reconnects == 0


def test_nes_unsubscribe_ends_the_server_subscription(nes: NesServer) -> None:
    a, c = Recorder(), Recorder()
    with feed(nes.url) as client:
        sub_a = client.subscribe("/items/a", a)
        client.subscribe("/items/c", c)
        nes.publish("/items/a", "before")
        wait_until(lambda: a.snapshot() == ["before"], message="the first update")
        sub_a.unsubscribe()
        assert nes.stats("/items/a")["subscribers"] == {"/items/a": 0}
        nes.publish("/items/a", "after")
        nes.publish("/items/c", "marker")  # same socket, in order: "after" would have come first
        wait_until(lambda: c.snapshot() == ["marker"], message="the marker")
        assert a.snapshot() == ["before"]


def test_nes_client_publishes_through_the_applications_message_handler(nes: NesServer) -> None:
    received = Recorder()
    with feed(nes.url) as publisher, feed(nes.url) as subscriber:
        subscriber.subscribe("/items/p", received)
        # A correlated request/reply ("message" with an id), the nes way for a client to publish.
        assert publisher.request("message", {"publish": "/items/p", "message": {"v": 1}}) == {"published": "/items/p"}
        wait_until(lambda: received.snapshot() == [{"v": 1}], message="the publication")


def test_nes_server_heartbeats_are_answered_so_the_server_keeps_the_connection(
    fast_heartbeat_nes: NesServer,
) -> None:
    pings = Recorder()
    with feed(fast_heartbeat_nes.url) as client:
        client.on_signal(signals.message_received, lambda _c, message: message == {"type": "ping"} and pings(message))
        client.subscribe("/items/a")
        # nes drops a client that sent nothing within 0.25 s of a heartbeat: three in a row answered.
        wait_until(lambda: len(pings.snapshot()) >= 3, message="three server heartbeats")
        assert fast_heartbeat_nes.stats()["disconnections"] == 0
        assert client.diagnostics().reconnects == 0
        assert client.diagnostics().counters["unknown_messages"] == 0  # no error answers to our pongs


def test_nes_drops_a_client_that_does_not_answer_its_heartbeats(fast_heartbeat_nes: NesServer) -> None:
    silent = dataclasses.replace(NES, pong_reply=None)
    with feed(fast_heartbeat_nes.url, silent) as client:
        wait_until(lambda: fast_heartbeat_nes.stats()["disconnections"] >= 1, message="the server dropping us")
        wait_until(lambda: client.diagnostics().reconnects >= 1, message="a reconnect")


def test_nes_restart_resubscribes_after_a_new_greeting(nes: NesServer) -> None:
    updates = Recorder()
    again = threading.Event()

    def confirmed(_client: object, resubscribed: bool = False, **_: object) -> None:
        if resubscribed:
            again.set()

    with feed(nes.url) as client:
        client.on_signal(signals.subscribed, confirmed)
        client.subscribe("/items/a", updates)
        nes.restart()
        assert again.wait(10), "no resubscription after the restart"
        stats = nes.stats("/items/a")
        assert stats["subscribers"] == {"/items/a": 1} and stats["connections"] == 1  # counted by the new process
        nes.publish("/items/a", "after the restart")
        wait_until(lambda: updates.snapshot() == ["after the restart"], message="an update after the restart")
        assert client.diagnostics().reconnects == 1


def test_nes_broadcasts_reach_on_handlers(nes: NesServer) -> None:
    broadcasts = Recorder()
    with feed(nes.url) as client:
        client.on("update", broadcasts)
        nes.broadcast({"hello": "everyone"})
        wait_until(lambda: broadcasts.snapshot() == [{"hello": "everyone"}], message="the broadcast")
        assert client.diagnostics().counters["unknown_messages"] == 0


def test_nes_malformed_and_unknown_messages_are_reported_not_fatal(nes: NesServer) -> None:
    errors: list[Any] = []
    with feed(nes.url) as client:
        client.on_signal(signals.protocol_error, lambda _c, error: errors.append(error))
        client.subscribe("/items/a")
        # A route returning broken JSON: nes splices it into its reply, so the frame is not JSON.
        with pytest.raises(maxsdk.ReplyTimeoutError):
            client.request("request", "/broken", timeout=0.5)
        wait_until(lambda: errors, message="the protocol_error signal")
        assert isinstance(errors[0], maxsdk.RemoteProtocolError)
        # A revocation names the path but is no update (update={"type": "pub"}): unknown to the format, counted.
        assert nes.revoke("/items/a", "bye") == 1
        wait_until(lambda: client.diagnostics().counters["unknown_messages"] == 1, message="the unknown message")
        assert client.request("message", "still here") == {"echo": "still here"}
        diagnostics = client.diagnostics()
        assert diagnostics.reconnects == 0 and diagnostics.protocol_errors == 1
        assert diagnostics.counters["unroutable"] == 0
