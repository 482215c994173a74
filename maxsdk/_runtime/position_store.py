"""Stream positions on disk: one small JSON file per topic, replaced atomically.

The outbox's discipline, for a record of a few bytes: a write goes to a
temporary file in the same directory, is fsynced, renamed over the old file
(atomic on POSIX) and the directory is fsynced, so a crash leaves either the
old or the new position, never a torn one. A file that cannot be parsed
(disk damage, a foreign file) is moved aside as ``<name>.corrupt`` and read
as "no position": the stream then starts at the server's head and the
application is told by the discontinuity of the next join, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from maxsdk.protocol.recovery import Position

__all__ = ["PositionStore"]

log = logging.getLogger("maxsdk.recovery")


class PositionStore:
    """Last delivered positions of a process's recoverable channels, by topic.

    Args:
        directory: created (mode 0700) if missing.

    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _file(self, topic: str) -> Path:
        # Topics may hold any character: the file is named by a digest, the topic kept inside.
        return self.path / f"{hashlib.sha256(topic.encode()).hexdigest()[:32]}.position.json"

    def load(self, topic: str) -> Position | None:
        """The saved position of ``topic``, or ``None`` (missing or corrupt file)."""
        path = self._file(topic)
        try:
            data = json.loads(path.read_bytes())
            if data.get("topic") != topic:
                raise ValueError("the file belongs to another topic")
            return Position.from_wire(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("stream position file %s is unreadable (%s); moved aside, starting afresh", path, exc)
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except OSError:
                pass
            return None

    def save(self, topic: str, position: Position) -> None:
        """Write ``position`` durably (temp file, fsync, rename, directory fsync).

        Raises:
            OSError: the disk refused (the previous position stays in place).

        """
        path = self._file(topic)
        body = json.dumps({"topic": topic, **position.to_wire()}).encode()
        with self._lock:
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def forget(self, topic: str) -> None:
        """Remove the saved position of ``topic`` (no error if none)."""
        try:
            self._file(topic).unlink()
        except FileNotFoundError:
            pass
