"""Terminal output for the command line: colors only on a TTY, ``NO_COLOR`` respected."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, TextIO

__all__ = ["Printer", "to_json"]

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


class Printer:
    """Writes human-readable lines to stdout and diagnostics to stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if color is None:
            color = "NO_COLOR" not in os.environ and hasattr(self.out, "isatty") and self.out.isatty()
        self.color = color
        #: A live status line is drawn on stderr only when it is a terminal.
        self.live = hasattr(self.err, "isatty") and self.err.isatty()
        self._status = ""
        self._lock = threading.Lock()

    def style(self, text: str, *styles: str) -> str:
        """Wrap ``text`` in ANSI styles when colors are on."""
        if not self.color or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """A line on stdout (the live status line, if any, is redrawn below it)."""
        with self._lock:
            self._clear_status()
            print(text, file=self.out, flush=True)
            self._draw_status()

    def status(self, text: str) -> None:
        """Replace the live status line (terminals only; a no-op otherwise)."""
        if not self.live:
            return
        with self._lock:
            self._clear_status()
            self._status = text
            self._draw_status()

    def end_status(self) -> None:
        """Remove the live status line."""
        with self._lock:
            self._clear_status()
            self._status = ""

    def _clear_status(self) -> None:
        if self.live and self._status:
            self.err.write("\r\x1b[K")
            self.err.flush()

    def _draw_status(self) -> None:
        if self.live and self._status:
            self.err.write(self.style(self._status, "dim"))
            self.err.flush()

    def step(self, text: str) -> None:
        """A narrated step (stdout)."""
        self.line(self.style("==> ", "bold", "blue") + self.style(text, "bold"))

    def info(self, text: str) -> None:
        """An indented detail (stdout)."""
        self.line("    " + text)

    def good(self, text: str) -> None:
        """A success line (stdout)."""
        self.line("    " + self.style("ok ", "green") + text)

    def note(self, text: str) -> None:
        """A status line on stderr."""
        with self._lock:
            self._clear_status()
            print(self.style(text, "dim"), file=self.err, flush=True)
            self._draw_status()

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        print(self.style("warning: ", "yellow") + text, file=self.err, flush=True)

    def fail(self, text: str) -> None:
        """A one-line error on stderr."""
        print(self.style("error: ", "red", "bold") + text, file=self.err, flush=True)


def to_json(value: Any) -> str:
    """Compact JSON for terminal output (``bytes`` shown as a hex string)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"binary": bytes(value).hex()}
    return repr(value)
