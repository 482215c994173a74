"""Stream recovery end to end: cuts, crash-rejoins, restarts, trimmed history, both transports."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from maxsdk import Backoff, Position, Recovery, ReplyError, signals
from maxsdk.server import PhoenixServer, Router
from maxsdk.server.stream import StreamHistory
from tests.client.helpers import fast_client
from tests.support.faultproxy import FaultProxy

TOPIC = "stream:prices"


class Seen:
    """The ``n`` of every ``tick`` a channel delivers, and its discontinuities; waits on a condition."""

    def __init__(self, channel: Any) -> None:
        self._cond = threading.Condition()
        self.ticks: list[int] = []
        self.gaps: list[Any] = []
        channel.on("tick", self._tick)
        channel.on_discontinuity(self._gap)

    def _tick(self, payload: dict[str, Any]) -> None:
        with self._cond:
            self.ticks.append(payload["n"])
            self._cond.notify_all()

    def _gap(self, gap: Any) -> None:
        with self._cond:
            self.gaps.append(gap)
            self._cond.notify_all()

    def wait_until(self, n: int, timeout: float = 20.0, *, count: int = 1) -> None:
        """Wait until tick ``n`` was delivered ``count`` times."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.ticks.count(n) >= count, timeout)
        assert ok, f"tick {n} never arrived; last ticks {self.ticks[-10:]}, gaps {self.gaps}"

    def wait_gap(self, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.gaps, timeout), "no discontinuity"


class Counter:
    """Counts a signal; waits on a condition until it reaches a value."""

    def __init__(self, client: Any, signal: Any) -> None:
        self._cond = threading.Condition()
        self.value = 0
        self.expected = 1
        client.on_signal(signal, self._seen)

    def _seen(self, _sender: Any, **kwargs: Any) -> None:
        with self._cond:
            self.value += 1
            self._cond.notify_all()

    def wait_expected(self, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.value >= self.expected, timeout), "no rejoin"


@pytest.fixture
def history() -> StreamHistory:
    return StreamHistory(limit=20_000)


@pytest.fixture
def server(phoenix_server_factory: Any, history: StreamHistory) -> PhoenixServer:
    return phoenix_server_factory(router=Router([("stream:*", history.channel)]))


def _publish(history: StreamHistory, server: PhoenixServer, numbers: range) -> None:
    for n in numbers:
        history.publish(server.endpoint, TOPIC, "tick", {"n": n})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_events_missed_during_a_cut_are_replayed_once_in_order(server, history, transport):
    with fast_client(server.url, transport=transport, reconnect=Backoff.constant(0.05)) as client:
        feed = client.join(TOPIC, recover=True)
        seen = Seen(feed)
        _publish(history, server, range(1, 6))
        seen.wait_until(5)
        server.refuse_connections(503)
        server.drop_connections()
        _publish(history, server, range(6, 11))  # nobody is subscribed: only the history has them
        server.accept_connections()
        seen.wait_until(10)
        _publish(history, server, range(11, 13))
        seen.wait_until(12)
        assert seen.ticks == list(range(1, 13)) and seen.gaps == []
        assert feed.position == Position(history.info(TOPIC)["epoch"], 12)


@pytest.mark.timeout(120)
def test_ten_thousand_broadcasts_across_fifty_cuts_and_a_restart_arrive_exactly_once_in_order(server, history):
    total, rng = 10_000, random.Random(15)
    cuts = set(rng.sample(range(100, total - 100), 50))
    restart_at = rng.choice([i for i in range(2000, 8000) if i not in cuts])
    with FaultProxy(("127.0.0.1", server.port)) as proxy:
        client = fast_client(proxy.rewrite(server.url), reconnect=Backoff.constant(0.02))
        with client:
            joins = Counter(client, signals.channel_joined)
            feed = client.join(TOPIC, recover=True)
            seen = Seen(feed)
            for n in range(1, total + 1):
                history.publish(server.endpoint, TOPIC, "tick", {"n": n})
                if n in cuts or n == restart_at:
                    # Each fault hits a joined channel: wait (on the signal) for the last rejoin.
                    joins.wait_expected()
                    before = joins.value
                    if n == restart_at:
                        server.restart(abrupt=True)
                    else:
                        proxy.cut(rng.choice(["rst", "fin"]))
                    joins.expected = before + 1  # the next fault waits for this rejoin
            seen.wait_until(total, timeout=90)
            assert joins.value == 52, "one join, then one rejoin after each cut and after the restart"
            assert history.replayed > 0, "events missed during the cuts were replayed"
            assert len(seen.ticks) == total
            assert seen.ticks == list(range(1, total + 1)), "every event once, in order"
            assert seen.gaps == []


