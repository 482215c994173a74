"""The examples of the JSON-RPC 2.0 specification (section 7), against the embedded server and the client.

Each example is checked twice:

* on the wire: the request text of the specification is sent verbatim with a
  raw websocket-client and the answer must be the specification's (this is
  what makes :class:`~maxsdk.server.JsonRpcServer` usable as a reference);
* through :class:`maxsdk.JsonRpcClient`: the request it sends is the
  specification's (read back from the server's record) and the outcome is what
  the specification's response means — results, :class:`~maxsdk.RpcError`,
  or, for responses that answer no request (``"id": null``), the
  ``error_received`` signal while the connection carries on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

import maxsdk
from maxsdk import signals
from maxsdk.server import JsonRpcServer
from tests.client.helpers import SignalLog

pytestmark = pytest.mark.timeout(30)


# -- the wire: the server answers exactly as the specification shows -------------------------------------------

EXAMPLES: list[tuple[str, str, Any]] = [
    (
        "positional params",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        {"jsonrpc": "2.0", "result": 19, "id": 1},
    ),
    (
        "positional params, swapped",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        {"jsonrpc": "2.0", "result": -19, "id": 2},
    ),
    (
        "named params",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
        {"jsonrpc": "2.0", "result": 19, "id": 3},
    ),
    (
        "named params, reordered",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
        {"jsonrpc": "2.0", "result": 19, "id": 4},
    ),
    ("notification", '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None),
    ("notification without params", '{"jsonrpc": "2.0", "method": "foobar"}', None),
    (
        "non-existent method",
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"},
    ),
    (
        "invalid JSON",
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
    ),
    (
        "invalid Request object",
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ),
    (
        "batch, invalid JSON",
        '[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n  {"jsonrpc": "2.0", "method"\n]',
        {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
    ),
    (
        "empty array",
        "[]",
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    ),
    (
        "invalid batch (but not empty)",
        "[1]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}],
    ),
    (
        "invalid batch",
        "[1,2,3]",
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}] * 3,
    ),
    (
        "batch",
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]""",
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ],
    ),
    (
        "batch, all notifications",
        """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]""",
        None,
    ),
]

SENTINEL = '{"jsonrpc": "2.0", "method": "echo", "params": ["sentinel"], "id": "sentinel"}'


@pytest.fixture
def raw(jsonrpc_server: JsonRpcServer) -> Iterator[websocket.WebSocket]:
    ws = websocket.create_connection(jsonrpc_server.url, timeout=5)
    yield ws
    ws.close()


