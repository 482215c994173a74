"""Socket URLs: building them from an endpoint and params, and redacting them.

Reference §1.1-§1.3: the WebSocket URL is the socket mount plus ``/websocket``,
then the user's params (nested values as bracket keys, as Plug parses them),
then ``vsn`` last. Params travel in the query string, so URLs routinely carry
tokens: :func:`redact_url` is applied to every URL that reaches a log line, a
repr or an exception message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from maxsdk._redaction import VISIBLE_KEYS, redact_query
from maxsdk.errors import ConfigurationError

__all__ = ["build_socket_url", "encode_params", "redact_url", "websocket_endpoint"]

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
#: Query keys whose values are shown in redacted URLs; everything else is hidden.
_VISIBLE_KEYS = VISIBLE_KEYS


def websocket_endpoint(endpoint: str) -> str:
    """Normalise an endpoint to an absolute ``ws(s)://.../websocket`` URL.

    ``http``/``https`` become ``ws``/``wss``; ``/websocket`` is appended unless
    the path already ends with it (``ws://host/socket`` and
    ``ws://host/socket/websocket`` are the same endpoint).

    Raises:
        ConfigurationError: not an absolute ws/wss/http/https URL.

    """
    if not isinstance(endpoint, str):
        raise ConfigurationError(f"url must be a string, not {type(endpoint).__name__}")
    parts = urlsplit(endpoint)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigurationError(
            f"url must be an absolute ws://, wss://, http:// or https:// URL, got {redact_url(endpoint)!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/websocket"):
        path += "/websocket"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten params to query pairs the way phoenix.js does (reference §1.3).

    ``{"user": {"id": 1}}`` → ``user[id]=1``; ``{"a": ["x", "y"]}`` →
    ``a[0]=x&a[1]=y``. ``None`` becomes an empty string and booleans
    ``true``/``false``, as JavaScript would print them.
    """
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif value is None:
            pairs.append((prefix, ""))
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    if not isinstance(params, Mapping):
        raise ConfigurationError(f"params must be a mapping, not {type(params).__name__}")
    walk("", params)
    return pairs


def build_socket_url(endpoint: str, params: Mapping[str, Any] | None, vsn: str | None) -> str:
    """The full connection URL: endpoint, existing query, params, then ``vsn``."""
    base = websocket_endpoint(endpoint)
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(encode_params(params or {}))
    query = [(key, value) for key, value in query if key != "vsn"]
    if vsn is not None:
        query.append(("vsn", vsn))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), ""))


def redact_url(url: str) -> str:
    """Hide credentials in a URL: userinfo, every query value except ``vsn``, bare query keys.

    >>> redact_url("wss://u:pw@host/socket/websocket?token=abc&vsn=2.0.0")
    'wss://***@host/socket/websocket?token=***&vsn=2.0.0'
    >>> redact_url("wss://host/socket/websocket?s3cr3t-t0k3n&vsn=2.0.0")
    'wss://host/socket/websocket?***&vsn=2.0.0'
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, netloc, parts.path, redact_query(parts.query), ""))
