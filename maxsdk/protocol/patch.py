"""Applying JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396), and naming what changed.

Pure functions on JSON values (``dict``/``list``/``str``/numbers/``bool``/``None``);
the input document is never modified. RFC 6902 is applied by ``jsonpatch``
(pure Python, no I/O: the one third-party import of the protocol core, kept
here so that nothing else depends on it); RFC 7396 is the few lines of §2 of
the RFC.

Changed paths are JSON Pointers (RFC 6901), e.g. ``"/players/0/score"``;
``""`` is the whole document.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import jsonpatch
import jsonpointer

from maxsdk.errors import PatchError

__all__ = [
    "PatchKind",
    "apply_patch",
    "changed_paths",
    "check_patch",
    "escape_token",
    "patch_paths",
]

PatchKind = Literal["merge", "json"]
"""``"merge"``: RFC 7396 JSON Merge Patch; ``"json"``: RFC 6902 JSON Patch (a list of operations)."""

_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def apply_patch(document: Any, kind: str, patch: Any) -> Any:
    """Return ``document`` with ``patch`` applied (``document`` itself is left untouched).

    Raises:
        PatchError: ``kind`` is unknown, the patch is malformed, or it does not
            apply (a missing path, a failed ``test``).

    """
    if kind == "merge":
        return _merge(copy.deepcopy(document), patch)
    if kind == "json":
        check_patch(kind, patch)
        try:
            return jsonpatch.apply_patch(document, patch, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            raise PatchError(f"JSON Patch does not apply: {exc}", op="json") from exc
    raise PatchError(f"unknown patch kind {kind!r} (expected 'merge' or 'json')", op=str(kind))


def check_patch(kind: str, patch: Any) -> None:
    """Raise :class:`PatchError` unless ``patch`` is well-formed for ``kind`` (without applying it)."""
    if kind == "merge":
        return  # every JSON value is a merge patch (RFC 7396 §2)
    if kind != "json":
        raise PatchError(f"unknown patch kind {kind!r} (expected 'merge' or 'json')", op=str(kind))
    if not isinstance(patch, list):
        raise PatchError("a JSON Patch is a list of operations", op="json")
    for index, operation in enumerate(patch):
        if not isinstance(operation, dict) or operation.get("op") not in _OPS:
            raise PatchError(f"operation {index} has no valid 'op'", op="json")
        fields = ("path", "from") if operation["op"] in ("move", "copy") else ("path",)
        for name in fields:
            if not isinstance(operation.get(name), str):
                raise PatchError(f"operation {index} ({operation['op']}) needs a string {name!r}", op="json")
        if operation["op"] in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"operation {index} ({operation['op']}) needs a 'value'", op="json")


def _merge(target: Any, patch: Any) -> Any:
    # RFC 7396 §2, MergePatch(Target, Patch): a non-object patch replaces the
    # target; null members remove; object members merge recursively.
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = _merge(target.get(name), value)
    return target


def escape_token(token: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901 §3: ``~`` → ``~0``, ``/`` → ``~1``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def patch_paths(kind: str, patch: Any) -> tuple[str, ...]:
    """The JSON Pointers a patch writes to, in patch order, without duplicates.

    For a merge patch: every member set or removed (nested objects are walked);
    for a JSON Patch: the ``path`` of each operation (and ``from`` of a
    ``move``); ``test`` operations change nothing. An insertion into or
    removal from an array shifts the elements after it, so it is reported
    at the array's own path.
    """
    paths: list[str] = []
    if kind == "merge":
        _merge_paths(patch, "", paths)
    elif kind == "json" and isinstance(patch, list):
        for operation in patch:
            if not isinstance(operation, dict) or operation.get("op") == "test":
                continue
            shifting = operation.get("op") in ("add", "remove", "move", "copy")
            if operation.get("op") == "move" and isinstance(operation.get("from"), str):
                paths.append(_container(operation["from"]))
            if isinstance(operation.get("path"), str):
                paths.append(_container(operation["path"]) if shifting else operation["path"])
    return tuple(dict.fromkeys(paths))


def _container(path: str) -> str:
    """``path``, or its parent when its last token may be an array index (``/list/3``, ``/list/-``)."""
    parent, _, last = path.rpartition("/")
    return parent if last == "-" or last.isdigit() else path


def _merge_paths(patch: Any, prefix: str, out: list[str]) -> None:
    if not isinstance(patch, dict) or not patch:
        out.append(prefix)
        return
    for name, value in patch.items():
        path = f"{prefix}/{escape_token(name)}"
        if isinstance(value, dict) and value:
            _merge_paths(value, path, out)
        else:
            out.append(path)


def changed_paths(old: Any, new: Any) -> tuple[str, ...]:
    """The deepest JSON Pointers at which ``old`` and ``new`` differ (``()`` if equal).

    Objects are compared member by member and arrays index by index; a value
    whose type changed is reported at its own path.
    """
    out: list[str] = []
    _diff(old, new, "", out)
    return tuple(out)


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in list(old) + [name for name in new if name not in old]:
            child = f"{path}/{escape_token(name)}"
            if name not in old or name not in new:
                out.append(child)
            else:
                _diff(old[name], new[name], child, out)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            child = f"{path}/{index}"
            if index >= len(old) or index >= len(new):
                out.append(child)
            else:
                _diff(old[index], new[index], child, out)
    elif not _same(old, new):
        out.append(path)


def _same(old: Any, new: Any) -> bool:
    # JSON distinguishes true from 1 and 1 from 1.0 only by type; Python's == does not.
    return type(old) is type(new) and old == new


def paths_overlap(first: Sequence[str], second: Sequence[str]) -> bool:
    """Whether a path of ``first`` equals, contains or lies inside a path of ``second``."""
    return any(_within(a, b) or _within(b, a) for a in first for b in second)


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer + "/") or outer == ""
