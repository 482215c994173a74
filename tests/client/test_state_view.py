"""Replicated state end to end: StateView against the embedded server's state:* topics (docs/state.md)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import jsonpatch
import pytest

from maxsdk import Backoff, LocalProtocolError, NotConnectedError, PatchError, StateConflictError, signals
from tests.client.helpers import SignalLog, fast_client
from tests.support.faultproxy import FaultProxy

TOPIC = "state:game"
TRANSPORTS = ["websocket", "longpoll"]


@dataclass
class Game:
    score: int
    players: list


class Changes:
    """Records on_change callbacks and conflicts (thread-safe)."""

    def __init__(self, view) -> None:
        self.lock = threading.Condition()
        self.changes: list = []
        self.conflicts: list = []
        view.on_change(self._changed)
        view.on_conflict(self._conflicted)

    def _changed(self, change) -> None:
        with self.lock:
            self.changes.append((change.cause, change.paths, change.version, threading.current_thread().name))
            self.lock.notify_all()

    def wait(self, predicate, timeout: float = 5.0) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: predicate(self), timeout), (self.changes, self.conflicts)

    def _conflicted(self, conflict) -> None:
        with self.lock:
            self.conflicts.append(conflict)
            self.lock.notify_all()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_snapshot_then_deltas_with_changed_paths_and_a_typed_view(phoenix_server, transport):
    phoenix_server.state(TOPIC).reset({"score": 0, "players": []})
    with fast_client(phoenix_server.url, transport=transport) as client:
        view = client.join(TOPIC).state_view(model=Game)
        assert view.wait_synced(5)
        seen = Changes(view)
        scores: list = []
        view.on_change(lambda change: scores.append(view.value("/score")), paths=["/score"])
        assert view.get() == Game(0, [])
        phoenix_server.state(TOPIC).change({"score": 3})
        phoenix_server.state(TOPIC).change([{"op": "add", "path": "/players/-", "value": "ann"}], "json")
        assert view.wait_version(2, 5)
        assert view.get() == Game(3, ["ann"]) and view.document() == {"score": 3, "players": ["ann"]}
        assert view.snapshot() == (2, {"score": 3, "players": ["ann"]})
        seen.wait(lambda s: len(s.changes) == 2)
        with seen.lock:
            assert [(cause, paths, version) for cause, paths, version, _ in seen.changes] == [
                ("delta", ("/score",), 1),
                ("delta", ("/players",), 2),
            ]
            assert all(name.endswith("-dispatch") for *_, name in seen.changes)
        assert scores == [3]  # the /players change is not a /score change
        view.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_optimistic_update_shows_at_once_and_is_confirmed(phoenix_server, transport):
    phoenix_server.state(TOPIC).reset({"score": 0})
    with fast_client(phoenix_server.url, transport=transport) as client:
        view = client.join(TOPIC).state_view()
        assert view.wait_synced(5)
        log = SignalLog(client, [signals.state_view_changed])
        pending = view.update_nowait({"score": 1})
        assert view.get() == {"score": 1}  # before any reply
        assert pending.wait(5) == 1
        assert view.update([{"op": "replace", "path": "/score", "value": 2}], format="json") == 2
        assert phoenix_server.state(TOPIC).document == {"score": 2}
        assert view.wait_version(2, 5) and view.pending == 0 and view.get() == {"score": 2}
        log.wait_for("state_view_changed", lambda kw: kw["cause"] == "local", count=2)
        with pytest.raises(PatchError):
            view.update([{"op": "remove", "path": "/nothing"}], format="json")
        assert view.get() == {"score": 2} and view.pending == 0


@pytest.mark.timeout(60)
def test_concurrent_conflicting_updates_one_wins_the_other_rolls_back_and_is_told(phoenix_server):
    phoenix_server.state(TOPIC).reset({"owner": None})
    proxies = [FaultProxy(("127.0.0.1", phoenix_server.port)).start() for _ in range(2)]
    clients = [fast_client(proxy.rewrite(phoenix_server.url)) for proxy in proxies]
    try:
        views = [client.join(TOPIC).state_view() for client in clients]
        records = [Changes(view) for view in views]
        assert all(view.wait_synced(5) for view in views)
        for proxy in proxies:  # neither client can see the other's delta before sending its own update
            proxy.blackhole(direction="downstream")
        barrier = threading.Barrier(2)
        pendings: list = [None, None]

        def claim(index: int) -> None:
            barrier.wait(5)
            pendings[index] = views[index].update_nowait({"owner": f"client-{index}"})

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert [view.get() for view in views] == [{"owner": "client-0"}, {"owner": "client-1"}]  # both optimistic
        assert [pending.base for pending in pendings] == [0, 0]
        for proxy in proxies:
            proxy.reset()
        outcomes = []
        for pending in pendings:
            try:
                outcomes.append(("won", pending.wait(5)))
            except StateConflictError as exc:
                outcomes.append(("lost", exc.reason, exc.version))
        assert sorted(outcomes) == [("lost", "conflict", 1), ("won", 1)]
        winner = outcomes.index(("won", 1))
        loser = 1 - winner
        expected = {"owner": f"client-{winner}"}
        assert phoenix_server.state(TOPIC).document == expected
        for view in views:
            assert view.wait_for(lambda doc: doc == expected, 5)
            assert view.pending == 0
        records[loser].wait(lambda r: r.conflicts)
        (conflict,) = records[loser].conflicts
        assert (conflict.reason, conflict.version, conflict.base) == ("conflict", 1, 0)
        assert conflict.patch == {"owner": f"client-{loser}"}
        assert records[winner].conflicts == []
        with records[loser].lock:
            assert any(cause in ("rollback", "delta") for cause, *_ in records[loser].changes)
    finally:
        for client in clients:
            client.close()
        for proxy in proxies:
            proxy.stop()


def random_change(rng: random.Random, document: dict) -> tuple[object, str]:
    """A random merge patch or JSON Patch against ``document`` (a dict of small ints and lists)."""
    key = rng.choice("abcdefgh")
    if rng.random() < 0.5:
        return {key: None if rng.random() < 0.2 else rng.randint(0, 99)}, "merge"
    new = dict(document)
    if rng.random() < 0.5:
        new[key] = [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
    else:
        new.pop(key, None)
    return jsonpatch.make_patch(document, new).patch or [{"op": "add", "path": "/z", "value": 1}], "json"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_thousand_random_deltas_with_cuts_end_equal_to_the_servers_document(phoenix_server, transport):
    rng = random.Random(1515)
    document = phoenix_server.state(TOPIC)
    document.reset({})
    with FaultProxy(("127.0.0.1", phoenix_server.port)) as proxy:
        client = fast_client(proxy.rewrite(phoenix_server.url), transport=transport, reconnect=Backoff.constant(0.02))
        with client:
            causes: list[str] = []
            client.on_signal(signals.state_view_changed, lambda _client, **kw: causes.append(kw["cause"]))
            view = client.join(TOPIC).state_view()
            assert view.wait_synced(5)
            cuts = 0
            for index in range(1000):
                patch, fmt = random_change(rng, document.document)
                document.change(patch, fmt)
                if index % 50 == 25:  # a cut at a random moment of the stream: what is in flight is lost
                    proxy.cut(rng.choice(["rst", "fin"]))
                    cuts += 1
                elif index % 50 > 30 and index % 3 == 0:  # between cuts, deltas flow live
                    assert view.wait_version(document.version, 10)
            final = document.snapshot()
            assert view.wait_version(final["version"], 20), view
            assert view.snapshot() == (final["version"], final["document"])
            assert view.get() == document.document
            resyncs = view.resyncs
    assert cuts == 20
    assert causes.count("delta") >= 200, causes.count("delta")  # most of the stream arrived as deltas
    assert resyncs.get("rejoin", 0) >= 5, resyncs  # re-snapshotted after rejoins


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_crash_rejoin_and_server_restart_resync_the_view(phoenix_server, transport):
    document = phoenix_server.state(TOPIC)
    document.reset({"round": 1})
    with fast_client(phoenix_server.url, transport=transport, reconnect=Backoff.constant(0.02)) as client:
        channel = client.join(TOPIC)
        view = channel.state_view()
        assert view.wait_synced(5)
        log = SignalLog(client)
        phoenix_server.crash_channel(TOPIC)  # phx_error: the channel rejoins
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        document.change({"round": 2})
        assert view.wait_for(lambda doc: doc == {"round": 2}, 5)

        phoenix_server.restart()  # the document is lost with the process: a new epoch
        document.reset({"round": 100})
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=2)
        assert view.wait_for(lambda doc: doc == {"round": 100}, 5)
        assert view.version == 0
        document.change({"round": 101})
        assert view.wait_for(lambda doc: doc == {"round": 101}, 5) and view.version == 1


@pytest.mark.timeout(30)
def test_an_epoch_change_seen_in_a_delta_refetches_the_snapshot(phoenix_server):
    document = phoenix_server.state(TOPIC)
    document.reset({"a": 1})
    with fast_client(phoenix_server.url) as client:
        view = client.join(TOPIC).state_view()
        assert view.wait_synced(5)
        document.reset({"b": 1})  # nothing is broadcast: the next delta carries the new epoch
        document.change({"c": 2})
        assert view.wait_for(lambda doc: doc == {"b": 1, "c": 2}, 5)
        assert view.resyncs.get("epoch") == 1


@pytest.mark.timeout(30)
def test_a_malformed_delta_is_a_protocol_error_and_changes_nothing(phoenix_server):
    document = phoenix_server.state(TOPIC)
    document.reset({"a": 1})
    with fast_client(phoenix_server.url) as client:
        log = SignalLog(client)
        view = client.join(TOPIC).state_view()
        assert view.wait_synced(5)
        phoenix_server.broadcast(TOPIC, "state_delta", {"version": "two", "patch": {}})
        phoenix_server.broadcast(TOPIC, "state_delta", {"version": 1, "format": "json", "patch": {"op": "add"}})
        assert "delta" in str(log.wait_for("protocol_error", count=2)["error"])
        document.change({"a": 2})
        assert view.wait_for(lambda doc: doc == {"a": 2}, 5) and view.version == 1
        with pytest.raises(LocalProtocolError, match="not synced"):
            client.channel("state:other").state_view().update({"x": 1})


@pytest.mark.timeout(30)
def test_a_change_callback_may_itself_make_a_blocking_update(phoenix_server):
    document = phoenix_server.state(TOPIC)
    document.reset({"ping": 0, "pong": 0})
    with fast_client(phoenix_server.url) as client:
        view = client.join(TOPIC).state_view()
        assert view.wait_synced(5)
        answered: list = []
        done = threading.Event()

        @view.on_change(paths=["/ping"])
        def answer(change):
            if change.cause == "delta":
                answered.append(view.update({"pong": view.value("/ping")}))
                done.set()

        document.change({"ping": 7})
        assert view.wait_for(lambda doc: doc == {"ping": 7, "pong": 7}, 10)
        assert done.wait(5) and answered == [2]
        assert document.document == {"ping": 7, "pong": 7}


@pytest.mark.timeout(30)
def test_an_update_that_cannot_be_sent_raises_and_is_rolled_back(phoenix_server):
    phoenix_server.state(TOPIC).reset({"a": 1})
    with fast_client(phoenix_server.url, offline="raise") as client:
        log = SignalLog(client)
        view = client.join(TOPIC).state_view()
        seen = Changes(view)
        assert view.wait_synced(5)
        phoenix_server.stop()
        log.wait_for("disconnected")
        with pytest.raises(NotConnectedError):
            view.update_nowait({"a": 2})
        assert view.get() == {"a": 1} and view.pending == 0
        seen.wait(lambda s: s.conflicts)
        assert [c.reason for c in seen.conflicts] == ["not sent"]
