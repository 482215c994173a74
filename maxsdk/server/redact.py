"""Keep secrets out of the server's logs.

Frames are logged at DEBUG only, truncated, and with the values of keys that
look secret (``token``, ``password``, ``secret``...) blanked. The ``websockets``
library's own DEBUG log (request line, headers) gets the same treatment for
``token=`` query values and ``authToken`` subprotocols.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"

_SECRET_KEY = r"(?:token|password|secret|passwd)"

_PATTERNS = (
    # JSON: "token":"...", "auth_token":"...", "password":"..."
    (re.compile(r'("[^"]*' + _SECRET_KEY + r'[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.I), r'\1"' + REDACTED + '"'),
    # Query strings: token=..., auth_token=...
    (re.compile(r"((?:^|[?&\s])[^=&\s]*(?:token|password|secret)[^=&\s]*=)[^&\s]*", re.I), r"\1" + REDACTED),
    # Sec-WebSocket-Protocol: base64url.bearer.phx.<token>
    (re.compile(r"(base64url\.bearer\.phx\.)[A-Za-z0-9+/=_-]*"), r"\1" + REDACTED),
)


def redact(text: str) -> str:
    """``text`` with secret-looking values replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message of ``record`` (always keeps the record)."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
