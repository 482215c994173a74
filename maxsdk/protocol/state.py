"""The replicated-state core: a local copy of a server-owned, versioned JSON document.

Sans-I/O: the runtime feeds it what arrived (a snapshot reply, a delta, the
reply to an update) and acts on what it returns (fetch a snapshot, report a
change or a rollback). Wire contract: ``docs/state.md``.

Rules (every transition is one method below):

* The **confirmed** document is the server's at ``version``; a snapshot sets
  it, a delta of version ``version + 1`` (same ``epoch``) advances it. A delta
  at or below ``version`` is a duplicate and is dropped; one above
  ``version + 1``, of another epoch, or that does not apply is a **gap**: the
  core asks for a fresh snapshot and buffers deltas until it arrives (then
  applies those above the snapshot's version, in order).
* **Optimistic updates** are applied to the shown document at once and sent
  with ``base`` = the version they were made on (confirmed version + updates
  still pending), so that a client's own consecutive updates chain. The
  shown document is always the confirmed one with the pending updates
  replayed on top, in order (a pending update that no longer applies is
  skipped: the server will refuse it).
* An update leaves the pending queue when its own delta arrives (matched by
  ``id``, or by the version its accepted reply named), when the server
  refuses it (rolled back, reported), or when its outcome is lost (rolled
  back, reported with reason ``"timeout"``: the server's document, which
  follows, says whether it was applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from maxsdk.errors import LocalProtocolError, PatchError, RemoteProtocolError
from maxsdk.protocol.patch import apply_patch, changed_paths, check_patch, patch_paths

__all__ = [
    "Accepted",
    "Changed",
    "Delta",
    "FetchSnapshot",
    "LocalUpdate",
    "RolledBack",
    "Snapshot",
    "StateEffect",
    "StateReplica",
    "parse_delta",
    "parse_snapshot",
]

ChangeCause = Literal["snapshot", "delta", "local", "rollback"]


@dataclass(frozen=True)
class Snapshot:
    """A whole document at a version (the reply to a snapshot request)."""

    version: int
    document: Any
    epoch: str | None = None


@dataclass(frozen=True)
class Delta:
    """One server change: ``version`` = the previous version + 1."""

    version: int
    format: str
    patch: Any
    epoch: str | None = None
    update_id: str | None = None


@dataclass(frozen=True)
class LocalUpdate:
    """An optimistic update made here, sent as ``{"id", "base", "format", "patch"}``."""

    id: str
    format: str
    patch: Any
    base: int

    def payload(self) -> dict[str, Any]:
        """The update push payload (``docs/state.md``)."""
        return {"id": self.id, "base": self.base, "format": self.format, "patch": self.patch}


@dataclass(frozen=True)
class FetchSnapshot:
    """Effect: send a snapshot request and feed its reply back with ``request``."""

    request: int
    reason: str


@dataclass(frozen=True)
class Changed:
    """Effect: the shown document changed at ``paths`` (JSON Pointers)."""

    paths: tuple[str, ...]
    version: int
    cause: ChangeCause


@dataclass(frozen=True)
class Accepted:
    """Effect: the server accepted a local update; it became ``version``."""

    update: LocalUpdate
    version: int


@dataclass(frozen=True)
class RolledBack:
    """Effect: a local update was undone (``reason`` from the server, or ``"timeout"``)."""

    update: LocalUpdate
    reason: str
    server_version: int | None
    response: Any = None


StateEffect = Union[FetchSnapshot, Changed, Accepted, RolledBack]


@dataclass
class _Pending:
    update: LocalUpdate
    accepted_version: int | None = None
    told: bool = False


def _version(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise RemoteProtocolError(f"{what}: 'version' must be a non-negative integer, got {value!r}")
    return value


def _epoch(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise RemoteProtocolError(f"{what}: 'epoch' must be a string or null, got {value!r}")
    return value


def parse_snapshot(payload: Any) -> Snapshot:
    """Read a snapshot reply ``{"version", "document", "epoch"?}``.

    Raises:
        RemoteProtocolError: a field is missing or of the wrong type.

    """
    if not isinstance(payload, dict) or "document" not in payload:
        raise RemoteProtocolError(f"a state snapshot is an object with 'version' and 'document', got {payload!r}")
    return Snapshot(
        _version(payload.get("version"), "snapshot"), payload["document"], _epoch(payload.get("epoch"), "snapshot")
    )


def parse_delta(payload: Any) -> Delta:
    """Read a delta ``{"version", "format", "patch", "epoch"?, "id"?}``.

    Raises:
        RemoteProtocolError: a field is missing or of the wrong type, or the patch is malformed.

    """
    if not isinstance(payload, dict) or "patch" not in payload:
        raise RemoteProtocolError(f"a state delta is an object with 'version', 'format' and 'patch', got {payload!r}")
    fmt = payload.get("format", "merge")
    try:
        check_patch(fmt, payload["patch"])
    except PatchError as exc:
        raise RemoteProtocolError(f"delta: {exc}") from exc
    update_id = payload.get("id")
    return Delta(
        _version(payload.get("version"), "delta"),
        fmt,
        payload["patch"],
        _epoch(payload.get("epoch"), "delta"),
        update_id if isinstance(update_id, str) else None,
    )


@dataclass
class StateReplica:
    """The local copy of one document: confirmed state, pending updates, gap detection.

    Args:
        id_prefix: makes update ids unique across clients (the runtime passes a random one).
        max_buffer: deltas kept while a snapshot is awaited; past it the oldest are
            dropped (the snapshot, or a second one, covers them).

    """

    id_prefix: str = "u"
    max_buffer: int = 10_000
    _confirmed: Any = None
    _version: int | None = None
    _epoch: str | None = None
    _shown: Any = None
    _pending: list[_Pending] = field(default_factory=list)
    _buffer: list[Delta] = field(default_factory=list)
    _fetching: int | None = None
    _requests: int = 0
    _updates: int = 0
    _stale: bool = False
    _fetch_reason: str = "join"
    #: How many snapshots were applied and why they were fetched (for stats and tests).
    resyncs: dict[str, int] = field(default_factory=dict)

    # -- reading -----------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether a snapshot has been applied (the document is known)."""
        return self._version is not None

    @property
    def version(self) -> int | None:
        """The confirmed version (``None`` before the first snapshot)."""
        return self._version

    @property
    def epoch(self) -> str | None:
        """The epoch of the confirmed document (the server's incarnation of it)."""
        return self._epoch

    @property
    def document(self) -> Any:
        """The shown document: confirmed plus pending updates. Do not mutate it."""
        return self._shown

    @property
    def confirmed(self) -> Any:
        """The server's document at :attr:`version`. Do not mutate it."""
        return self._confirmed

    @property
    def pending(self) -> tuple[LocalUpdate, ...]:
        """Local updates not yet confirmed, oldest first."""
        return tuple(entry.update for entry in self._pending)

    @property
    def fetching(self) -> bool:
        """Whether a snapshot request is in flight."""
        return self._fetching is not None

    # -- inputs ------------------------------------------------------------------

    def resync(self, reason: str = "join") -> list[StateEffect]:
        """Ask for a fresh snapshot (on every join and rejoin, or on demand)."""
        self._buffer.clear()
        return [self._fetch(reason)]

    def snapshot_received(self, request: int, snapshot: Snapshot) -> list[StateEffect]:
        """Apply the reply to snapshot request ``request`` (a stale request is ignored)."""
        if request != self._fetching:
            return []
        reason = self._fetch_reason
        self._fetching = None
        self.resyncs[reason] = self.resyncs.get(reason, 0) + 1
        old = self._shown
        first = self._version is None
        self._confirmed, self._version, self._epoch = snapshot.document, snapshot.version, snapshot.epoch
        effects: list[StateEffect] = []
        buffered, self._buffer = self._buffer, []
        for delta in buffered:
            if self._fetching is None:
                effects.extend(self._advance(delta))
            else:
                self._buffer.append(delta)
        self._settle_accepted()
        self._shown = self._replay()
        paths = ("",) if first else changed_paths(old, self._shown)
        if paths:
            effects.append(Changed(paths, self._version, "snapshot"))
        return effects

    def snapshot_failed(self, request: int) -> list[StateEffect]:
        """The snapshot request failed (error reply, timeout): the next delta or join asks again."""
        if request == self._fetching:
            self._fetching = None
            self._buffer.clear()
            self._stale = True
        return []

    def delta_received(self, delta: Delta) -> list[StateEffect]:
        """Apply a server delta, drop it as a duplicate, or detect a gap."""
        if self._fetching is not None:
            self._buffer.append(delta)
            if len(self._buffer) > self.max_buffer:
                del self._buffer[0]
            return []
        if self._version is None or self._stale:
            return [self._fetch("stale")]
        old, before = self._shown, self._version
        had_pending = bool(self._pending)
        effects = self._advance(delta)
        if self._fetching is not None or self._version == before:
            return effects
        self._shown = self._replay()
        if had_pending or self._pending:
            paths = changed_paths(old, self._shown)
        else:
            paths = patch_paths(delta.format, delta.patch)
        if paths:
            effects.append(Changed(paths, self._version or 0, "delta"))
        return effects

    def update(self, fmt: str, patch: Any) -> tuple[LocalUpdate, list[StateEffect]]:
        """Make an optimistic update: apply it to the shown document now.

        Returns:
            The update (send ``update.payload()``) and the effects to report.

        Raises:
            PatchError: the patch is malformed or does not apply to the shown document.
            LocalProtocolError: no snapshot yet (nothing to update).

        """
        if self._version is None:
            raise LocalProtocolError("the state is not synced yet: no snapshot has been received")
        shown = apply_patch(self._shown, fmt, patch)
        self._updates += 1
        update = LocalUpdate(f"{self.id_prefix}{self._updates}", fmt, patch, self._version + len(self._pending))
        self._pending.append(_Pending(update))
        old, self._shown = self._shown, shown
        paths = changed_paths(old, shown)
        return update, ([Changed(paths, self._version, "local")] if paths else [])

    def update_accepted(self, update_id: str, version: Any) -> list[StateEffect]:
        """The server replied ok to an update; it will become (or became) ``version``."""
        entry = self._find(update_id)
        if entry is None:
            return []
        entry.accepted_version = version if type(version) is int else None
        effects: list[StateEffect] = []
        if not entry.told:
            entry.told = True
            effects.append(Accepted(entry.update, entry.accepted_version or 0))
        self._settle_accepted()
        return effects

    def update_refused(
        self, update_id: str, reason: str, server_version: int | None = None, response: Any = None
    ) -> list[StateEffect]:
        """The server refused an update (or its outcome was lost): roll it back."""
        entry = self._find(update_id)
        if entry is None:
            return []
        self._pending.remove(entry)
        old = self._shown
        self._shown = self._replay()
        effects: list[StateEffect] = [RolledBack(entry.update, reason, server_version, response)]
        paths = changed_paths(old, self._shown)
        if paths:
            effects.append(Changed(paths, self._version or 0, "rollback"))
        return effects

    # -- internals ---------------------------------------------------------------

    def _fetch(self, reason: str) -> FetchSnapshot:
        self._requests += 1
        self._fetching = self._requests
        self._fetch_reason = reason
        self._stale = False
        return FetchSnapshot(self._requests, reason)

    def _advance(self, delta: Delta) -> list[StateEffect]:
        """Apply one delta to the confirmed document (no view recompute)."""
        version = self._version or 0
        if delta.epoch != self._epoch:
            return [self._fetch("epoch")]
        if delta.version <= version:
            return []
        if delta.version != version + 1:
            return [self._fetch("gap")]
        try:
            self._confirmed = apply_patch(self._confirmed, delta.format, delta.patch)
        except PatchError:
            return [self._fetch("mismatch")]
        self._version = delta.version
        effects: list[StateEffect] = []
        for entry in self._pending:
            if entry.update.id == delta.update_id or entry.accepted_version == delta.version:
                self._pending.remove(entry)
                if not entry.told:
                    effects.append(Accepted(entry.update, delta.version))
                break
        return effects

    def _settle_accepted(self) -> None:
        """Drop accepted updates the confirmed document already contains (a snapshot covered them)."""
        version = self._version
        if version is None:
            return
        covered = [e for e in self._pending if e.accepted_version is not None and e.accepted_version <= version]
        for entry in covered:
            self._pending.remove(entry)
        if covered:
            self._shown = self._replay()

    def _replay(self) -> Any:
        document = self._confirmed
        for entry in self._pending:
            try:
                document = apply_patch(document, entry.update.format, entry.update.patch)
            except PatchError:
                continue  # it no longer applies: the server will refuse it
        return document

    def _find(self, update_id: str) -> _Pending | None:
        for entry in self._pending:
            if entry.update.id == update_id:
                return entry
        return None
