"""Third-party JSON-RPC servers, started by the interop tests on 127.0.0.1, each in its own process.

* :class:`RpcWebsocketsServer`: the npm ``rpc-websockets`` server (its own
  WebSocket server, JSON-RPC handling, ``rpc.on``/``rpc.off`` events and
  ``rpc.login``), run by Node from ``rpc_websockets_server.js``.
* :class:`JsonRpcLibraryServer`: the PyPI ``json-rpc`` library (request
  parsing, batches, error objects, dispatch) behind a plain ``websockets``
  server, with ``eth_subscribe``-style subscriptions
  (``jsonrpc_library_server.py``). It runs in its own process because this
  test tree has a ``jsonrpc`` package of its own that would shadow the library.
* :class:`NesServer`: a hapi server with the npm ``@hapi/nes`` plugin, a
  JSON publish/subscribe feed (``hello``, ``sub``/``unsub`` of paths,
  ``pub`` updates, server heartbeats), run by Node from ``nes_server.js``,
  driven over plain HTTP on the same port.

Each prints ``{"port": N}`` once listening; :meth:`restart` keeps the port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

HERE = Path(__file__).resolve().parent


def ensure_node_modules(package: str = "rpc-websockets") -> str:
    """The ``node`` executable, after ``npm ci`` if ``package`` is not installed (skips the test without Node)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are required for the Node interop servers (install Node >= 18)")
    if not (HERE / "node_modules" / package).is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=300)
    return node


class _ProcessServer:
    """A server in a child process that prints its port on its first line."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self.start()

    @property
    def url(self) -> str:
        """The WebSocket URL of the server."""
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line (with ``self.port``, 0 the first time)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the process and wait until it listens."""
        # stderr goes to a file: a chatty server must never block on a full pipe.
        errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - kept open for the life of the process
        process = subprocess.Popen(self.command(), cwd=HERE, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            process.stdout.close()
            errors.seek(0)
            message = errors.read()
            errors.close()
            raise RuntimeError(f"{type(self).__name__} did not start: {message}")
        self.port = json.loads(line)["port"]
        self._process = process
        self._errors = errors

    def stop(self) -> None:
        """Kill the server: its clients see their connections drop."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        self._errors.close()

    def restart(self) -> None:
        """Stop, then start again on the same port (retried while the port is still held)."""
        self.stop()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class RpcWebsocketsServer(_ProcessServer):
    """The npm rpc-websockets server in a Node process."""

    def __init__(self) -> None:
        self._node = ensure_node_modules()
        super().__init__()

    def command(self) -> list[str]:
        """``node rpc_websockets_server.js PORT``."""
        return [self._node, str(HERE / "rpc_websockets_server.js"), str(self.port)]


class JsonRpcLibraryServer(_ProcessServer):
    """The ``json-rpc`` library behind a ``websockets`` server, with subscriptions.

    Args:
        update_method: the method of its subscription notifications.
        subscribe_delay: seconds before a subscribe call is answered.
        update_interval: seconds between updates of every live subscription.

    """

    def __init__(
        self, *, update_method: str = "eth_subscription", subscribe_delay: float = 0.0, update_interval: float = 0.05
    ) -> None:
        self.options = [
            f"--update-method={update_method}",
            f"--subscribe-delay={subscribe_delay}",
            f"--update-interval={update_interval}",
        ]
        super().__init__()

    def command(self) -> list[str]:
        """``python jsonrpc_library_server.py --port PORT ...``."""
        return [sys.executable, str(HERE / "jsonrpc_library_server.py"), f"--port={self.port}", *self.options]


class NesServer(_ProcessServer):
    """hapi + nes in a Node process: a JSON pub/sub feed, with HTTP control routes.

    Args:
        heartbeat_interval: seconds between the server's ``{"type": "ping"}`` heartbeats.
        heartbeat_timeout: seconds a client has to send anything after one
            before the server drops it.

    """

    def __init__(self, *, heartbeat_interval: float = 15.0, heartbeat_timeout: float = 5.0) -> None:
        self._node = ensure_node_modules("@hapi/nes")
        self._heartbeat = [str(round(heartbeat_interval * 1000)), str(round(heartbeat_timeout * 1000))]
        super().__init__()

    def command(self) -> list[str]:
        """``node nes_server.js PORT INTERVAL_MS TIMEOUT_MS``."""
        return [self._node, str(HERE / "nes_server.js"), str(self.port), *self._heartbeat]

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        with requests.Session() as session:
            session.trust_env = False  # loopback: never through a proxy from the environment
            response = session.request(method, f"http://127.0.0.1:{self.port}{path}", timeout=5, **kwargs)
        response.raise_for_status()
        return response.json()

    def publish(self, path: str, message: Any) -> None:
        """``server.publish(path, message)``: a ``pub`` update to the path's subscribers."""
        self._control("POST", "/control/publish", json={"path": path, "message": message})

    def broadcast(self, message: Any) -> None:
        """``server.broadcast(message)``: ``{"type": "update", "message": ...}`` to every client."""
        self._control("POST", "/control/broadcast", json={"message": message})

    def revoke(self, path: str, message: Any = None) -> int:
        """``socket.revoke(path, message)`` on each subscriber: ``{"type": "revoke", "path": ...}``."""
        result: dict[str, int] = self._control("POST", "/control/revoke", json={"path": path, "message": message})
        return result["revoked"]

    def stats(self, *paths: str) -> dict[str, Any]:
        """Connections and disconnections seen, and the subscribers of each of ``paths``."""
        result: dict[str, Any] = self._control("GET", "/control/stats", params={"path": list(paths)})
        return result
