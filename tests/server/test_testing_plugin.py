"""maxsdk.testing works as a pytest plugin in a user's project."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_fixtures_in_a_user_project(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["maxsdk.testing"]\n')
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import json
            import websocket
            from maxsdk.server import ServerSettings

            def test_server(phoenix_server, phoenix_url):
                ws = websocket.create_connection(phoenix_url, timeout=5)
                ws.send('["1","1","echo:x","phx_join",{}]')
                assert json.loads(ws.recv())[4] == {"response": {}, "status": "ok"}
                ws.close()
                assert phoenix_url.startswith(phoenix_server.url)

            def test_factory(phoenix_server_factory):
                server = phoenix_server_factory(token="t", settings=ServerSettings(idle_timeout=5))
                assert server.running
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
