"""Connect params from the query string, decoded the way Plug does (reference §1.3).

phoenix.js encodes nested params as bracket keys (``user[id]=1``,
``a[0]=x``); Plug turns them back into nested maps. ``a[]=x&a[]=y`` becomes a
list. Every leaf value is a string.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode_query(query: str) -> dict[str, Any]:
    """Decode ``a=1&b[c]=2&d[]=x`` into ``{"a": "1", "b": {"c": "2"}, "d": ["x"]}``.

    Later values win over earlier ones, as in Plug. Keys that do not follow
    the bracket grammar are kept verbatim.
    """
    params: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if match is None:
            params[raw_key] = value
            continue
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(params, path, value)
    return params


def _assign(target: dict[str, Any], path: list[str], value: str) -> None:
    node = target
    for index, key in enumerate(path[:-1]):
        following = path[index + 1]
        child = node.get(key)
        if following == "":
            if not isinstance(child, list):
                child = node[key] = []
            child.append(value)
            return
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
