"""Property tests: the JSON handlers' codecs and the HandlerSession's bookkeeping under random traffic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.errors import CapacityError, RemoteProtocolError
from maxsdk.protocol.handler import FrameKind, Incoming
from maxsdk.protocol.handler_session import HandlerSession, HandlerSessionConfig
from maxsdk.protocol.jsonfeed import JsonFeedProtocol
from maxsdk.protocol.jsonrpc import JsonRpcProtocol
from maxsdk.protocol.pending import RequestIds

pytestmark = pytest.mark.timeout(60)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
params = st.none() | st.lists(json_values, max_size=4) | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
ids = st.integers(0, 2**53) | st.text(max_size=12)
method_names = st.text(min_size=1, max_size=16).filter(lambda m: not m.startswith("rpc."))


@given(ids, method_names, params)
def test_jsonrpc_requests_round_trip(request_id: Any, method: str, value: Any) -> None:
    message = json.loads(JsonRpcProtocol().request(request_id, method, value))
    expected = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if value is not None:
        expected["params"] = value
    assert message == expected


@given(ids, json_values)
def test_jsonrpc_results_are_replies_to_their_id(request_id: Any, result: Any) -> None:
    incoming = JsonRpcProtocol().classify(
        json.loads(json.dumps({"jsonrpc": "2.0", "result": result, "id": request_id}))
    )
    assert incoming.kind is FrameKind.REPLY and incoming.request_id == request_id and incoming.error is None


@given(json_values)
def test_any_json_is_classified_or_refused_as_a_protocol_error(value: Any) -> None:
    for protocol in (JsonRpcProtocol(), JsonFeedProtocol()):
        try:
            incoming = protocol.classify(value)
        except RemoteProtocolError:
            continue
        assert isinstance(incoming, Incoming) and isinstance(incoming.kind, FrameKind)
        for part in incoming.parts:
            assert isinstance(part.kind, FrameKind)


@given(st.lists(st.integers(1, 10**9), min_size=2, max_size=50, unique=True))
def test_string_ids_sort_like_the_numbers(starts: list[int]) -> None:
    texts = [RequestIds(strings=True, start=n).next() for n in starts]
    assert sorted(texts) == [RequestIds(strings=True, start=n).next() for n in sorted(starts)]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.floats(0.1, 5.0), st.booleans()),
        st.tuples(st.just("reply"), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("advance"), st.floats(0.0, 3.0), st.just(False)),
        st.tuples(st.just("drop"), st.just(0.0), st.just(False)),
        st.tuples(st.just("open"), st.just(0.0), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_every_request_ends_exactly_once(ops: list[tuple[str, Any, bool]]) -> None:
    """Replies, timeouts, drops and reconnects in any order: each waiter gets one outcome, nothing leaks."""
    session = HandlerSession(JsonFeedProtocol(), HandlerSessionConfig(ping_interval=None, max_pending=20))
    now = 0.0
    session.connection_opened(now)
    outcomes: dict[int, list[str]] = {}
    issued: list[Any] = []

    def drain() -> None:
        completions, _ = session.take_output()
        for waiter, outcome in completions:
            outcomes.setdefault(waiter, []).append(outcome.status)
        session.outgoing.clear()

    for op, number, flag in ops:
        if op == "request":
            waiter = len(issued)
            try:
                issued.append(session.request("echo", waiter, now, number, waiter, durable=flag))
            except CapacityError:
                assert session.pending_count == 20
        elif op == "reply" and issued:
            request_id = issued[int(number) % len(issued)]
            message = {"id": request_id, "error": {"code": 1}} if flag else {"id": request_id, "result": 1}
            session.receive(session.handler.classify(message), now)
        elif op == "advance":
            now += number
            session.on_deadline(now)
        elif op == "drop":
            session.connection_closed(now)
        elif op == "open" and not session.connected:
            session.connection_opened(now)
        drain()
    if not session.connected:
        session.connection_opened(now)
    now += 10.0
    session.on_deadline(now)
    drain()
    assert session.pending_count == 0
    assert all(len(statuses) == 1 for statuses in outcomes.values()), outcomes
    assert set(outcomes) == set(range(len(issued)))
    for statuses in outcomes.values():
        assert statuses[0] in ("ok", "error", "timeout", "lost")
