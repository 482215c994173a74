"""Typed payloads: dataclasses in, dataclasses out, at the API edge only.

Decoding a payload into a model costs tens of microseconds with
dataclasses-json, so it happens only where a model was asked for (a
``model=`` on a handler, :meth:`Reply.as_`), never on the frame hot path.

Models may be dataclasses-json classes (``@dataclass_json`` or
``DataClassJsonMixin``: their ``from_dict``/``to_dict`` are used) or plain
``@dataclass`` classes (converted with :func:`dataclasses.asdict` and
decoded with dataclasses-json's machinery, which checks field types).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, NamedTuple, TypeVar, cast

from maxsdk.errors import MaxsdkError

__all__ = ["ModelError", "decode", "decode_versioned", "to_payload", "upgrade", "upgrader"]

T = TypeVar("T")


class ModelError(MaxsdkError, ValueError):
    """A payload does not fit its model (missing field, wrong type).

    Attributes:
        model: the model class.
        reason: what did not fit.

    """

    def __init__(self, model: type, reason: str) -> None:
        super().__init__(f"payload does not fit {model.__name__}: {reason}")
        self.model = model
        self.reason = reason


def to_payload(value: Any) -> Any:
    """Convert a dataclass instance to a JSON-ready dict; return anything else unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        payload = to_dict(encode_json=True) if callable(to_dict) else dataclasses.asdict(value)
        version = getattr(type(value), "__schema_version__", None)
        if version is not None:
            payload.setdefault(getattr(type(value), "__version_field__", DEFAULT_VERSION_FIELD), version)
        return payload
    return value


def decode(model: type[T], payload: Any) -> T:
    """Decode ``payload`` into ``model``.

    Raises:
        ModelError: ``payload`` is not a dict, lacks a required field, or has
            a field of the wrong type.

    """
    if not dataclasses.is_dataclass(model):
        raise TypeError(f"{model!r} is not a dataclass")
    if not isinstance(payload, dict):
        raise ModelError(model, f"expected an object, got {type(payload).__name__}")
    plan = _plan(model)
    missing = [name for name in plan.required if name not in payload]
    if missing:
        raise ModelError(model, f"missing field(s) {', '.join(missing)}")
    _check_types(model, payload)
    if plan.direct:
        # Plain dataclass with JSON-native fields: construct it directly (dataclasses-json
        # costs tens of microseconds per decode; this is a dict comprehension).
        values = {name: payload[name] for name in plan.init if name in payload}
        for name in plan.floats:
            if name in values and isinstance(values[name], int):
                values[name] = float(values[name])
        return cast(T, model(**values))
    try:
        from_dict = getattr(model, "from_dict", None)
        if callable(from_dict):
            instance = from_dict(payload)
        else:
            from dataclasses_json.core import _decode_dataclass

            instance = _decode_dataclass(model, payload, False)  # type: ignore[no-untyped-call]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(model, str(exc) or type(exc).__name__) from exc
    return cast(T, instance)


class _Plan(NamedTuple):
    """What decoding a model needs, worked out once per model."""

    init: tuple[str, ...]
    required: tuple[str, ...]
    floats: tuple[str, ...]
    direct: bool
    scalars: tuple[tuple[str, tuple[type, ...], str], ...]


def _json_native(annotation: Any) -> bool:
    """Whether values of this annotation need no conversion from JSON (no nested dataclass, date...)."""
    if annotation in (int, float, str, bool, Any, dict, list, type(None)):
        return True
    origin = typing.get_origin(annotation)
    if origin in (dict, list, typing.Union, types.UnionType):
        return all(_json_native(arg) for arg in typing.get_args(annotation))
    return False


@functools.lru_cache(maxsize=256)
def _plan(model: type) -> _Plan:
    fields = [f for f in dataclasses.fields(model) if f.init]
    required = tuple(
        f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    try:
        hints = typing.get_type_hints(model)
    except Exception:  # noqa: BLE001 - unresolvable annotations: let dataclasses-json decide
        return _Plan(tuple(f.name for f in fields), required, (), False, ())
    direct = not callable(getattr(model, "from_dict", None)) and all(_json_native(hints.get(f.name)) for f in fields)
    floats = tuple(f.name for f in fields if hints.get(f.name) is float)
    scalars = tuple(
        (f.name, _SIMPLE[hints[f.name]], hints[f.name].__name__)
        for f in dataclasses.fields(model)
        if hints.get(f.name) in _SIMPLE
    )
    return _Plan(tuple(f.name for f in fields), required, floats, direct, scalars)


_SIMPLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _check_types(model: type, payload: dict[str, Any]) -> None:
    """Reject wrong scalar types in the raw payload (dataclasses-json would coerce ``5`` to ``"5"``)."""
    for name, expected, type_name in _plan(model).scalars:
        if name in payload:
            value = payload[name]
            if (value.__class__ is bool and bool not in expected) or not isinstance(value, expected):
                raise ModelError(model, f"field {name!r} should be {type_name}, got {type(value).__name__}")


# -- schema versions -----------------------------------------------------------------
#
# Convention: a model declares ``__schema_version__ = N`` (an int). Payloads
# carry their version in the field named by ``__version_field__`` (default
# ``"schema_version"``); a payload without it is version 1, the version every
# model had before it started versioning. Older payloads are upgraded one step
# at a time by functions registered with :func:`upgrader`; a payload newer
# than the model is reported, never guessed.

DEFAULT_VERSION_FIELD = "schema_version"
_UPGRADERS: dict[tuple[type, int], Any] = {}


def upgrader(model: type, from_version: int) -> Any:
    """Register ``fn(payload_dict) -> payload_dict`` upgrading ``model`` payloads from ``from_version``.

    Example::

        @upgrader(ChatMessage, from_version=1)
        def _v1_to_v2(payload):
            return {**payload, "author": payload.pop("user")}
    """

    def register(fn: Any) -> Any:
        _UPGRADERS[(model, from_version)] = fn
        return fn

    return register


def upgrade(model: type, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring ``payload`` to ``model``'s schema version.

    Raises:
        ModelError: the payload is newer than the model, or an upgrade step is missing.

    """
    target = getattr(model, "__schema_version__", None)
    if target is None:
        return payload
    field = getattr(model, "__version_field__", DEFAULT_VERSION_FIELD)
    version = payload.get(field, 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(model, f"{field!r} must be an int, got {version!r}")
    if version > target:
        raise ModelError(model, f"payload schema version {version} is newer than the model's {target}")
    while version < target:
        step = _UPGRADERS.get((model, version))
        if step is None:
            raise ModelError(model, f"no upgrader registered from schema version {version}")
        try:
            payload = dict(step(dict(payload)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(model, f"upgrade from schema version {version} failed: {exc!r}") from exc
        version += 1
        payload[field] = version
    return payload


def decode_versioned(model: type[T], payload: Any) -> T:
    """:func:`upgrade` then :func:`decode` (the version field is dropped if the model lacks it)."""
    if isinstance(payload, dict) and getattr(model, "__schema_version__", None) is not None:
        payload = upgrade(model, payload)
        field = getattr(model, "__version_field__", DEFAULT_VERSION_FIELD)
        if field not in {f.name for f in dataclasses.fields(model)}:  # type: ignore[arg-type]
            payload = {k: v for k, v in payload.items() if k != field}
    return decode(model, payload)