@pytest.mark.timeout(60)
def test_history_trimmed_below_the_position_is_one_discontinuity_then_live_events(server, history):
    with fast_client(server.url, reconnect=Backoff.constant(0.05)) as client:
        feed = client.join(TOPIC, recover=True)
        seen = Seen(feed)
        _publish(history, server, range(1, 6))
        seen.wait_until(5)
        epoch = history.info(TOPIC)["epoch"]
        server.refuse_connections(503)
        server.drop_connections()
        _publish(history, server, range(6, 21))
        history.trim(TOPIC, keep=3)  # 18, 19, 20 are left: 6..17 are gone
        server.accept_connections()
        joined = threading.Event()
        feed.on("stream_recovered", lambda payload: joined.set())  # the marker is not an event
        seen.wait_gap()
        _publish(history, server, range(21, 26))
        seen.wait_until(25)
        assert len(seen.gaps) == 1
        gap = seen.gaps[0]
        assert gap.reason == "trimmed"
        assert gap.last == Position(epoch, 5) and gap.oldest == Position(epoch, 18)
        assert gap.resumed == Position(epoch, 20)
        assert seen.ticks == [*range(1, 6), *range(21, 26)]
        assert not joined.is_set()


@pytest.mark.timeout(60)
def test_a_crashed_channel_rejoins_and_gets_what_it_missed(server, history):
    with fast_client(server.url) as client:
        feed = client.join(TOPIC, recover=True)
        seen = Seen(feed)
        _publish(history, server, range(1, 4))
        seen.wait_until(3)
        server.refuse_joins("stream:*")
        assert server.crash_channel(TOPIC) == 1
        _publish(history, server, range(4, 8))
        server.allow_joins()
        seen.wait_until(7)
        assert seen.ticks == list(range(1, 8)) and seen.gaps == []


@pytest.mark.timeout(60)
def test_a_server_that_lost_its_history_is_an_epoch_change(server, history):
    with fast_client(server.url, reconnect=Backoff.constant(0.05)) as client:
        feed = client.join(TOPIC, recover=True)
        seen = Seen(feed)
        _publish(history, server, range(1, 4))
        seen.wait_until(3)
        old = history.info(TOPIC)["epoch"]
        server.refuse_connections(503)
        server.drop_connections()
        new = history.new_epoch(TOPIC)
        server.accept_connections()
        seen.wait_gap()
        _publish(history, server, range(1, 3))
        seen.wait_until(2, count=2)
        assert [g.reason for g in seen.gaps] == ["epoch_changed"]
        assert seen.gaps[0].last == Position(old, 3) and seen.gaps[0].resumed == Position(new, 0)
        assert seen.ticks == [1, 2, 3, 1, 2]
        assert feed.position == Position(new, 2)


@pytest.mark.timeout(60)
def test_positions_survive_the_process_through_the_store(server, history, tmp_path):
    store = tmp_path / "positions"
    with fast_client(server.url) as first:
        feed = first.join(TOPIC, recover=Recovery(save_interval=0), recover_store=store)
        seen = Seen(feed)
        _publish(history, server, range(1, 6))
        seen.wait_until(5)
    _publish(history, server, range(6, 9))  # while no worker runs
    with fast_client(server.url) as second:
        feed = second.channel(TOPIC, recover=True, recover_store=store)
        seen = Seen(feed)
        assert feed.position is not None and feed.position.offset == 5
        feed.join()
        seen.wait_until(8)
        assert seen.ticks == [6, 7, 8] and seen.gaps == []


@pytest.mark.timeout(60)
def test_history_on_demand(server, history):
    with fast_client(server.url) as client:
        feed = client.join(TOPIC, recover=True)
        seen = Seen(feed)
        _publish(history, server, range(1, 11))
        seen.wait_until(10)
        page = feed.history(since=4, limit=3)
        assert [e.payload["n"] for e in page] == [5, 6, 7]
        assert [e.position.offset for e in page] == [5, 6, 7] and {e.event for e in page} == {"tick"}
        assert [e.payload["n"] for e in feed.history(limit=2)] == [1, 2]
        history.trim(TOPIC, keep=2)
        with pytest.raises(ReplyError) as refused:
            feed.history(since=Position(feed.position.epoch, 3))
        assert refused.value.response["reason"] == "trimmed"
        assert refused.value.response["oldest"] == 9
        assert seen.ticks == list(range(1, 11)), "history does not go to the handlers"
