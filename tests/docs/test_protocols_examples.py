"""The JsonFormat examples of docs/protocols.md, run as printed against the third-party servers they describe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.interop.servers import NesServer
from tests.interop.test_jsonclient_jsonrpc_feed import ETH_FEED

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = (ROOT / "docs" / "protocols.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.timeout(60)


def block_with(marker: str) -> str:
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```$", PROTOCOLS, flags=re.S | re.M) if marker in b]
    return block


def test_the_eth_shaped_feed_example_is_the_format_tested_against_the_json_rpc_library() -> None:
    namespace: dict[str, Any] = {}
    exec("import maxsdk\n" + block_with('subscribe_op="eth_subscribe"'), namespace)
    assert namespace["fmt"] == ETH_FEED


def test_the_nes_example_runs_as_printed_against_hapi_with_nes() -> None:
    server = NesServer()
    try:
        code = block_with("NES = maxsdk.JsonFormat(")
        assert "ws://127.0.0.1:8000" in code
        printed: list[Any] = []
        exec(code.replace("ws://127.0.0.1:8000", server.url), {"print": printed.append})
        assert printed == [{"echo": {"hello": "server"}}]
        # The greeting and the subscription were accepted (a refusal raises), on one connection.
        assert server.stats()["connections"] == 1
    finally:
        server.stop()
