"""Hiding secrets in text: URLs, echoed request lines, our dependencies' log records.

One rule for every query string, wherever it appears (a URL we log, a server's
error page quoting our request line, urllib3's request log): a value is shown
only for ``vsn``; a key is shown only when it looks like a parameter name
(``token``, ``user_id``, ``filter[room]``); a bare key (``?<token>``, or
``?<token>=`` with an empty value) is hidden whole, since it is the secret itself. User info in URLs
(``user:password@``) and ``Bearer``/``Basic`` credentials become ``***``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote_plus

__all__ = ["DEPENDENCY_LOGGERS", "VISIBLE_KEYS", "RedactingFilter", "install_log_filter", "redact_query", "redact_text"]

VISIBLE_KEYS = frozenset({"vsn"})
"""Query keys whose values are never secrets."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,31}")
_QUERY_IN_TEXT = re.compile(r"\?([^\s\"'<>#]+)")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"'<>]+@")
_SCHEME_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9\-._~+/=]{4,}")


def _shown_key(name: str) -> bool:
    """A parameter name, not a secret used as a key (long digit-heavy strings are hidden)."""
    return _NAME.fullmatch(name) is not None and sum(c.isdigit() for c in name) <= 4


def redact_query(query: str) -> str:
    """The query string (without ``?``) with every secret replaced by ``***``.

    >>> redact_query("token=abc&vsn=2.0.0&s3cr3tt0k3n1234")
    'token=***&vsn=2.0.0&***'
    """
    shown = []
    for part in query.split("&"):
        if not part:
            continue
        key, equals, value = part.partition("=")
        name = unquote_plus(key)
        if not equals or not value or not _shown_key(name):  # ``key=``: a bare key re-encoded
            shown.append("***")
        else:
            shown.append(f"{quote(name, safe='[]')}={value if name in VISIBLE_KEYS else '***'}")
    return "&".join(shown)


def redact_text(text: str) -> str:
    """``text`` with query strings, URL user info and scheme credentials redacted (see the module)."""
    text = _USERINFO.sub(r"\1***@", text)
    text = _QUERY_IN_TEXT.sub(lambda m: "?" + redact_query(m.group(1)), text)
    return _SCHEME_CREDENTIALS.sub(r"\1\2***", text)


class RedactingFilter(logging.Filter):
    """Redacts the arguments (and message) of a dependency's log records, e.g. urllib3's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True


def install_log_filter(name: str) -> None:
    """Add a :class:`RedactingFilter` to the logger ``name`` (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


DEPENDENCY_LOGGERS = (
    "urllib3.connectionpool",  # '"GET /path?query HTTP/1.1" 200' for every request
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "requests",
    "websocket",
)
"""Loggers of our dependencies that may print a URL we use; each gets a :class:`RedactingFilter`."""

for _name in DEPENDENCY_LOGGERS:
    install_log_filter(_name)
