"""Serializer negotiation from the ``vsn`` query parameter (reference §1.2).

Phoenix parses ``vsn`` as a semantic version (default ``"1.0.0"`` when absent)
and picks the first serializer whose requirement matches: V1 for ``~> 1.0.0``,
V2 for ``~> 2.0.0``. Anything else refuses the connection with HTTP 403.
"""

from __future__ import annotations

import re

from .serializer import V1, V2, Serializer

DEFAULT_VSN = "1.0.0"
"""What Phoenix assumes when the client sends no ``vsn``."""

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)

# (serializer, "~> major.minor.0") in Phoenix's default order.
_SERIALIZERS: tuple[tuple[Serializer, tuple[int, int]], ...] = ((V1, (1, 0)), (V2, (2, 0)))


def parse_version(text: str) -> tuple[int, int, int, bool] | None:
    """Parse ``text`` as Elixir's ``Version.parse/1`` would.

    Returns:
        ``(major, minor, patch, is_prerelease)``, or ``None`` if unparseable.

    """
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch), pre is not None


def matches_tilde(version: tuple[int, int, int, bool], major: int, minor: int) -> bool:
    """Whether ``version`` satisfies ``~> major.minor.0`` (>= x.y.0 and < x.(y+1).0-0)."""
    v_major, v_minor, v_patch, pre = version
    if (v_major, v_minor) != (major, minor):
        return False
    # A pre-release of x.y.0 sorts below x.y.0 itself.
    return not (v_patch == 0 and pre)


def select_serializer(vsn: str | None) -> Serializer | None:
    """Return the serializer for a ``vsn`` parameter, or ``None`` (→ HTTP 403)."""
    version = parse_version(DEFAULT_VSN if vsn is None else vsn)
    if version is None:
        return None
    for serializer, (major, minor) in _SERIALIZERS:
        if matches_tilde(version, major, minor):
            return serializer
    return None
