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
from typing import Any, TypeVar, cast

from maxsdk.errors import MaxsdkError

__all__ = ["ModelError", "decode", "to_payload"]

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
        if callable(to_dict):
            return to_dict(encode_json=True)
        return dataclasses.asdict(value)
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
    missing = [
        f.name
        for f in dataclasses.fields(model)
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in payload
    ]
    if missing:
        raise ModelError(model, f"missing field(s) {', '.join(missing)}")
    try:
        from_dict = getattr(model, "from_dict", None)
        if callable(from_dict):
            instance = from_dict(payload)
        else:
            from dataclasses_json.core import _decode_dataclass

            instance = _decode_dataclass(model, payload, False)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(model, str(exc) or type(exc).__name__) from exc
    _check_types(model, instance)
    return cast(T, instance)


_SIMPLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _check_types(model: type, instance: Any) -> None:
    """dataclasses-json does not reject wrong scalar types; do it for plain annotations."""
    import typing

    try:
        hints = typing.get_type_hints(model)
    except Exception:  # noqa: BLE001 - unresolvable annotations: skip the check
        return
    for f in dataclasses.fields(model):
        expected = _SIMPLE.get(hints.get(f.name))  # type: ignore[call-overload]
        if expected is None:
            continue
        value = getattr(instance, f.name)
        if isinstance(value, bool) and bool not in expected:
            raise ModelError(model, f"field {f.name!r} should be {hints[f.name].__name__}, got bool")
        if not isinstance(value, expected):
            raise ModelError(model, f"field {f.name!r} should be {hints[f.name].__name__}, got {type(value).__name__}")
