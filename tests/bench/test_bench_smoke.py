"""The benchmark suite still runs: a tiny round-trip workload, two contenders, one table.

Needs Node and npm like the phoenix.js test (the bench server is a Node program);
``bench/run.py`` installs its npm packages with ``npm ci`` the first time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.timeout(180)
def test_quick_run_prints_a_table(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(RUN),
        "--quick",
        "--only",
        "rtt",
        "--contenders",
        "maxsdk,raw",
        "--no-embedded",
        "--output",
        str(tmp_path),
        "--no-charts",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "### Push → reply round trip, one caller" in out
    assert "| contender | p50 µs | p99 µs |" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for contender in ("maxsdk", "raw websocket-client"):
        assert contender in rows, out
        assert "n/a" not in rows[contender] and "failed" not in rows[contender], rows[contender]
    assert rows["raw websocket-client"].count("1.00x") >= 2  # the ratio reference
    assert (tmp_path / "latest.md").read_text() == out
    assert (tmp_path / "latest.json").exists()


@pytest.mark.timeout(120)
def test_the_deflate_bench_prints_its_rows() -> None:
    script = RUN.parent / "deflate.py"
    done = subprocess.run(
        [sys.executable, str(script), "--count", "50", "--repeat", "1"], capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"off", "deflate (context takeover)", "deflate (no context takeover)"} <= set(rows), done.stdout


@pytest.mark.timeout(120)
def test_the_recovery_bench_prints_its_rows() -> None:
    script = RUN.parent / "recovery.py"
    done = subprocess.run(
        [sys.executable, str(script), "--count", "500", "--repeat", "1"], capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"live, plain channel", "live, recover=True", "replay after a cut", "recover=True"} <= set(rows), done.stdout
    assert "recovery overhead on the live receive:" in done.stdout
