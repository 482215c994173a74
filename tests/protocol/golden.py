"""Read the recorded real-server frames in ``tests/golden/transcript_*.txt``.

Only the frame lines matter here (``>> text``, ``<< text``, ``>> binary``,
``<< binary``); ``connect`` lines start a new connection (its ``vsn`` comes
from the URL, and a URL without ``vsn`` gets the server default ``1.0.0``,
reference §1.2) and ``## `` lines name the section. Binary frames are hex
bytes, followed by a ``= kind=...`` line that spells out the fields: it is
parsed too, as an oracle that does not depend on our decoder.

Line layout (fixed by the recorder): ``[  0.013s] >> text   <frame>``; the
frame starts 10 characters after the direction marker.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from maxsdk.protocol.phoenix.message import Message

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TRANSCRIPT_V2 = GOLDEN / "transcript_v2.txt"
TRANSCRIPT_V1 = GOLDEN / "transcript_v1.txt"

_STAMP = re.compile(r"^\[\s*\+?(?P<time>[\d.]+)s\]\s+(?P<body>.*)$")
_FRAME = re.compile(r"^(?P<dir><<|>>) (?P<kind>text|binary)\s")
_FRAME_OFFSET = 10  # len(">> ") + len("binary") + 1: where the frame starts
_NOTE_FIELD = re.compile(r"(\w+)='([^']*)'")
_NOTE_KIND = re.compile(r"kind=(\d+)")
_NOTE_PAYLOAD = re.compile(r"payload=([0-9a-f ]*)$")


@dataclass(frozen=True)
class Note:
    """The recorder's spelled-out fields of a binary frame."""

    kind: int
    fields: dict[str, str]
    payload: bytes


@dataclass
class Frame:
    """One recorded frame.

    Attributes:
        direction: ``"client"`` (``>>``) or ``"server"`` (``<<``).
        kind: ``"text"`` or ``"binary"``.
        data: the frame: ``str`` for text, ``bytes`` for binary.
        time: seconds since the recording started (``None`` if not stamped).
        section: the ``## `` title the frame is under.
        connection: index of the connection it belongs to (0-based).
        vsn: the serializer version of that connection.
        line: 1-based line number in the transcript.
        note: for binary frames, the recorder's field annotation.

    """

    direction: str
    kind: str
    data: str | bytes
    time: float | None
    section: str
    connection: int
    vsn: str
    line: int
    note: Note | None = None

    def __repr__(self) -> str:  # short ids in pytest parametrization output
        return f"L{self.line}"


@dataclass
class Transcript:
    """The frames of one transcript file, in order."""

    path: Path
    frames: list[Frame] = field(default_factory=list)

    def client(self, kind: str | None = None) -> list[Frame]:
        return [f for f in self.frames if f.direction == "client" and (kind is None or f.kind == kind)]

    def server(self, kind: str | None = None) -> list[Frame]:
        return [f for f in self.frames if f.direction == "server" and (kind is None or f.kind == kind)]

    def connection(self, index: int) -> list[Frame]:
        return [f for f in self.frames if f.connection == index]


def _vsn_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("vsn", ["1.0.0"])[0]


def _parse_note(text: str) -> Note:
    kind = _NOTE_KIND.search(text)
    payload = _NOTE_PAYLOAD.search(text)
    if kind is None or payload is None:
        raise ValueError(f"unreadable binary annotation: {text!r}")
    return Note(int(kind.group(1)), dict(_NOTE_FIELD.findall(text)), bytes.fromhex(payload.group(1)))


def parse(path: Path) -> Transcript:
    """Parse a transcript file into its frames."""
    transcript = Transcript(path)
    section = ""
    connection = -1
    vsn = "2.0.0"
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if raw.startswith("## "):
            section = raw[3:].strip()
            continue
        stripped = raw.strip()
        if stripped.startswith("= kind="):
            previous = transcript.frames[-1]
            assert previous.kind == "binary", f"line {number}: annotation without a binary frame"
            previous.note = _parse_note(stripped)
            continue
        match = _STAMP.match(raw)
        time, body = (float(match.group("time")), match.group("body")) if match else (None, stripped)
        if body.startswith("connect "):
            if "rejected:" not in body:
                connection += 1
                vsn = _vsn_of(body.split()[1])
            continue
        frame = _FRAME.match(body)
        if frame is None:
            continue
        content = body[_FRAME_OFFSET:]
        data: str | bytes = bytes.fromhex(content) if frame.group("kind") == "binary" else content
        transcript.frames.append(
            Frame(
                direction="client" if frame.group("dir") == ">>" else "server",
                kind=frame.group("kind"),
                data=data,
                time=time,
                section=section,
                connection=max(connection, 0),
                vsn=vsn,
                line=number,
            )
        )
    return transcript


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def unescape_non_ascii(text: str) -> str:
    r"""Resolve ``\uXXXX`` escapes of non-ASCII characters.

    The recorder (Python ``json.dumps``) escaped non-ASCII characters; our
    encoder writes them as UTF-8 (``ensure_ascii=False``), which is the same
    JSON value. Only escapes of characters >= U+0080 are resolved: ASCII
    escapes (quotes, control characters) would change the JSON.
    """
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) >= 0x80 else m.group(0), text)


def client_fields(frame: Frame) -> Message:
    """The fields of a recorded client text frame, read with ``json`` only."""
    value = json.loads(frame.data)
    if frame.vsn == "2.0.0":
        return Message(*value)
    return Message(value.get("join_ref"), value["ref"], value["topic"], value["event"], value["payload"])


V2 = parse(TRANSCRIPT_V2)
V1 = parse(TRANSCRIPT_V1)
