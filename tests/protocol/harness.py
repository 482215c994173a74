"""Drive a :class:`PhoenixSession` the way the runtime does, with a fake clock.

What the runtime (``maxsdk/_runtime/engine.py``) does and this harness mirrors:

* every call gets ``now``; the timer thread calls ``on_deadline(now)``;
* after each call, ``take_output()``: completions go to waiters, and for each
  channel in ``rejoins_due`` the join params are evaluated and
  ``send_rejoin(core, payload, now)`` is called;
* ``outgoing`` frames are written in order; received frames are decoded and
  given to ``receive`` (or to ``protocol_error`` when they cannot be decoded).

Frames the session sends are read back with ``json`` and a hand-written
binary parser, not with our serializer, and frames the tests feed in are
written with ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from maxsdk.errors import RemoteProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.phoenix.channel import ChannelCore, ChannelState
from maxsdk.protocol.phoenix.events import ChannelMessage, ChannelStateChanged, Completion, Outcome
from maxsdk.protocol.phoenix.serializer import serializer_for
from maxsdk.protocol.phoenix.session import PhoenixSession, SessionConfig


class Waiter:
    """A stand-in for the runtime's PendingReply: only its identity matters to the core."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.ref: str | None = None

    def __repr__(self) -> str:
        return f"<Waiter {self.label}>"


