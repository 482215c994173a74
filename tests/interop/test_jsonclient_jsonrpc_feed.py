"""JsonClient, configured as a JSON-RPC-shaped feed, against the PyPI json-rpc library server (not our code).

The server (``jsonrpc_library_server.py``) answers ``eth_subscribe`` with a
subscription id and pushes
``{"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": id, "result": ...}}``;
a :class:`maxsdk.JsonFormat` describes that with configuration alone.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, JsonFormat, signals
from tests.interop.conftest import wait_until
from tests.interop.servers import JsonRpcLibraryServer

pytestmark = pytest.mark.timeout(60)

ETH_FEED = JsonFormat(
    op_field="method",
    args_field="params",
    constant_fields={"jsonrpc": "2.0"},
    subscribe_op="eth_subscribe",
    unsubscribe_op="eth_unsubscribe",
    subscription_key="result",
    topic_field=("params", "subscription"),
    data_field=("params", "result"),
    # The server has no ping method: WebSocket pings (its websockets server answers them).
    ping=None,
    websocket_pings=True,
    server_ping=None,
    pong_reply=None,
    reconnect=None,
    auth_op=None,
)


def feed(url: str, **options: Any) -> maxsdk.JsonClient:
    options.setdefault("reconnect", Backoff(steps=(0.02, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1), jitter="none"))
    options.setdefault("timeout", 5.0)
    return maxsdk.JsonClient(url, format=ETH_FEED, **options)


def test_jsonclient_with_constant_fields_subscribes_receives_and_unsubscribes(
    jsonrpc_library: JsonRpcLibraryServer,
) -> None:
    updates: queue.Queue[Any] = queue.Queue()
    with feed(jsonrpc_library.url, ping_interval=0.2) as client:
        # Requests are JSON-RPC calls too: the constant "jsonrpc" member makes the library accept them.
        assert client.request("sum", [1, 2, 3]) == 6
        with pytest.raises(maxsdk.RpcError) as refused:
            client.request("fail")
        assert refused.value.code == -32050

        heads = client.subscribe("newHeads", updates.put)
        key = client._subscription_key("newHeads")
        assert key is not None and key.startswith("0x")
        assert client.request("debug.live") == [key]
        first = updates.get(timeout=5)
        assert first["kind"] == "newHeads" and isinstance(first["n"], int)

        heads.unsubscribe()
        # The unsubscribe named the server's id, not the topic.
        assert client.request("debug.unsubscribed") == [key]
        assert client.request("debug.live") == []
        # WebSocket pings kept the connection (the server has no ping method).
        wait_until(lambda: client.diagnostics().counters["heartbeat_replies"] >= 2, message="two pongs")
        diagnostics = client.diagnostics()
        assert diagnostics.reconnects == 0
        assert diagnostics.counters["unroutable"] == 0 and diagnostics.counters["unknown_messages"] == 0


def test_jsonclient_refused_subscription_raises_with_the_servers_error(jsonrpc_library: JsonRpcLibraryServer) -> None:
    with feed(jsonrpc_library.url) as client:
        with pytest.raises(maxsdk.SubscriptionError) as refused:
            client.subscribe("forbidden")
        assert refused.value.topic == "forbidden"
        assert client.request("debug.live") == []
        # The connection is still usable.
        client.subscribe("logs")
        assert len(client.request("debug.live")) == 1


def test_jsonclient_resubscribes_after_a_server_restart(jsonrpc_library: JsonRpcLibraryServer) -> None:
    updates: list[Any] = []
    resubscribed_at: list[int] = []  # how many updates had arrived when the resubscription was confirmed
    with feed(jsonrpc_library.url) as client:
        # Both run on the dispatcher thread, in order: updates of the old connection come first.
        def confirmed(_client: object, resubscribed: bool, **_: object) -> None:
            if resubscribed:
                resubscribed_at.append(len(updates))

        client.on_signal(signals.subscribed, confirmed)
        client.subscribe("newHeads", updates.append)
        old_key = client._subscription_key("newHeads")
        wait_until(lambda: updates, message="a first update")
        jsonrpc_library.restart()
        wait_until(lambda: resubscribed_at, message="the resubscription")
        new_key = client._subscription_key("newHeads")
        assert client.diagnostics().reconnects >= 1
        assert client.request("debug.live") == [new_key]
        wait_until(lambda: len(updates) > resubscribed_at[0] + 1, message="updates after the restart")
        assert old_key is not None and new_key is not None
        assert client.diagnostics().counters["unroutable"] == 0
