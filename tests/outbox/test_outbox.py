"""The durable outbox end to end against the embedded server."""

from __future__ import annotations

import threading

import pytest

import maxsdk
from maxsdk import Backoff, signals
from maxsdk.outbox import OutboxConfig
from tests.client.helpers import SignalLog, fast_client

EXTRA = [signals.outbox_delivered, signals.outbox_dead_lettered, signals.outbox_expired]


def keys_received(server, topic, event="echo"):
    return [m.payload.get("idempotency_key") for m in server.messages() if m.topic == topic and m.event == event]


def test_send_delivers_with_an_idempotency_key_and_empties_the_outbox(phoenix_server, tmp_path):
    client = fast_client(phoenix_server.url, outbox=tmp_path / "outbox")
    log = SignalLog(client, extra=EXTRA)
    with client:
        room = client.join("room:lobby")
        keys = [room.send("echo", {"n": n}) for n in range(20)]
        assert client.outbox.wait_drained(10)
        assert keys_received(phoenix_server, "room:lobby") == keys, "per-topic order"
        assert len(set(keys)) == 20 and keys == sorted(keys), "keys are unique and sortable"
        delivered = log.wait_for("outbox_delivered", count=20)
        assert delivered["topic"] == "room:lobby" and delivered["response"]["n"] == 19
        assert client.outbox.depth() == 0
        assert client.stats().outbox_depth == 0


def test_sends_while_offline_return_at_once_and_are_delivered_after_reconnect(phoenix_server, tmp_path):
    client = fast_client(phoenix_server.url, outbox=tmp_path / "outbox", reconnect=Backoff.constant(0.05))
    log = SignalLog(client, extra=EXTRA)
    with client:
        room = client.join("room:lobby")
        phoenix_server.refuse_connections(503)
        phoenix_server.drop_connections()
        log.wait_for("disconnected")
        keys = [room.send("echo", {"offline": n}) for n in range(10)]
        assert client.outbox.depth() == 10
        assert keys_received(phoenix_server, "room:lobby") == []
        phoenix_server.accept_connections()
        assert client.outbox.wait_drained(10)
        assert keys_received(phoenix_server, "room:lobby") == keys


def test_messages_wait_for_their_channel_to_be_joined(phoenix_server, tmp_path):
    with fast_client(phoenix_server.url, outbox=tmp_path / "outbox") as client:
        later = client.channel("room:later")
        key = later.send("echo", {"x": 1})
        client.join("room:other").push("echo", {})
        assert client.outbox.depth() == 1
        later.join()
        assert client.outbox.wait_drained(10)
        assert keys_received(phoenix_server, "room:later") == [key]


def test_error_replies_become_dead_letters_that_can_be_retried_or_purged(phoenix_server, tmp_path):
    client = fast_client(phoenix_server.url, outbox=tmp_path / "outbox")
    log = SignalLog(client, extra=EXTRA)
    with client:
        room = client.join("room:lobby")
        bad = room.send("echo_error", {"reason": "nope"})
        good = room.send("echo", {"after": "bad"})
        assert client.outbox.wait_drained(10)
        dead = log.wait_for("outbox_dead_lettered")
        assert dead["key"] == bad
        letters = client.outbox.dead_letters()
        assert [r.idempotency_key for r in letters] == [bad]
        assert letters[0].dead_reason == "nope"
        assert keys_received(phoenix_server, "room:lobby") == [good], "a dead letter does not block its topic"
        assert client.outbox.retry() == 1
        assert client.outbox.wait_drained(10)
        assert len(client.outbox.dead_letters()) == 1, "the retry failed again and went back to the dead letters"
        assert client.outbox.purge() == 1
        assert client.outbox.dead_letters() == []


def test_expired_messages_are_reported_and_never_sent(phoenix_server, tmp_path):
    client = fast_client(phoenix_server.url, outbox=tmp_path / "outbox")
    log = SignalLog(client, extra=EXTRA)
    with client:
        room = client.channel("room:lobby")
        key = room.send("echo", {"short": "lived"}, ttl=0.2)
        expired = log.wait_for("outbox_expired", timeout=5)
        assert expired["key"] == key and expired["age"] >= 0.2
        room.join()
        room.push("echo", {})
        assert keys_received(phoenix_server, "room:lobby") == [None]


def test_a_full_outbox_refuses_new_messages(phoenix_server, tmp_path):
    config = OutboxConfig(str(tmp_path / "outbox"), max_messages=3)
    with fast_client(phoenix_server.url, outbox=config) as client:
        room = client.channel("room:lobby")
        for n in range(3):
            room.send("echo", {"n": n})
        with pytest.raises(maxsdk.OutboxFullError):
            room.send("echo", {"n": 3})
        assert client.outbox.depth() == 3


