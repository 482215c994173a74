"""The servers the benchmarks talk to, each in its own process.

* :func:`node_server`: ``bench/server/server.js``, the fast Phoenix server on ``ws``
  (every workload);
* :func:`embedded_server`: maxsdk's own Python server (the round-trip column).

Both print ``{"port": P}`` on stdout when they listen and exit when their stdin
closes, so a crashed runner never leaves a server behind.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
START_TIMEOUT = 30.0


class ServerProcess:
    """A started server: its socket endpoint (``ws://127.0.0.1:PORT/socket``) and process."""

    def __init__(self, name: str, command: list[str], cwd: Path) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.port = self._read_port()
        self.endpoint = f"ws://127.0.0.1:{self.port}/socket"

    def _read_port(self) -> int:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], START_TIMEOUT)
        line = stdout.readline() if ready else b""
        if not line:
            self.stop()
            stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
            raise RuntimeError(f"the {self.name} server did not start: {stderr.strip()[-2000:]}")
        return int(json.loads(line)["port"])

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Close its stdin (it exits by itself), then make sure it is gone."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def node_server(node: str) -> Iterator[ServerProcess]:
    """Run the Node bench server."""
    server = ServerProcess("node", [node, str(BENCH / "server" / "server.js")], BENCH / "server")
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_server(python: str = sys.executable) -> Iterator[ServerProcess]:
    """Run maxsdk's embedded Python server."""
    server = ServerProcess("embedded", [python, str(BENCH / "embedded_server.py")], BENCH)
    try:
        yield server
    finally:
        server.stop()
