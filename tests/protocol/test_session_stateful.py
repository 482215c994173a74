"""Random conversations with the session: invariants that must hold after every step.

A hypothesis state machine plays the user (join, push, leave, ping), the
server (replies with any status, pushes, broadcasts, phx_error/phx_close for
the current or a stale join_ref, garbage) and the network (time passes, the
connection drops and comes back). After every step:

* every waiter is completed at most once;
* the session lists exactly the channels that are not closed;
* a joined channel implies an open connection and a join_ref;
* nothing is sent while disconnected; every channel frame carries a
  join_ref, and a join's join_ref is its ref; refs are never reused;
* a push that has its outcome (timed out, lost, closed) is never sent later;

and at the end, after ``shutdown()``, every waiter has been completed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from maxsdk.errors import CapacityError, ChannelClosedError, LocalProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState

from .harness import FakeClient, Sent, Waiter, reply, server

S = ChannelState
TOPICS = ("room:a", "room:b")
STATUSES = ("ok", "ok", "ok", "error", "custom")


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h: FakeClient | None = None
        self.channels: list[ChannelCore] = []
        self.waiters: list[Waiter] = []
        self.completed_at: dict[Waiter, int] = {}  # wire length when the waiter got its outcome
        self.answered: set[int] = set()  # indexes in h.wire already answered
        self.epoch = 0  # connection number
        self.sent_epoch: list[int] = []  # connection number of each frame in h.wire
        self.wire_at_drop = 0

    # -- setup ----------------------------------------------------------------------

    @precondition(lambda self: self.h is None)
    @rule(
        max_pending=st.none() | st.integers(1, 4),
        rejoin_attempts=st.none() | st.integers(0, 2),
        connect=st.booleans(),
    )
    def start(self, max_pending: int | None, rejoin_attempts: int | None, connect: bool) -> None:
        rejoin = Backoff(steps=(1.0, 2.0, 5.0), jitter="none", max_attempts=rejoin_attempts)
        self.h = FakeClient(heartbeat_interval=30.0, rejoin=rejoin, max_pending=max_pending, connect=connect)

    @property
    def client(self) -> FakeClient:
        assert self.h is not None
        return self.h

    def _track(self) -> None:
        h = self.client
        h.sent()  # collect
        while len(self.sent_epoch) < len(h.wire):
            self.sent_epoch.append(self.epoch)

    def _pick(self, index: int) -> ChannelCore | None:
        return self.channels[index % len(self.channels)] if self.channels else None

    # -- user -------------------------------------------------------------------------

    @precondition(lambda self: self.h is not None)
    @rule(topic=st.sampled_from(TOPICS), reuse=st.integers(0, 9), timeout=st.sampled_from([5.0, 10.0, 30.0]))
    def join(self, topic: str, reuse: int, timeout: float) -> None:
        h = self.client
        ch = self._pick(reuse)
        if ch is None or ch.state is not S.CLOSED or reuse % 2:
            ch = h.channel(topic)
            self.channels.append(ch)
        self.waiters.append(h.join(ch, {"n": reuse}, timeout=timeout))
        self._track()

    @precondition(lambda self: self.h is not None and self.channels)
    @rule(index=st.integers(0, 9), binary=st.booleans(), timeout=st.sampled_from([1.0, 10.0]))
    def push(self, index: int, binary: bool, timeout: float) -> None:
        h = self.client
        ch = self._pick(index)
        assert ch is not None
        try:
            self.waiters.append(h.push(ch, "evt", b"\x01" if binary else {"i": index}, timeout=timeout))
        except ChannelClosedError:
            assert ch.state in (S.CLOSED, S.LEAVING)
        except CapacityError:
            assert h.session.pending_count >= (h.session.config.max_pending or 0)
        self._track()

    @precondition(lambda self: self.h is not None and self.channels)
    @rule(index=st.integers(0, 9))
    def leave(self, index: int) -> None:
        ch = self._pick(index)
        assert ch is not None
        self.waiters.append(self.client.leave(ch, timeout=5.0))
        self._track()

    @precondition(lambda self: self.h is not None)
    @rule()
    def ping(self) -> None:
        try:
            self.waiters.append(self.client.ping(timeout=5.0))
        except LocalProtocolError:
            assert not self.client.session.connected
        except CapacityError:
            pass
        self._track()

    # -- network and clock ------------------------------------------------------------------

    @precondition(lambda self: self.h is not None)
    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 30.0]))
    def advance(self, seconds: float) -> None:
        h = self.client
        h.advance(seconds)
        if h.session.close_request is not None:  # the runtime drops the connection
            self.drop()
        self._track()

    @precondition(lambda self: self.h is not None and self.client.session.connected)
    @rule()
    def drop(self) -> None:
        self._track()
        self.client.drop()
        self.wire_at_drop = len(self.client.wire)

    @precondition(lambda self: self.h is not None and not self.client.session.connected)
    @rule()
    def reconnect(self) -> None:
        self.epoch += 1
        self.client.open()
        self._track()

    # -- server -------------------------------------------------------------------------------

    def _unanswered(self) -> list[int]:
        h = self.client
        return [
            i
            for i, sent in enumerate(h.wire)
            if sent.ref is not None and i not in self.answered and self.sent_epoch[i] == self.epoch
        ]

    @precondition(lambda self: self.h is not None and self.client.session.connected)
    @rule(pick=st.integers(0, 50), status=st.sampled_from(STATUSES))
    def server_reply(self, pick: int, status: str) -> None:
        candidates = self._unanswered()
        if not candidates:
            return
        index = candidates[pick % len(candidates)]
        self.answered.add(index)
        sent: Sent = self.client.wire[index]
        if sent.event in ("heartbeat", "phx_leave"):
            status = "ok"
        self.client.recv(reply(sent, status, {"for": sent.event}))
        self._track()

    @precondition(lambda self: self.h is not None and self.client.session.connected and self.channels)
    @rule(
        index=st.integers(0, 9),
        event=st.sampled_from(["phx_error", "phx_close", "news", "presence_state"]),
        which=st.sampled_from(["current", "stale", "null"]),
    )
    def server_message(self, index: int, event: str, which: str) -> None:
        ch = self._pick(index)
        assert ch is not None
        join_ref = {"current": ch.join_ref, "stale": "0", "null": None}[which]
        ref = join_ref if event in ("phx_error", "phx_close") else None
        self.client.recv(server(join_ref, ref, ch.topic, event, {}))
        self._track()

    @precondition(lambda self: self.h is not None and self.client.session.connected)
    @rule(frame=st.sampled_from(["not json", "[1,2]", b"\x09", b"\x02\x05t"]))
    def garbage(self, frame: Any) -> None:
        before = self.client.session.counters["protocol_errors"]
        self.client.recv(frame)
        assert self.client.session.counters["protocol_errors"] == before + 1

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def waiters_complete_at_most_once(self) -> None:
        if self.h is not None:
            for waiter in self.waiters:
                self.client.outcome(waiter)  # asserts at most one completion

    @invariant()
    def registry_lists_exactly_the_open_channels(self) -> None:
        if self.h is None:
            return
        registered = self.client.session.channels()
        for ch in self.channels:
            assert (ch in registered) == (ch.state is not S.CLOSED), ch

    @invariant()
    def joined_means_connected(self) -> None:
        if self.h is None:
            return
        for ch in self.channels:
            if ch.state is S.JOINED:
                assert self.client.session.connected and ch.join_ref is not None

    @invariant()
    def frames_are_well_formed(self) -> None:
        if self.h is None:
            return
        h = self.client
        self._track()
        if not h.session.connected:
            assert len(h.wire) == self.wire_at_drop  # nothing sent since the drop (or ever)
        refs = [s.ref for s in h.wire if s.ref is not None]
        assert len(refs) == len(set(refs))
        for sent in h.wire:
            if sent.topic != "phoenix":
                assert sent.join_ref is not None, sent
            if sent.event == "phx_join":
                assert sent.join_ref == sent.ref

    @invariant()
    def nothing_is_sent_for_a_completed_push(self) -> None:
        if self.h is None:
            return
        h = self.client
        self._track()
        for completion in h.completions:
            if completion.waiter is not None:  # internal leaves (replaced, timed-out rejoin) have none
                self.completed_at.setdefault(completion.waiter, len(h.wire))
        for waiter, at in self.completed_at.items():
            if waiter.ref is not None:
                assert all(s.ref != waiter.ref for s in h.wire[at:]), f"{waiter} sent after completing"

    def teardown(self) -> None:
        if self.h is None:
            return
        h = self.client
        h.session.shutdown()
        h.advance(0.0)
        missing = [w for w in self.waiters if h.outcome(w) is None]
        assert missing == [], f"never completed: {missing}"
        assert h.session.pending_count == 0 and h.session.channels() == []


SessionMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, derandomize=True, database=None, deadline=None
)
TestSession = SessionMachine.TestCase
