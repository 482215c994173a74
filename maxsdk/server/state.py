"""Replicated state topics: a server-owned JSON document with a version (``docs/state.md``).

Each ``state:*`` topic holds one :class:`StateDocument`. A client asks for a
snapshot (``state_snapshot`` → ``{"version", "document", "epoch"}``), receives
every change as a ``state_delta`` broadcast (``{"version", "format", "patch",
"epoch", "id"}``, versions consecutive), and sends optimistic updates
(``state_update`` with ``{"id", "base", "format", "patch"}``), accepted only
when ``base`` is the current version (ok ``{"version"}``) and refused
otherwise (error ``{"reason": "conflict", "version", "epoch"}``).

Patches are applied with ``jsonpatch`` (RFC 6902) and the merge of RFC 7396
§2 written here: the server does not share the client's patch code.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from .channel import Channel
from .channel_socket import ChannelSocket
from .result import Reply, error, ok

__all__ = ["StateChannel", "StateDocument", "StateStore"]

SNAPSHOT_EVENT = "state_snapshot"
UPDATE_EVENT = "state_update"
DELTA_EVENT = "state_delta"
FORMATS = ("merge", "json")


class InvalidPatchError(ValueError):
    """A patch is malformed or does not apply (the ``"invalid patch"`` reply)."""


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def apply(document: Any, fmt: str, patch: Any) -> Any:
    """Return ``document`` patched (a new value); raise :class:`InvalidPatchError` if it cannot be."""
    if fmt == "merge":
        return _merge(document, patch)
    if fmt != "json":
        raise InvalidPatchError(f"unknown format {fmt!r}")
    if not isinstance(patch, list):
        raise InvalidPatchError("a JSON Patch is a list of operations")
    try:
        return jsonpatch.JsonPatch(patch).apply(document, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError, AttributeError) as exc:
        raise InvalidPatchError(str(exc) or type(exc).__name__) from exc


class StateDocument:
    """One topic's document: value, version (number of changes since the epoch began) and epoch.

    Thread-safe. A change is applied and broadcast under one lock, so
    deltas leave in version order.
    """

    def __init__(self, topic: str, broadcast: Callable[[str, str, Any], int], document: Any = None) -> None:
        self.topic = topic
        self._broadcast = broadcast
        self._lock = threading.Lock()
        self._document: Any = {} if document is None else copy.deepcopy(document)
        self._version = 0
        self._epoch = secrets.token_hex(4)
        self.refused = 0
        """How many updates were refused with a conflict."""

    @property
    def version(self) -> int:
        """The current version."""
        with self._lock:
            return self._version

    @property
    def epoch(self) -> str:
        """The current epoch (a new one after :meth:`reset`)."""
        with self._lock:
            return self._epoch

    @property
    def document(self) -> Any:
        """A copy of the current document."""
        with self._lock:
            return copy.deepcopy(self._document)

    def snapshot(self) -> dict[str, Any]:
        """The snapshot reply: ``{"version", "document", "epoch"}``."""
        with self._lock:
            return {"version": self._version, "document": copy.deepcopy(self._document), "epoch": self._epoch}

    def change(self, patch: Any, fmt: str = "merge", *, update_id: str | None = None) -> dict[str, Any]:
        """Apply a server-side change and broadcast its delta; return the delta.

        Raises:
            InvalidPatchError: the patch does not apply (nothing changes).

        """
        with self._lock:
            return self._commit(fmt, patch, update_id)

    def submit(self, payload: Any) -> Reply:
        """Handle a client's ``state_update``: accept (and broadcast) or refuse."""
        if not isinstance(payload, dict) or type(payload.get("base")) is not int or "patch" not in payload:
            return error({"reason": "invalid update", "detail": "expected {id, base, format, patch}"})
        fmt = payload.get("format", "merge")
        update_id = payload.get("id")
        if fmt not in FORMATS or (update_id is not None and not isinstance(update_id, str)):
            return error({"reason": "invalid update", "detail": "format must be merge or json, id a string"})
        with self._lock:
            if payload["base"] != self._version:
                self.refused += 1
                return error({"reason": "conflict", "version": self._version, "epoch": self._epoch})
            try:
                delta = self._commit(fmt, payload["patch"], update_id)
            except InvalidPatchError as exc:
                return error({"reason": "invalid patch", "detail": str(exc)[:200]})
        return ok({"version": delta["version"]})

    def reset(self, document: Any = None) -> None:
        """Replace the document and start a new epoch at version 0 (as a server that lost it).

        Nothing is broadcast: clients learn of it from the next delta's epoch or their next snapshot.
        """
        with self._lock:
            self._document = {} if document is None else copy.deepcopy(document)
            self._version = 0
            self._epoch = secrets.token_hex(4)

    def _commit(self, fmt: str, patch: Any, update_id: str | None) -> dict[str, Any]:
        self._document = apply(self._document, fmt, patch)
        self._version += 1
        delta = {"version": self._version, "format": fmt, "patch": patch, "epoch": self._epoch, "id": update_id}
        self._broadcast(self.topic, DELTA_EVENT, delta)
        return delta


class StateStore:
    """Every state topic's document, created empty (``{}``) on first use."""

    def __init__(self, broadcast: Callable[[str, str, Any], int]) -> None:
        self._broadcast = broadcast
        self._lock = threading.Lock()
        self._documents: dict[str, StateDocument] = {}

    def get(self, topic: str) -> StateDocument:
        """The document of ``topic`` (created if new)."""
        with self._lock:
            document = self._documents.get(topic)
            if document is None:
                document = self._documents[topic] = StateDocument(topic, self._broadcast)
            return document

    def topics(self) -> list[str]:
        """The topics that have a document."""
        with self._lock:
            return sorted(self._documents)


class StateChannel(Channel):
    """``state:*``: serves the topic's document (``docs/state.md``)."""

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | None:
        """Join ok with the current ``{"version", "epoch"}`` (the client then asks for a snapshot)."""
        document = socket.endpoint.states.get(topic)
        return ok({"version": document.version, "epoch": document.epoch})

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        """``state_snapshot`` and ``state_update``; anything else is an unknown event."""
        document = socket.endpoint.states.get(socket.topic)
        if event == SNAPSHOT_EVENT:
            return ok(document.snapshot())
        if event == UPDATE_EVENT:
            return document.submit(payload)
        return error({"reason": "unknown event", "event": event})
