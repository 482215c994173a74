"""Importing maxsdk's outbox does not put persist-queue's notes about its optional extras in the user's logs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, logging, sys
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.name, record.levelname, record.getMessage()])
logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
if sys.argv[1] == "persistqueue-first":
    import persistqueue
import maxsdk, maxsdk.outbox, maxsdk._runtime.outbox_store
logging.getLogger("persistqueue").info("resume %d unack tasks", 3)  # its other records still pass
logging.getLogger("persistqueue.serializers.pickle").warning("a warning")
print(json.dumps(records))
"""


def records(mode: str) -> list[list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return [r for r in json.loads(result.stdout) if r[0].startswith("persistqueue")]


@pytest.mark.timeout(90)
def test_importing_the_outbox_logs_no_install_advice_from_persist_queue() -> None:
    assert records("maxsdk-first") == [
        ["persistqueue", "INFO", "resume 3 unack tasks"],
        ["persistqueue.serializers.pickle", "WARNING", "a warning"],
    ]
    # persist-queue imported on its own does give the advice (its optional extras are not
    # installed here): the run above is quiet because of maxsdk, not by chance.
    if importlib.util.find_spec("aiofiles") is None or importlib.util.find_spec("dbutils") is None:
        alone = [message for _, _, message in records("persistqueue-first")]
        assert any("aiofiles" in m or "persist-queue[extra]" in m for m in alone), alone
        assert any("pickle protocol" in m for m in alone), alone