class Owner:
    """A stand-in for the public Channel object a core belongs to."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def __repr__(self) -> str:
        return f"<Owner {self.topic}>"


class Sent(NamedTuple):
    """A frame the session sent, read back independently of our serializer.

    ``ref`` is never null: every frame our client sends carries one (checklist 6).
    """

    join_ref: str | None
    ref: str
    topic: str
    event: str
    payload: Any
    raw: str | bytes


def parse_sent(frame: str | bytes, vsn: str) -> Sent:
    if isinstance(frame, bytes):
        assert frame[0] == 0, "clients only send binary kind 0"
        pos, fields = 5, []
        for size in frame[1:5]:
            fields.append(frame[pos : pos + size].decode("utf-8"))
            pos += size
        assert fields[1], "a binary push without a ref"
        return Sent(fields[0] or None, fields[1], fields[2], fields[3], frame[pos:], frame)
    value = json.loads(frame)
    if vsn == "2.0.0":
        assert isinstance(value, list) and len(value) == 5, frame
        join_ref, ref, topic, event, payload = value
    else:
        assert isinstance(value, dict), frame
        join_ref = value.get("join_ref")
        ref, topic, event, payload = (value[k] for k in ("ref", "topic", "event", "payload"))
    assert isinstance(ref, str), f"a frame without a string ref: {frame!r}"
    return Sent(join_ref, ref, topic, event, payload, frame)


class FakeClient:
    """A PhoenixSession, a fake monotonic clock and the runtime's glue."""

    def __init__(
        self,
        vsn: str = "2.0.0",
        *,
        heartbeat_interval: float | None = 30.0,
        heartbeat_timeout: float | None = None,
        rejoin: Backoff | None = None,
        max_pending: int | None = None,
        connect: bool = True,
        auto_rejoin: bool = True,
        start: float = 100.0,
    ) -> None:
        self.vsn = vsn
        self.now = start
        self.serializer = serializer_for(vsn)
        config = SessionConfig(
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            rejoin=rejoin or Backoff.phoenix_rejoin(),
            max_pending=max_pending,
        )
        self.session = PhoenixSession(self.serializer, config, rng=lambda: 0.5)
        self.completions: list[Completion] = []
        self.params: dict[ChannelCore, Any] = {}
        self.auto_rejoin = auto_rejoin
        self.rejoins_due: list[ChannelCore] = []
        self.rejoined: list[tuple[float, ChannelCore]] = []
        self.wire: list[Sent] = []  # everything sent, in order
        self._unread = 0
        if connect:
            self.open()

    # -- clock and connection --------------------------------------------------

    def at(self, when: float) -> None:
        """Move the clock to ``when`` and run what is due (the timer thread's job)."""
        assert when >= self.now, "the clock is monotonic"
        self.now = when
        self.session.on_deadline(when)
        self._drain()

    def advance(self, seconds: float) -> None:
        self.at(self.now + seconds)

    def open(self, *, heartbeats: bool = True) -> None:
        self.session.connection_opened(self.now, heartbeats=heartbeats)
        self._drain()

    def drop(self, reason: str = "connection_closed") -> None:
        self.session.connection_closed(self.now, reason)
        self._drain()

    # -- user operations -------------------------------------------------------

    def channel(self, topic: str, timeout: float = 10.0) -> ChannelCore:
        return ChannelCore(topic, Owner(topic), timeout)

    def join(self, ch: ChannelCore, params: Any = None, timeout: float | None = None) -> Waiter:
        self.params[ch] = {} if params is None else params
        waiter = Waiter(f"join {ch.topic}")
        payload = self.serializer.encode_payload(self.params[ch])
        self.session.join(ch, payload, self.now, ch.timeout if timeout is None else timeout, waiter)
        self._drain()
        return waiter

    def push(self, ch: ChannelCore, event: str, payload: Any = None, timeout: float = 10.0) -> Waiter:
        waiter = Waiter(f"push {event}")
        encoded = self.serializer.encode_payload({} if payload is None else payload)
        waiter.ref = self.session.push(ch, event, encoded, self.now, timeout, waiter)
        self._drain()
        return waiter

    def leave(self, ch: ChannelCore, timeout: float = 10.0) -> Waiter:
        waiter = Waiter(f"leave {ch.topic}")
        self.session.leave(ch, self.now, timeout, waiter)
        self._drain()
        return waiter

    def ping(self, timeout: float = 10.0) -> Waiter:
        waiter = Waiter("ping")
        waiter.ref = self.session.ping(self.now, timeout, waiter)
        self._drain()
        return waiter

    def joined(self, topic: str, params: Any = None) -> tuple[ChannelCore, Waiter, Sent]:
        """Join ``topic`` and answer ``ok``: a channel ready for the test."""
        ch = self.channel(topic)
        waiter = self.join(ch, params)
        (join,) = self.sent()
        self.recv(reply(join, "ok", {}, vsn=self.vsn))
        assert ch.state is ChannelState.JOINED
        return ch, waiter, join

    # -- wire ------------------------------------------------------------------

    def recv(self, frame: str | bytes) -> None:
        """A frame arrived: decode it (text for ``str``, binary for ``bytes``) and route it."""
        try:
            message = (
                self.serializer.decode_text(frame) if isinstance(frame, str) else self.serializer.decode_binary(frame)
            )
        except RemoteProtocolError as exc:
            self.session.protocol_error(exc)
        else:
            self.session.receive(message, self.now)
        self._drain()

    def sent(self) -> list[Sent]:
        """The frames sent since the last call."""
        self._collect()
        new = self.wire[self._unread :]
        self._unread = len(self.wire)
        return new

    # -- outputs ---------------------------------------------------------------

    def outcome(self, waiter: Waiter) -> Outcome | None:
        """The outcome handed to ``waiter`` (at most one may exist)."""
        found = [c.outcome for c in self.completions if c.waiter is waiter]
        assert len(found) <= 1, f"{waiter} completed {len(found)} times: {found}"
        return found[0] if found else None

    def status(self, waiter: Waiter) -> str | None:
        outcome = self.outcome(waiter)
        return None if outcome is None else outcome.status

    def changes(self, ch: ChannelCore) -> list[tuple[str, str, str]]:
        """``(old, new, reason)`` of every state change of ``ch``."""
        return [
            (str(e.old), str(e.new), e.reason)
            for e in self.session.events
            if isinstance(e, ChannelStateChanged) and e.owner is ch.owner
        ]

    def delivered(self, ch: ChannelCore) -> list[tuple[str, Any]]:
        """``(event, payload)`` of every message handed to the channel's handlers."""
        return [
            (e.message.event, e.message.payload)
            for e in self.session.events
            if isinstance(e, ChannelMessage) and e.owner is ch.owner
        ]

    # -- internals -------------------------------------------------------------

    def _collect(self) -> None:
        outgoing = self.session.outgoing
        while outgoing:
            self.wire.append(parse_sent(outgoing.popleft(), self.vsn))

    def _drain(self) -> None:
        self._collect()
        while True:
            completions, rejoins = self.session.take_output()
            self.completions.extend(completions)
            if not rejoins:
                break
            for ch in rejoins:
                if not self.auto_rejoin:
                    self.rejoins_due.append(ch)
                    continue
                payload = self.serializer.encode_payload(self.params.get(ch, {}))
                if self.session.send_rejoin(ch, payload, self.now):
                    self.rejoined.append((self.now, ch))
            self._collect()


def reply(sent: Sent, status: str, response: Any = None, *, vsn: str = "2.0.0", join_ref: Any = "same") -> str:
    """The server's reply to ``sent``, written with ``json.dumps``."""
    payload = {"response": {} if response is None else response, "status": status}
    if vsn == "1.0.0":
        return json.dumps({"event": "phx_reply", "payload": payload, "ref": sent.ref, "topic": sent.topic})
    jr = sent.join_ref if join_ref == "same" else join_ref
    return json.dumps([jr, sent.ref, sent.topic, "phx_reply", payload])


def server(join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any = None) -> str:
    """A V2 server frame, written with ``json.dumps``."""
    return json.dumps([join_ref, ref, topic, event, {} if payload is None else payload])
