"""Presence end to end: several clients joining, leaving, updating meta, disconnecting abruptly."""

from __future__ import annotations

import threading

import pytest

from maxsdk import Backoff
from tests.client.helpers import fast_client
from tests.support.faultproxy import FaultProxy


class PresenceWatch:
    """Wait until a channel's presence satisfies a predicate (woken by its sync callbacks)."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self._cond = threading.Condition()
        channel.presence.on_sync(self._synced)

    def _synced(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait(self, predicate, timeout: float = 10.0) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.channel.presence), timeout)
        assert ok, f"presence never matched; now {self.channel.presence.snapshot()}"


@pytest.mark.timeout(60)
def test_joins_leaves_meta_updates_and_abrupt_disconnects(phoenix_server):
    with FaultProxy(("127.0.0.1", phoenix_server.port)) as proxy:
        alice = fast_client(phoenix_server.url, params={"user_id": "alice"})
        bob = fast_client(
            proxy.rewrite(phoenix_server.url), params={"user_id": "bob"}, reconnect=Backoff.constant(0.05)
        )
        carol = fast_client(phoenix_server.url, params={"user_id": "carol"})
        with alice, bob, carol:
            a = alice.join("room:presence")
            watch = PresenceWatch(a)
            b = bob.join("room:presence")
            c = carol.join("room:presence")
            watch.wait(lambda p: sorted(p.keys()) == ["alice", "bob", "carol"])
            joins = []
            a.presence.on_leave(lambda key, current, left: joins.append(("leave", key)))

            c.leave()
            watch.wait(lambda p: sorted(p.keys()) == ["alice", "bob"])

            before = a.presence.get("bob")["metas"][0]["phx_ref"]
            b.push("presence_update", {"status": "away"})
            watch.wait(lambda p: p.get("bob")["metas"][0]["phx_ref"] != before)
            metas = a.presence.get("bob")["metas"]
            assert len(metas) == 1 and metas[0].get("phx_ref_prev") == before, "an update keeps one meta"

            proxy.refuse()
            proxy.cut("rst")  # bob vanishes without a goodbye
            watch.wait(lambda p: "bob" not in p)
            proxy.reset()
            watch.wait(lambda p: sorted(p.keys()) == ["alice", "bob"])
            bob_watch = PresenceWatch(b)
            bob_watch.wait(lambda p: sorted(p.keys()) == ["alice", "bob"])
            assert ("leave", "carol") in joins and ("leave", "bob") in joins