@pytest.mark.parametrize(("name", "request_text", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_server_answers_each_specification_example(
    raw: websocket.WebSocket, name: str, request_text: str, expected: Any
) -> None:
    raw.send(request_text)
    raw.send(SENTINEL)  # answered after the example's response, or first when there is none
    first = json.loads(raw.recv())
    if expected is None:
        assert first == {"jsonrpc": "2.0", "result": ["sentinel"], "id": "sentinel"}, "nothing is returned"
        return
    assert first == expected
    assert json.loads(raw.recv())["id"] == "sentinel"


# -- the client ----------------------------------------------------------------------------------------------


@pytest.fixture
def client(jsonrpc_server: JsonRpcServer) -> Iterator[maxsdk.JsonRpcClient]:
    with maxsdk.JsonRpcClient(jsonrpc_server.url, timeout=5.0) as rpc:
        yield rpc


def sent(server: JsonRpcServer, since: int = 0) -> list[Any]:
    return [record.message for record in server.messages(since)]


def test_positional_params(client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    assert client.call("subtract", [42, 23]) == 19
    assert client.call("subtract", [23, 42]) == -19
    first, second = sent(jsonrpc_server)
    assert first == {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": first["id"]}
    assert isinstance(first["id"], int) and second["id"] > first["id"]


def test_named_params(client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    assert client.call("subtract", {"subtrahend": 23, "minuend": 42}) == 19
    assert client.call("subtract", {"minuend": 42, "subtrahend": 23}) == 19
    assert sent(jsonrpc_server)[0]["params"] == {"subtrahend": 23, "minuend": 42}


def test_notifications(client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    log = SignalLog(client, [signals.error_received])  # type: ignore[arg-type]
    client.notify("update", [1, 2, 3, 4, 5])
    client.notify("foobar")
    assert client.call("echo", ["after"]) == ["after"]  # nothing came back for the two notifications
    assert sent(jsonrpc_server)[:2] == [
        {"jsonrpc": "2.0", "method": "update", "params": [1, 2, 3, 4, 5]},
        {"jsonrpc": "2.0", "method": "foobar"},
    ]
    assert log.of("error_received") == [] and log.of("protocol_error") == []


@pytest.mark.parametrize("string_ids", [False, True], ids=["number ids", "string ids"])
def test_non_existent_method(jsonrpc_server: JsonRpcServer, string_ids: bool) -> None:
    with (
        maxsdk.JsonRpcClient(jsonrpc_server.url, string_ids=string_ids, timeout=5.0) as rpc,
        pytest.raises(maxsdk.RpcError) as caught,
    ):
        rpc.call("foobar")
    error = caught.value
    assert (error.code, error.message, error.data, error.method) == (-32601, "Method not found", None, "foobar")
    assert isinstance(sent(jsonrpc_server)[0]["id"], str if string_ids else int)


@pytest.mark.parametrize(
    ("name", "response"),
    [
        (e[0], e[2])
        for e in EXAMPLES
        if e[0] in ("invalid JSON", "invalid Request object", "batch, invalid JSON", "empty array")
    ],
)
def test_null_id_errors_are_reported_and_the_connection_carries_on(
    client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer, name: str, response: Any
) -> None:
    log = SignalLog(client, [signals.error_received])  # type: ignore[arg-type]
    jsonrpc_server.send_raw(json.dumps(response))
    received = log.wait_for("error_received")["error"]
    assert isinstance(received, maxsdk.RpcError) and received.code == response["error"]["code"]
    assert received.message == response["error"]["message"]
    assert client.call("echo", [1]) == [1]
    assert client.diagnostics().reconnects == 0 and log.of("disconnected") == []


@pytest.mark.parametrize("count", [1, 3], ids=["invalid batch (but not empty)", "invalid batch"])
def test_invalid_batch_responses_are_each_reported(
    client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer, count: int
) -> None:
    log = SignalLog(client, [signals.error_received])  # type: ignore[arg-type]
    error = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}
    jsonrpc_server.send_raw(json.dumps([error] * count))
    log.wait_for("error_received", count=count)
    assert client.call("echo", [2]) == [2]


def test_the_client_refuses_an_invalid_request_before_sending(
    client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer
) -> None:
    with pytest.raises(maxsdk.LocalProtocolError):
        client.call(1, "bar")  # type: ignore[arg-type]
    with pytest.raises(maxsdk.LocalProtocolError):
        client.call("subtract", "bar")
    assert client.call("echo", [3]) == [3]
    assert len(sent(jsonrpc_server)) == 1


def test_an_empty_batch_sends_nothing(client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    with client.batch() as batch:
        pass
    assert batch.results == [] and jsonrpc_server.message_count == 0


def test_batch(jsonrpc_server: JsonRpcServer) -> None:
    with maxsdk.JsonRpcClient(jsonrpc_server.url, string_ids=True, timeout=5.0) as rpc, rpc.batch() as batch:
        total = batch.call("sum", [1, 2, 4])
        batch.notify("notify_hello", [7])
        batch.call("subtract", [42, 23])
        batch.call("foo.get", {"name": "myself"})
        batch.call("get_data")
    assert total.result() == 7
    assert [(r.method, r.result) for r in batch.results if r.ok] == [
        ("sum", 7),
        ("subtract", 19),
        ("get_data", ["hello", 5]),
    ]
    [failed] = [r for r in batch.results if not r.ok]
    assert failed.method == "foo.get" and isinstance(failed.error, maxsdk.RpcError) and failed.error.code == -32601
    with pytest.raises(maxsdk.RpcError):
        failed.unwrap()
    [frame] = sent(jsonrpc_server)
    assert [(m["method"], m.get("params"), "id" in m) for m in frame] == [
        ("sum", [1, 2, 4], True),
        ("notify_hello", [7], False),
        ("subtract", [42, 23], True),
        ("foo.get", {"name": "myself"}, True),
        ("get_data", None, True),
    ]
    assert all(isinstance(m["id"], str) for m in frame if "id" in m)


def test_batch_responses_may_come_in_any_order(jsonrpc_server: JsonRpcServer) -> None:
    with maxsdk.JsonRpcClient(jsonrpc_server.url, timeout=5.0) as rpc:
        jsonrpc_server.withhold_replies()
        batch = rpc.batch()
        calls = [batch.call("echo", [n]) for n in range(4)]
        sender = threading.Thread(target=batch.send)
        sender.start()
        [frame] = [r.message for r in [jsonrpc_server.wait_for_message()]]
        ids = [m["id"] for m in frame]
        reordered = [
            {"jsonrpc": "2.0", "result": "third", "id": ids[2]},
            {"jsonrpc": "2.0", "error": {"code": -32000, "message": "busy", "data": {"n": 1}}, "id": ids[1]},
            {"jsonrpc": "2.0", "result": "last", "id": ids[3]},
            {"jsonrpc": "2.0", "result": "first", "id": ids[0]},
        ]
        jsonrpc_server.release_replies(send=False)
        jsonrpc_server.send_raw(json.dumps(reordered))
        sender.join(5)
    assert [c.result() for c in (calls[0], calls[2], calls[3])] == ["first", "third", "last"]
    assert [r.result for r in batch.results] == ["first", None, "third", "last"]
    error = batch.results[1].error
    assert isinstance(error, maxsdk.RpcError) and (error.code, error.data, error.is_server_error) == (
        -32000,
        {"n": 1},
        True,
    )


def test_batch_of_notifications_only(client: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    with client.batch() as batch:
        batch.notify("notify_sum", [1, 2, 4])
        batch.notify("notify_hello", [7])
    assert batch.results == []
    assert client.call("echo", ["next"]) == ["next"]
    assert sent(jsonrpc_server)[0] == [
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1, 2, 4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
    ]
