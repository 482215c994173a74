"""Parse the golden transcripts (tests/golden/transcript_*.txt) into replayable steps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

_LINE = re.compile(r"^\[\s*[\d.]+s\]\s+(.*)$")
_CLOSE = re.compile(r"code=(\d+) reason='([^']*)'")
_REJECTED = re.compile(r"rejected: HTTP (\d+)")

# Values that differ run to run (README: phx_ref, online_at, timestamps).
_VARYING = (
    (re.compile(r'"phx_ref":"[^"]*"'), '"phx_ref":"*"'),
    (re.compile(r'"phx_ref_prev":"[^"]*"'), '"phx_ref_prev":"*"'),
    (re.compile(r'"online_at":"\d+"'), '"online_at":"*"'),
)


def normalize(text: str) -> str:
    """Blank out the run-varying values of a text frame."""
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


@dataclass
class Step:
    """One transcript line: ``connect``, ``send``, ``expect``, ``close`` or ``drop``."""

    kind: str
    query: str = ""
    status: int = 101
    text: str | None = None
    data: bytes | None = None
    code: int | None = None
    reason: str = ""


@dataclass
class Section:
    title: str
    steps: list[Step] = field(default_factory=list)


def parse(path: Path) -> list[Section]:
    sections: list[Section] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("## "):
            sections.append(Section(raw[3:].strip()))
            continue
        match = _LINE.match(raw)
        if match is None or not sections:
            continue
        step = _step(match.group(1))
        if step is not None:
            sections[-1].steps.append(step)
    return sections


def _step(body: str) -> Step | None:
    if body.startswith("connect "):
        url = body.split()[1]
        rejected = _REJECTED.search(body)
        status = int(rejected.group(1)) if rejected else 101
        return Step("connect", query=urlsplit(url).query, status=status)
    direction, rest = body[:2], body[2:].strip()
    if direction not in (">>", "<<"):
        return None
    if rest.startswith("(connection closed"):
        return Step("drop")
    kind, _, payload = rest.partition(" ")
    payload = payload.strip()
    if kind == "close":
        close = _CLOSE.search(payload)
        assert close is not None, body
        step_kind = "send_close" if direction == ">>" else "close"
        return Step(step_kind, code=int(close.group(1)), reason=close.group(2))
    step_kind = "send" if direction == ">>" else "expect"
    if kind == "text":
        return Step(step_kind, text=payload)
    if kind == "binary":
        return Step(step_kind, data=bytes.fromhex(payload))
    raise ValueError(f"unknown transcript line: {body}")
