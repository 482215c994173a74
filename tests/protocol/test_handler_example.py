"""examples/custom_protocol.py runs as is: the worked example of writing a protocol handler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_protocol.py"


@pytest.mark.timeout(60)
def test_the_custom_protocol_example_runs() -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=50, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "add(2, 3) = 5" in lines and lines[-1] == "done"
    assert any(line.startswith("after the move: cpu is stream") for line in lines)
