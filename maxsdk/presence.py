"""Who is online on a channel: a thread-safe view of Phoenix Presence (reference §6)."""

from __future__ import annotations

import builtins
import copy
import threading
from typing import TYPE_CHECKING, Any, Callable

from maxsdk import signals
from maxsdk.errors import RemoteProtocolError
from maxsdk.protocol.phoenix.presence import (
    PresenceChange,
    PresenceTracker,
    diff_problem,
    list_presences,
    state_problem,
)

if TYPE_CHECKING:
    from maxsdk.channel import Channel

__all__ = ["Presence"]

PresenceCallback = Callable[[str, "dict[str, Any] | None", "dict[str, Any]"], Any]


class Presence:
    """The presence list of one channel, kept in sync from ``presence_state``/``presence_diff``.

    Reads (:meth:`list`, :meth:`get`, :meth:`snapshot`) are safe from any
    thread and return copies. Callbacks and the ``presence_*`` signals run on
    the dispatcher thread. Nothing is known until the server pushes its first
    ``presence_state`` (:attr:`synced`).

    Attributes:
        state_event: the event carrying full state (default ``"presence_state"``).
        diff_event: the event carrying diffs (default ``"presence_diff"``).

    """

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._tracker = PresenceTracker()
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._on_join: builtins.list[PresenceCallback] = []
        self._on_leave: builtins.list[PresenceCallback] = []
        self._on_sync: builtins.list[Callable[[], Any]] = []
        self.state_event = "presence_state"
        self.diff_event = "presence_diff"

    # -- reading --------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether a ``presence_state`` has been received."""
        return self._tracker.synced

    def list(self, chooser: Callable[[str, dict[str, Any]], Any] | None = None) -> builtins.list[Any]:
        """One element per key: ``chooser(key, entry)``, or the ``{"metas": [...]}`` entry (phoenix.js ``list``)."""
        with self._lock:
            return list_presences(self._tracker.state, chooser)

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry of ``key`` (``{"metas": [...]}``), or ``None``."""
        with self._lock:
            entry = self._tracker.state.get(key)
            return copy.deepcopy(entry) if entry is not None else None

    def keys(self) -> builtins.list[str]:
        """The presence keys (e.g. user ids) currently present."""
        with self._lock:
            return list(self._tracker.state)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the whole state."""
        with self._lock:
            return copy.deepcopy(self._tracker.state)

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first ``presence_state`` has been applied; return whether it was."""
        with self._synced:
            return self._synced.wait_for(lambda: self._tracker.synced, timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tracker.state)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._tracker.state

    # -- callbacks -------------------------------------------------------------

    def on_join(self, callback: PresenceCallback) -> PresenceCallback:
        """Call ``callback(key, current_entry_or_None, joined)`` on each join (usable as a decorator)."""
        self._on_join.append(callback)
        return callback

    def on_leave(self, callback: PresenceCallback) -> PresenceCallback:
        """Call ``callback(key, remaining_entry, left)`` on each leave (usable as a decorator)."""
        self._on_leave.append(callback)
        return callback

    def on_sync(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Call ``callback()`` after each applied state or diff (usable as a decorator)."""
        self._on_sync.append(callback)
        return callback

    # -- fed by the channel on the dispatcher thread -------------------------------

    def _handle(self, event: str, payload: Any, join_ref: str | None) -> bool:
        """Apply a presence event; return whether it was one.

        A malformed payload is reported as a protocol error on the channel and
        changes nothing; it never raises, so the user's handlers for the
        event still run.
        """
        if event == self.state_event:
            problem = state_problem(payload)
        elif event == self.diff_event:
            problem = diff_problem(payload)
        else:
            return False
        if problem is not None:
            self._refuse(event, problem, payload)
            return True
        try:
            with self._lock:
                if event == self.state_event:
                    changes: builtins.list[PresenceChange] | None = self._tracker.apply_state(payload, join_ref)
                    self._synced.notify_all()
                else:
                    changes = self._tracker.apply_diff(payload, join_ref)
        except (RecursionError, TypeError, ValueError, AttributeError) as exc:  # beyond the shape check
            self._refuse(event, f"cannot be applied ({type(exc).__name__})", payload)
            return True
        if changes is not None:
            self._report(changes)
        return True

    def _refuse(self, event: str, problem: str, payload: Any) -> None:
        topic = self._channel.topic
        try:
            excerpt = repr(payload)[:200]
        except RecursionError:
            excerpt = "<too deeply nested>"
        error = RemoteProtocolError(f"malformed {event} on {topic!r}: {problem}; ignored", frame=excerpt, topic=topic)
        self._channel._engine.report_protocol_error(error)

    def _report(self, changes: builtins.list[PresenceChange]) -> None:
        channel = self._channel
        engine = channel._engine
        for change in changes:
            callbacks = self._on_join if change.kind == "join" else self._on_leave
            signal = signals.presence_join if change.kind == "join" else signals.presence_leave
            for callback in callbacks:
                engine.guarded(callback, (change.key, change.current, change.changed), f"presence {change.kind}")
            engine.send_signal(signal, channel=channel, key=change.key, current=change.current, changed=change.changed)
        for sync_callback in self._on_sync:
            engine.guarded(sync_callback, (), "presence sync")
        engine.send_signal(signals.presence_sync, channel=channel)

    def __repr__(self) -> str:
        return f"<Presence {self._channel.topic!r} keys={self.keys()!r}>"