def test_messages_survive_the_client_and_only_one_client_opens_an_outbox(phoenix_server, tmp_path):
    path = tmp_path / "outbox"
    first = fast_client(phoenix_server.url, outbox=path)
    keys = [first.channel("room:lobby").send("echo", {"n": n}) for n in range(5)]
    with pytest.raises(maxsdk.OutboxLockedError):
        fast_client(phoenix_server.url, outbox=path)
    first.close()
    with fast_client(phoenix_server.url, outbox=path) as second:
        second.join("room:lobby")
        assert second.outbox.wait_drained(10)
    assert keys_received(phoenix_server, "room:lobby") == keys


def test_priorities_go_first_across_topics(phoenix_server, tmp_path):
    with fast_client(phoenix_server.url, outbox=tmp_path / "outbox") as client:
        low = client.channel("room:low").send("echo", {}, priority="low")
        high = client.channel("room:high").send("echo", {}, priority="high")
        client.join("room:low")
        client.join("room:high")
        assert client.outbox.wait_drained(10)
    keys = [m.payload.get("idempotency_key") for m in phoenix_server.messages() if m.event == "echo"]
    assert set(keys) == {low, high}


def test_sends_need_an_outbox_and_an_object_payload(phoenix_server, tmp_path):
    with fast_client(phoenix_server.url) as client, pytest.raises(maxsdk.ConfigurationError):
        client.channel("room:lobby").send("echo", {})
    with (
        fast_client(phoenix_server.url, outbox=tmp_path / "outbox") as client,
        pytest.raises(maxsdk.ConfigurationError),
    ):
        client.channel("room:lobby").send("echo", [1, 2])


def test_concurrent_producers(phoenix_server, tmp_path):
    with fast_client(phoenix_server.url, outbox=OutboxConfig(str(tmp_path / "o"), synchronous="normal")) as client:
        rooms = [client.join(f"room:p{n}") for n in range(4)]
        sent: dict[str, list[str]] = {}

        def produce(room):
            sent[room.topic] = [room.send("echo", {"i": i}) for i in range(100)]

        threads = [threading.Thread(target=produce, args=(room,)) for room in rooms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert client.outbox.wait_drained(20)
    for topic, keys in sent.items():
        assert keys_received(phoenix_server, topic) == keys


def test_send_many_stores_a_batch_at_once_in_order(phoenix_server, tmp_path):
    with fast_client(phoenix_server.url, outbox=tmp_path / "outbox") as client:
        room = client.join("room:lobby")
        keys = room.send_many([("echo", {"n": n}) for n in range(50)])
        assert len(keys) == 50
        assert client.outbox.wait_drained(10)
        assert keys_received(phoenix_server, "room:lobby") == keys
        with pytest.raises(maxsdk.ConfigurationError):
            room.send_many([("echo", {"ok": 1}), ("echo", "not an object")])
        assert client.outbox.depth() == 0, "a refused batch stores nothing"


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_unexpected_error_while_pushing_leaves_nothing_in_flight_and_keeps_the_order(
    phoenix_server, tmp_path, monkeypatch, when
):
    """A push that raises something unexpected (before or after its frame went out) is retried in order."""
    client = fast_client(phoenix_server.url, outbox=tmp_path / "outbox")
    with client:
        room = client.join("room:lobby")
        engine = client._engine
        real_push = engine.push
        calls = {"n": 0}

        def flaky_push(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] % 7 == 3:  # every 7th push fails, starting with the 3rd
                if when == "after":
                    real_push(*args, **kwargs)
                raise RuntimeError("injected")
            return real_push(*args, **kwargs)

        monkeypatch.setattr(engine, "push", flaky_push)
        keys = [room.send("echo", {"n": n}) for n in range(40)]
        assert client.outbox.wait_drained(20), f"still queued: {client.outbox.stats()}"
        stats = client.outbox.stats()
        assert stats.in_flight == 0 and stats.ready == 0 and client.outbox.dead_letters() == []
        assert calls["n"] > 40, "some pushes failed and were retried"
        received = keys_received(phoenix_server, "room:lobby")
        first_seen = list(dict.fromkeys(received))
        assert first_seen == keys, "every message delivered, in order (duplicates only where a frame went out)"
        if when == "before":
            assert received == keys, "a push that failed before its frame was written sent nothing"
