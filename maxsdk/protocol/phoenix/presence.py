"""Client-side Phoenix Presence sync (reference §6): pure functions on copies.

State shape: ``{key: {"metas": [meta, ...], ...extra}}`` where every meta has a
unique ``phx_ref``. A diff is ``{"joins": state, "leaves": state}``.

* :func:`sync_diff` applies joins first, then leaves. A joined key keeps its
  current metas whose ``phx_ref`` is not among the joined ones (prepended); a
  left key loses the metas whose ``phx_ref`` left, and disappears when none
  remain. A metadata update (join with a new ``phx_ref`` plus leave of the
  old one in the same diff) therefore leaves only the new meta.
* :func:`sync_state` turns a full snapshot into the diff against the current
  state and applies it, so only real joins and leaves are reported.
* :class:`PresenceTracker` adds the buffering of §6.3: diffs that arrive
  before the first ``presence_state`` (or after a rejoin, before the next
  one) wait and are applied in order right after it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple

__all__ = [
    "PresenceChange",
    "PresenceTracker",
    "diff_problem",
    "list_presences",
    "state_problem",
    "sync_diff",
    "sync_state",
]

State = dict[str, dict[str, Any]]


class PresenceChange(NamedTuple):
    """One join or leave produced by a sync.

    Attributes:
        kind: ``"join"`` or ``"leave"``.
        key: the presence key (e.g. a user id).
        current: the key's entry after the change (``None`` for a key that
            just appeared on a join; the entry without the left metas on a leave).
        changed: the joined or left presence (``{"metas": [...]}``).

    """

    kind: str
    key: str
    current: dict[str, Any] | None
    changed: dict[str, Any]


def _refs(entry: dict[str, Any]) -> set[Any]:
    return {meta.get("phx_ref") for meta in entry.get("metas", ()) if isinstance(meta, dict)}


def state_problem(state: Any, what: str = "presence_state") -> str | None:
    """Why ``state`` is not a presence state (``{key: {"metas": [object, ...]}}``), or ``None``.

    A peer's payload is checked whole before any of it is applied, so a
    malformed one leaves the state as it was (reference §6.1).
    """
    if not isinstance(state, dict):
        return f"{what} is a {type(state).__name__}, not an object"
    for key, entry in state.items():
        if not isinstance(entry, dict):
            return f"{what} entry {key!r} is a {type(entry).__name__}, not an object"
        metas = entry.get("metas")
        if not isinstance(metas, list):
            return f"{what} entry {key!r} has no list of metas"
        for meta in metas:
            if not isinstance(meta, dict):
                return f"{what} entry {key!r} has a meta that is a {type(meta).__name__}, not an object"
    return None


def diff_problem(diff: Any) -> str | None:
    """Why ``diff`` is not a presence diff (``{"joins": state, "leaves": state}``), or ``None``."""
    if not isinstance(diff, dict):
        return f"presence_diff is a {type(diff).__name__}, not an object"
    for part in ("joins", "leaves"):
        value = diff.get(part)
        if value is not None:
            problem = state_problem(value, f"presence_diff {part}")
            if problem is not None:
                return problem
    return None


def sync_diff(state: State, diff: dict[str, Any]) -> tuple[State, list[PresenceChange]]:
    """Apply a ``{"joins", "leaves"}`` diff; return the new state and the changes."""
    state = copy.deepcopy(state)
    changes: list[PresenceChange] = []
    joins = diff.get("joins") or {}
    leaves = diff.get("leaves") or {}
    for key, joined in joins.items():
        if not isinstance(joined, dict):
            continue
        joined = copy.deepcopy(joined)
        current = state.get(key)
        entry = copy.deepcopy(joined)
        if current is not None:
            joined_refs = _refs(joined)
            kept = [m for m in current.get("metas", []) if m.get("phx_ref") not in joined_refs]
            entry["metas"] = kept + list(entry.get("metas", []))
        state[key] = entry
        changes.append(PresenceChange("join", key, copy.deepcopy(current), joined))
    for key, left in leaves.items():
        current = state.get(key)
        if current is None or not isinstance(left, dict):
            continue  # leaves for unknown keys are ignored
        left_refs = _refs(left)
        current["metas"] = [m for m in current.get("metas", []) if m.get("phx_ref") not in left_refs]
        changes.append(PresenceChange("leave", key, copy.deepcopy(current), copy.deepcopy(left)))
        if not current["metas"]:
            del state[key]
    return state, changes


def sync_state(state: State, new_state: State) -> tuple[State, list[PresenceChange]]:
    """Replace the state with a snapshot, reporting only the real joins and leaves."""
    joins: State = {}
    leaves: State = {}
    for key, entry in state.items():
        if key not in new_state:
            leaves[key] = entry
    for key, new_entry in new_state.items():
        if not isinstance(new_entry, dict):
            continue
        current = state.get(key)
        if current is None:
            joins[key] = new_entry
            continue
        new_refs = _refs(new_entry)
        cur_refs = _refs(current)
        joined_metas = [m for m in new_entry.get("metas", []) if m.get("phx_ref") not in cur_refs]
        left_metas = [m for m in current.get("metas", []) if m.get("phx_ref") not in new_refs]
        if joined_metas:
            joins[key] = {**new_entry, "metas": joined_metas}
        if left_metas:
            leaves[key] = {**current, "metas": left_metas}
    return sync_diff(state, {"joins": joins, "leaves": leaves})


def list_presences(state: State, chooser: Callable[[str, dict[str, Any]], Any] | None = None) -> list[Any]:
    """One element per key: ``chooser(key, entry)``, or the entry itself by default."""
    if chooser is None:
        return [copy.deepcopy(entry) for entry in state.values()]
    return [chooser(key, copy.deepcopy(entry)) for key, entry in state.items()]


class PresenceTracker:
    """The presence state of one channel, with diff buffering per join (§6.3)."""

    def __init__(self) -> None:
        self.state: State = {}
        self.pending_diffs: list[dict[str, Any]] = []
        self.join_ref: str | None = None
        self.synced = False

    def pending(self, channel_join_ref: str | None) -> bool:
        """No state yet, or the channel rejoined since the last state."""
        return not self.synced or self.join_ref != channel_join_ref

    def apply_state(self, new_state: State, channel_join_ref: str | None) -> list[PresenceChange]:
        """Apply a ``presence_state``, then the diffs buffered before it, in order."""
        self.join_ref = channel_join_ref
        self.synced = True
        self.state, changes = sync_state(self.state, new_state)
        for diff in self.pending_diffs:
            self.state, more = sync_diff(self.state, diff)
            changes.extend(more)
        self.pending_diffs = []
        return changes

    def apply_diff(self, diff: dict[str, Any], channel_join_ref: str | None) -> list[PresenceChange] | None:
        """Apply a ``presence_diff`` now, or buffer it (returns ``None``) while pending."""
        if self.pending(channel_join_ref):
            self.pending_diffs.append(diff)
            return None
        self.state, changes = sync_diff(self.state, diff)
        return changes
