"""A local, thread-safe copy of a server-owned document: snapshot, versioned deltas, optimistic updates.

Create one with :meth:`Channel.state_view`. The wire contract (events, fields,
replies, error reasons) is in ``docs/state.md``; the rules live in the pure
core :mod:`maxsdk.protocol.state`. This module wires that core to a channel:
it asks for a snapshot after every join and rejoin (so reconnects, crash
rejoins and server restarts re-sync by themselves), feeds it the
``state_delta`` broadcasts, sends optimistic updates as pushes, and reports
changes and rollbacks — on the dispatcher thread, never under its lock.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import jsonpointer

from maxsdk import signals
from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.errors import (
    ChannelClosedError,
    ConfigurationError,
    MaxsdkError,
    RemoteProtocolError,
    ReplyTimeoutError,
    StateConflictError,
)
from maxsdk.models import decode_versioned
from maxsdk.protocol.patch import check_patch, paths_overlap
from maxsdk.protocol.state import (
    Accepted,
    Changed,
    FetchSnapshot,
    LocalUpdate,
    RolledBack,
    StateEffect,
    StateReplica,
    parse_delta,
    parse_snapshot,
)
from maxsdk.reply import Reply

if TYPE_CHECKING:
    from maxsdk.channel import Channel
    from maxsdk.protocol.phoenix.events import Outcome
    from maxsdk.reply import PendingReply

__all__ = ["PendingUpdate", "StateChange", "StateConflict", "StateView"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_EVENT = "state_snapshot"
UPDATE_EVENT = "state_update"
DELTA_EVENT = "state_delta"


@dataclass(frozen=True)
class StateChange:
    """What changed in a :class:`StateView` (passed to ``on_change`` callbacks).

    Attributes:
        view: the view (read the new value with :meth:`StateView.get`).
        paths: JSON Pointers that changed (``""`` = the whole document).
        version: the confirmed server version after the change.
        cause: ``"snapshot"`` (a (re)sync), ``"delta"`` (a server change),
            ``"local"`` (an optimistic update of ours) or ``"rollback"``.

    """

    view: StateView
    paths: tuple[str, ...]
    version: int
    cause: str


@dataclass(frozen=True)
class StateConflict:
    """An optimistic update the server refused (passed to ``on_conflict`` callbacks); it was rolled back.

    Attributes:
        view: the view.
        update_id: the update's id.
        format: ``"merge"`` or ``"json"``.
        patch: the patch that was rolled back.
        base: the version it was made on.
        reason: ``"conflict"`` (someone changed the document first), another
            server reason (``"invalid patch"``...), ``"timeout"`` (no reply:
            the outcome is unknown; the document that follows is the server's),
            or ``"not sent"`` (the push could not be queued; its error was raised).
        version: the server's version, when the reply said so.
        response: the server's reply payload (``None`` for a timeout).

    """

    view: StateView
    update_id: str
    format: str
    patch: Any
    base: int
    reason: str
    version: int | None
    response: Any


class PendingUpdate:
    """The outcome of :meth:`StateView.update_nowait`: wait for it, or ignore it."""

    def __init__(self, update: LocalUpdate, timeout: float, topic: str) -> None:
        self.id = update.id
        self.topic = topic
        self.base = update.base
        self.timeout = timeout
        self._done = threading.Event()
        self._version: int | None = None
        self._error: MaxsdkError | None = None

    def done(self) -> bool:
        """Whether the server accepted or refused it (or it timed out)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> int:
        """Block until settled; return the version the update became.

        Raises:
            StateConflictError: the server refused it (already rolled back).
            ReplyTimeoutError: no reply within the push timeout (rolled back), or
                nothing within ``timeout``.

        """
        limit = self.timeout + 1.0 if timeout is None else timeout
        if not wait_interruptibly(self._done.wait, limit):
            raise ReplyTimeoutError(
                f"update {self.id} on {self.topic!r} not settled within {limit:g} s",
                topic=self.topic,
                event=UPDATE_EVENT,
            )
        if self._error is not None:
            raise self._error
        assert self._version is not None
        return self._version

    def _settle(self, version: int | None, error: MaxsdkError | None) -> None:
        self._version, self._error = version, error
        self._done.set()

    def __repr__(self) -> str:
        return f"<PendingUpdate {self.id} base={self.base} {'done' if self.done() else 'pending'}>"


class StateView:
    """The local copy of a channel's replicated document.

    Reads are safe from any thread and return copies taken under one lock
    (a consistent snapshot). Callbacks and the ``state_view_*`` signals run
    on the dispatcher thread, never while the view's lock is held.

    Args:
        channel: the channel of a state topic.
        model: a dataclass the document decodes into for :meth:`get` (typed view).
        timeout: push timeout of snapshot requests and updates (default: the channel's).

    """

    def __init__(self, channel: Channel, *, model: type | None = None, timeout: float | None = None) -> None:
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigurationError("timeout must be a positive number of seconds or None")
        self._channel = channel
        self.model = model
        self.timeout = float(timeout) if timeout is not None else channel.timeout
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._core = StateReplica(id_prefix=f"{secrets.token_hex(4)}-")
        self._updates: dict[str, PendingUpdate] = {}
        self._on_change: list[tuple[Callable[[StateChange], Any], tuple[str, ...] | None]] = []
        self._on_conflict: list[Callable[[StateConflict], Any]] = []
        self._closed = False
        self._binding = channel.on(DELTA_EVENT, self._on_delta)
        channel._client.on_signal(signals.channel_joined, self._on_joined)
        if channel.joined:
            self._resync("join")

    # -- reading -------------------------------------------------------------------

    @property
    def channel(self) -> Channel:
        """The channel this view follows."""
        return self._channel

    @property
    def synced(self) -> bool:
        """Whether a snapshot has arrived (the document is known)."""
        with self._lock:
            return self._core.synced

    @property
    def version(self) -> int | None:
        """The confirmed server version (``None`` before the first snapshot)."""
        with self._lock:
            return self._core.version

    @property
    def pending(self) -> int:
        """How many optimistic updates await the server's answer."""
        with self._lock:
            return len(self._core.pending)

    @overload
    def get(self, model: None = None) -> Any: ...
    @overload
    def get(self, model: type[T]) -> T: ...
    def get(self, model: type[Any] | None = None) -> Any:
        """A copy of the shown document (optimistic updates included), or it decoded into ``model``.

        Raises:
            ModelError: the document does not fit the model (given here or to the view).

        """
        document = self.snapshot()[1]
        model = model if model is not None else self.model
        return document if model is None else decode_versioned(model, document)

    def document(self) -> Any:
        """A copy of the shown document as plain JSON values, whatever the view's model."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int | None, Any]:
        """``(version, document)``: a consistent copy of both (``(None, None)`` before the first sync)."""
        with self._lock:
            return self._core.version, copy.deepcopy(self._core.document)

    def value(self, pointer: str, default: Any = None) -> Any:
        """A copy of the value at JSON Pointer ``pointer`` (e.g. ``"/players/0"``), or ``default``."""
        with self._lock:
            try:
                found = jsonpointer.resolve_pointer(self._core.document, pointer)
            except jsonpointer.JsonPointerException:
                return default
            return copy.deepcopy(found)

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first snapshot has been applied; return whether it was."""
        with self._cond:
            return self._cond.wait_for(lambda: self._core.synced, timeout)

    def wait_version(self, version: int, timeout: float) -> bool:
        """Block until the confirmed version is at least ``version``; return whether it got there."""
        with self._cond:
            return self._cond.wait_for(lambda: (self._core.version or -1) >= version, timeout)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> bool:
        """Block until ``predicate(document)`` holds (checked after every change); return whether it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._core.synced and bool(predicate(self._core.document)), timeout)

    @property
    def resyncs(self) -> dict[str, int]:
        """Snapshots applied so far, by why they were fetched (``join``, ``gap``, ``epoch``, ``mismatch``...)."""
        with self._lock:
            return dict(self._core.resyncs)

    # -- writing -------------------------------------------------------------------

    def update(self, patch: Any, *, format: str = "merge", timeout: float | None = None) -> int:
        """Apply ``patch`` optimistically and block until the server accepts it; return its version.

        Raises:
            StateConflictError: the server refused it; it was rolled back.
            ReplyTimeoutError: no reply in time; it was rolled back (the server
                may still have applied it: the document that follows says so).
            PatchError: the patch is malformed or does not apply locally (nothing sent).

        """
        engine = self._channel._engine
        engine.check_blocking_allowed()
        pending = self.update_nowait(patch, format=format)
        with engine.blocking_wait():
            return pending.wait(timeout)

    def update_nowait(self, patch: Any, *, format: str = "merge") -> PendingUpdate:
        """Apply ``patch`` (a merge patch, or a JSON Patch with ``format="json"``) now and send it.

        Raises:
            PatchError: the patch is malformed or does not apply (nothing changes, nothing is sent).
            MaxsdkError: the view is closed or not synced yet
                (:class:`~maxsdk.LocalProtocolError`), or the push could not be queued.

        """
        check_patch(format, patch)
        with self._send_lock:
            with self._lock:
                if self._closed:
                    raise ChannelClosedError("the state view is closed", topic=self._channel.topic)
                update, effects = self._core.update(format, patch)
                pending = PendingUpdate(update, self.timeout, self._channel.topic)
                self._updates[update.id] = pending
                self._cond.notify_all()
            try:
                reply = self._channel.push_nowait(UPDATE_EVENT, update.payload(), self.timeout)
            except MaxsdkError:
                self._settle_lost(update.id, "not sent")
                raise
        self._channel._engine.call_soon(self._report, effects)
        reply.add_done_callback(lambda done: self._on_update_reply(update.id, done))
        return pending

    def resync(self) -> None:
        """Fetch a fresh snapshot now (done by itself after every join and on any gap)."""
        self._resync("manual")

    def _resync(self, reason: str) -> None:
        with self._lock:
            if self._closed:
                return
            effects = self._core.resync(reason)
        self._act(effects)

    # -- callbacks -------------------------------------------------------------------

    def on_change(
        self, callback: Callable[[StateChange], Any] | None = None, *, paths: Sequence[str] | None = None
    ) -> Any:
        """Call ``callback(change)`` after each change (only those touching ``paths``, if given).

        Usable as a decorator (``@view.on_change(paths=["/score"])``).
        """

        def register(fn: Callable[[StateChange], Any]) -> Callable[[StateChange], Any]:
            if not callable(fn):
                raise ConfigurationError("callback must be callable")
            with self._lock:
                self._on_change.append((fn, tuple(paths) if paths is not None else None))
            return fn

        return register if callback is None else register(callback)

    def on_conflict(self, callback: Callable[[StateConflict], Any]) -> Callable[[StateConflict], Any]:
        """Call ``callback(conflict)`` when an optimistic update was refused and rolled back."""
        if not callable(callback):
            raise ConfigurationError("callback must be callable")
        with self._lock:
            self._on_conflict.append(callback)
        return callback

    def close(self) -> None:
        """Stop following the channel (the channel itself stays joined)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._channel.off(DELTA_EVENT, self._binding)
        self._channel._client.off_signal(signals.channel_joined, self._on_joined)

    def __enter__(self) -> StateView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            version, pending = self._core.version, len(self._core.pending)
        return f"<StateView {self._channel.topic!r} version={version} pending={pending}>"

    # -- fed by the channel (dispatcher thread) ------------------------------------------

    def _on_joined(self, client: Any, channel: Any = None, **kwargs: Any) -> None:
        if channel is self._channel:
            self._resync("rejoin" if kwargs.get("rejoined") else "join")

    def _on_delta(self, payload: Any) -> None:
        try:
            delta = parse_delta(payload)
        except RemoteProtocolError as exc:
            self._channel._engine.report_protocol_error(exc)
            return
        with self._lock:
            if self._closed:
                return
            effects = self._core.delta_received(delta)
            self._cond.notify_all()
        self._act(effects)

    def _on_snapshot_reply(self, request: int, done: PendingReply) -> None:
        reply = _outcome(done)
        with self._lock:
            if reply is None or reply.status != "ok":
                effects = self._core.snapshot_failed(request)
                log.warning("%s: state snapshot request failed: %r", self._channel.topic, reply)
            else:
                try:
                    effects = self._core.snapshot_received(request, parse_snapshot(reply.response))
                except RemoteProtocolError as exc:
                    effects = self._core.snapshot_failed(request)
                    self._channel._engine.report_protocol_error(exc)
            self._cond.notify_all()
        self._act(effects)

    def _on_update_reply(self, update_id: str, done: PendingReply) -> None:
        reply = _outcome(done)
        with self._lock:
            if reply is not None and reply.status == "ok":
                response = reply.response if isinstance(reply.response, dict) else {}
                effects = self._core.update_accepted(update_id, response.get("version"))
            elif reply is not None and reply.status == "error":
                response = reply.response if isinstance(reply.response, dict) else {}
                reason = response.get("reason")
                version = response.get("version")
                effects = self._core.update_refused(
                    update_id,
                    reason if isinstance(reason, str) else "refused",
                    version if type(version) is int else None,
                    reply.response,
                )
            else:
                effects = self._core.update_refused(update_id, "timeout")
            pending = self._updates.get(update_id)
            self._cond.notify_all()
        if pending is not None and reply is not None and reply.status == "error":
            pending._error = StateConflictError(
                Reply(reply.status, reply.response, reply.topic, reply.event, reply.ref)
            )
        self._act(effects)

    def _settle_lost(self, update_id: str, reason: str) -> None:
        with self._lock:
            effects = self._core.update_refused(update_id, reason)
            self._updates.pop(update_id, None)
            self._cond.notify_all()
        self._channel._engine.call_soon(self._report, effects)

    # -- acting on the core's effects (never under the lock) ------------------------------

    def _act(self, effects: list[StateEffect]) -> None:
        for effect in effects:
            if isinstance(effect, FetchSnapshot):
                self._fetch(effect.request)
        self._report(effects)

    def _fetch(self, request: int) -> None:
        try:
            reply = self._channel.push_nowait(SNAPSHOT_EVENT, {}, self.timeout)
        except MaxsdkError as exc:
            log.debug("%s: cannot request a state snapshot now: %s", self._channel.topic, exc)
            with self._lock:
                self._core.snapshot_failed(request)
            return
        reply.add_done_callback(lambda done: self._on_snapshot_reply(request, done))

    def _report(self, effects: list[StateEffect]) -> None:
        engine = self._channel._engine
        with self._lock:
            on_change, on_conflict = list(self._on_change), list(self._on_conflict)
        for effect in effects:
            if isinstance(effect, Changed):
                change = StateChange(self, effect.paths, effect.version, effect.cause)
                for callback, paths in on_change:
                    if paths is None or paths_overlap(effect.paths, paths):
                        engine.guarded(callback, (change,), f"state view change on {self._channel.topic}")
                engine.send_signal(
                    signals.state_view_changed,
                    channel=self._channel,
                    view=self,
                    paths=effect.paths,
                    version=effect.version,
                    cause=effect.cause,
                )
            elif isinstance(effect, RolledBack):
                self._settle(effect.update.id, None, effect)
                conflict = StateConflict(
                    self,
                    effect.update.id,
                    effect.update.format,
                    effect.update.patch,
                    effect.update.base,
                    effect.reason,
                    effect.server_version,
                    effect.response,
                )
                for conflict_callback in on_conflict:
                    engine.guarded(conflict_callback, (conflict,), f"state view conflict on {self._channel.topic}")
                engine.send_signal(signals.state_view_conflict, channel=self._channel, view=self, conflict=conflict)
            elif isinstance(effect, Accepted):
                self._settle(effect.update.id, effect.version, None)

    def _settle(self, update_id: str, version: int | None, rolled_back: RolledBack | None) -> None:
        with self._lock:
            pending = self._updates.pop(update_id, None)
        if pending is None:
            return
        if rolled_back is None:
            pending._settle(version, None)
        elif pending._error is not None:
            pending._settle(None, pending._error)
        else:
            pending._settle(
                None,
                ReplyTimeoutError(
                    f"no reply to update {update_id} on {self._channel.topic!r}: rolled back",
                    topic=self._channel.topic,
                    event=UPDATE_EVENT,
                ),
            )


def _outcome(done: PendingReply) -> Outcome | None:
    """The outcome of a finished push (status ``ok``, ``error``, ``timeout``, ``lost``...), or ``None``."""
    try:
        return done.wait_outcome(0)
    except MaxsdkError:
        return None
