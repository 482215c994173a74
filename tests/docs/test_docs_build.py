"""The documentation builds with warnings as errors (what `tox -e docs` runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.docs.helpers import DOCS, ROOT

pytest.importorskip("sphinx", reason="the docs extra is not installed")


@pytest.mark.timeout(300)
def test_sphinx_build_has_no_warnings(tmp_path):
    out = tmp_path / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*command, "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index", "quickstart", "concepts", "reconnection", "frameworks", "troubleshooting", "cli"):
        assert (out / f"{page}.html").exists(), page
    reconnection = (out / "reconnection.html").read_text(encoding="utf-8")
    assert reconnection.count("stateDiagram-v2") == 2  # the connection lifecycle and the channel state machine
    api = (out / "reference" / "api.html").read_text(encoding="utf-8")
    assert 'id="maxsdk.Client.connect"' in api and 'id="maxsdk.Channel.push"' in api
    # Members defined by the private base class are documented on Client, and no private class
    # appears on a "Bases:" line (it would be an unlinked name).
    for member in ("stats", "diagnostics", "on_signal", "state"):
        assert f'id="maxsdk.Client.{member}"' in api, member
        assert f'id="maxsdk.ProtocolClient.{member}"' in api, member
    assert "ClientBase" not in api and "HandlerEvents" not in api
    assert 'id="maxsdk.JsonRpcClient.stats"' not in api, "documented once, on ProtocolClient"
    # The front page points to a few pages; it does not repeat the whole sidebar.
    index = (out / "index.html").read_text(encoding="utf-8")
    article = index[index.index("<article") : index.index("</article>")]
    assert "toctree-l1" not in article and 'href="presence.html"' not in article
    assert 'href="quickstart.html"' in article
    assert 'href="presence.html"' in index and 'href="observability.html"' in index  # the sidebar lists every page
    cli = (out / "cli.html").read_text(encoding="utf-8")
    assert "demo complete" in cli and "usage: maxsdk" in cli
