"""Every option is validated at construction or at the call, as ConfigurationError (issue 13, item 12).

One table per surface (``Client``/``ProtocolClient`` keyword arguments, the
channel's calls, the durable ``send``), so a new option without validation
shows up as a missing row. Bad values never surface later as a
``FileNotFoundError`` in the reader thread, a bare ``TypeError`` or a
``RecursionError``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import pytest

import maxsdk
from maxsdk import Client, ConfigurationError

pytestmark = pytest.mark.timeout(30)

URL = "ws://127.0.0.1:9/socket"
WSS = "wss://127.0.0.1:9/socket"


def _deep(depth: int = 100_000) -> dict[str, Any]:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_NUMBERS = [math.nan, math.inf, -1, 0, "soon", True, None]
DURATIONS = ["timeout", "connect_timeout", "close_timeout"]
OPTIONAL_DURATIONS = ["heartbeat_timeout", "failback_after", "longpoll_fallback_after"]

CLIENT_CASES: list[tuple[str, dict[str, Any]]] = [
    *[(f"{name}={value!r}", {name: value}) for name in DURATIONS for value in BAD_NUMBERS],
    *[(f"{name}={v!r}", {name: v}) for name in OPTIONAL_DURATIONS for v in BAD_NUMBERS if v is not None],
    *[(f"heartbeat_interval={v!r}", {"heartbeat_interval": v}) for v in (math.nan, math.inf, -1, "30")],
    ("ca_file missing", {"ca_file": "/nonexistent/ca.pem"}),
    ("ca_file=123", {"ca_file": 123}),
    ("ca_file directory", {"ca_file": "/"}),
    ("verify_tls='no'", {"verify_tls": "no"}),
    ("ssl_context=1", {"ssl_context": 1}),
    ("origin=1", {"origin": 1}),
    ("name=1", {"name": 1}),
    ("reconnect_on_normal_close='yes'", {"reconnect_on_normal_close": "yes"}),
    ("reconnect_on_going_away=1", {"reconnect_on_going_away": 1}),
    ("fatal_statuses='403'", {"fatal_statuses": "403"}),
    ("fatal_statuses=[99]", {"fatal_statuses": [99]}),
    ("fatal_statuses=[True]", {"fatal_statuses": [True]}),
    *[(f"{name}={v!r}", {name: v}) for name in ("max_message_size", "max_pending") for v in (0, -1, 1.5, True, "8")],
    *[(f"{name}={v!r}", {name: v}) for name in ("dispatch_queue_size", "dispatch_total_size") for v in (0, True, None)],
    ("vsn=2", {"vsn": 2}),
    ("transport='carrier-pigeon'", {"transport": "carrier-pigeon"}),
    ("overflow='explode'", {"overflow": "explode"}),
    ("offline='later'", {"offline": "later"}),
    ("params=1", {"params": 1}),
    ("headers='x'", {"headers": "x"}),
    ("auth_token=1", {"auth_token": 1}),
    ("proxy='ftp://p'", {"proxy": "ftp://p:21"}),
]


@pytest.mark.parametrize(("case", "options"), CLIENT_CASES, ids=[c for c, _ in CLIENT_CASES])
def test_client_options_are_refused_at_construction(case: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Client(WSS, **options)


PROTOCOL_CASES = [
    ("timeout=nan", {"timeout": math.nan}),
    ("ping_timeout=inf", {"ping_timeout": math.inf}),
    ("ca_file=123", {"ca_file": 123}),
    ("verify_tls='no'", {"verify_tls": "no"}),
]


@pytest.mark.parametrize(("case", "options"), PROTOCOL_CASES, ids=[c for c, _ in PROTOCOL_CASES])
def test_protocol_client_options_are_refused_at_construction(case: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        maxsdk.JsonRpcClient(WSS, **options)


def test_a_valid_ca_file_is_accepted(tmp_path: Path) -> None:
    import ssl

    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile or paths.openssl_cafile
    if not cafile or not Path(cafile).is_file():
        pytest.skip("no system CA bundle file")
    Client(WSS, ca_file=cafile).close()
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(ConfigurationError, match="cannot be loaded"):
        Client(WSS, ca_file=str(bad))


CallCase = tuple[str, Callable[[Client, maxsdk.Channel], Any]]
CALL_CASES: list[CallCase] = [
    *[(f"push(timeout={v!r})", lambda c, ch, v=v: ch.push_nowait("e", {}, timeout=v)) for v in BAD_NUMBERS[:-1]],
    *[(f"join(timeout={v!r})", lambda c, ch, v=v: ch.join_nowait(timeout=v)) for v in BAD_NUMBERS[:-1]],
    *[(f"connect(timeout={v!r})", lambda c, ch, v=v: c.connect(timeout=v)) for v in BAD_NUMBERS[:-1]],
    *[(f"close(timeout={v!r})", lambda c, ch, v=v: c.close(timeout=v)) for v in (math.nan, -1, "x")],
    *[(f"disconnect(timeout={v!r})", lambda c, ch, v=v: c.disconnect(timeout=v)) for v in (math.nan, -1, "x")],
    *[(f"channel(timeout={v!r})", lambda c, ch, v=v: c.channel("room:t", timeout=v)) for v in BAD_NUMBERS[:-1]],
    ("channel(queue_size=-1)", lambda c, ch: c.channel("room:q", queue_size=-1)),
    ("channel(overflow='x')", lambda c, ch: c.channel("room:o", overflow="x")),
    ("push(event=1)", lambda c, ch: ch.push_nowait(1, {})),  # type: ignore[arg-type]
    ("push(event='')", lambda c, ch: ch.push_nowait("", {})),
]


@pytest.mark.parametrize(("case", "call"), CALL_CASES, ids=[c for c, _ in CALL_CASES])
def test_call_arguments_are_refused_at_the_call(case: str, call: Callable[[Client, maxsdk.Channel], Any]) -> None:
    client = Client(URL, offline="raise")
    try:
        channel = client.channel("room:x")
        with pytest.raises(ConfigurationError):
            call(client, channel)
        assert not client.threads or client.state is not maxsdk.ConnectionState.CONNECTED
    finally:
        client.close()


SendCase = tuple[str, Callable[[maxsdk.Channel], Any], type[BaseException]]
SEND_CASES: list[SendCase] = [
    ("send(100,000-deep payload)", lambda ch: ch.send("e", _deep()), ConfigurationError),
    *[(f"send(ttl={v!r})", lambda ch, v=v: ch.send("e", {}, ttl=v), ConfigurationError) for v in BAD_NUMBERS[:-1]],
    ("send(key=123)", lambda ch: ch.send("e", {}, key=123), ConfigurationError),  # type: ignore[arg-type]
    ("send(key='')", lambda ch: ch.send("e", {}, key=""), ConfigurationError),
    ("send(key=10k chars)", lambda ch: ch.send("e", {}, key="k" * 10_000), ConfigurationError),
    ("send(priority='x')", lambda ch: ch.send("e", {}, priority="x"), ConfigurationError),  # type: ignore[arg-type]
    ("send(event=1)", lambda ch: ch.send(1, {}), ConfigurationError),  # type: ignore[arg-type]
    ("send(payload=object)", lambda ch: ch.send("e", {"a": object()}), ConfigurationError),
    ("send(payload=nan)", lambda ch: ch.send("e", {"a": math.nan}), ConfigurationError),
    ("send_many(ttl='soon')", lambda ch: ch.send_many([("e", {})], ttl="soon"), ConfigurationError),
    ("send_many([1])", lambda ch: ch.send_many([1]), ConfigurationError),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("case", "call", "error"), SEND_CASES, ids=[c for c, _, _ in SEND_CASES])
def test_durable_send_arguments_are_refused_and_nothing_is_stored(
    tmp_path: Path, case: str, call: Callable[[maxsdk.Channel], Any], error: type[BaseException]
) -> None:
    client = Client(URL, outbox=str(tmp_path / "outbox"))
    try:
        channel = client.channel("room:x")
        with pytest.raises(error):
            call(channel)
        assert client.outbox is not None and client.outbox.depth() == 0
    finally:
        client.close()


def test_push_of_a_100000_deep_payload_is_a_typed_error(phoenix_server: Any) -> None:
    with Client(phoenix_server.url) as client:
        room = client.join("room:lobby")
        with pytest.raises(maxsdk.MaxsdkError) as caught:
            room.push("echo", _deep(), timeout=5)
        assert not isinstance(caught.value, RecursionError)
        assert room.push("echo", {"ok": 1}, timeout=5).response == {"ok": 1}  # the channel is fine
