"""JsonRpcClient against the PyPI json-rpc library behind a websockets server (not our code)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

import maxsdk
from maxsdk import Backoff
from tests.interop.conftest import wait_until
from tests.interop.servers import JsonRpcLibraryServer

pytestmark = pytest.mark.timeout(60)


def client(url: str, **options) -> maxsdk.JsonRpcClient:
    options.setdefault("reconnect", Backoff(steps=(0.02, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1), jitter="none"))
    options.setdefault("timeout", 5.0)
    return maxsdk.JsonRpcClient(url, **options)


@pytest.fixture
def plain_subscription_server() -> Iterator[JsonRpcLibraryServer]:
    server = JsonRpcLibraryServer(update_method="subscription")
    yield server
    server.stop()


@pytest.fixture
def slow_subscribe_server() -> Iterator[JsonRpcLibraryServer]:
    server = JsonRpcLibraryServer(subscribe_delay=1.0, update_interval=0.02)
    yield server
    server.stop()


def test_calls_errors_with_data_and_batches(jsonrpc_library: JsonRpcLibraryServer) -> None:
    with client(jsonrpc_library.url) as rpc:
        assert rpc.call("sum", [1, 2, 3]) == 6
        with pytest.raises(maxsdk.RpcError) as info:
            rpc.call("fail")
        assert (info.value.code, info.value.data) == (-32050, {"why": "test"})
        with pytest.raises(maxsdk.RpcError) as missing:
            rpc.call("nope")
        assert missing.value.code == -32601
        with rpc.batch() as batch:
            total = batch.call("sum", [1, 2, 4])
            failing = batch.call("fail")
            batch.notify("echo", [1])
        assert total.result() == 7
        assert isinstance(batch.results[1].error, maxsdk.RpcError) and failing.done()


def test_a_timeout_then_the_next_call(jsonrpc_library: JsonRpcLibraryServer) -> None:
    with client(jsonrpc_library.url) as rpc:
        with pytest.raises(maxsdk.ReplyTimeoutError):
            rpc.call("slow", [1.0, "late"], timeout=0.2)
        assert rpc.call("echo", ["next"]) == ["next"]


def test_eight_threads_calling_at_once(jsonrpc_library: JsonRpcLibraryServer) -> None:
    errors: list[BaseException] = []
    with client(jsonrpc_library.url) as rpc:

        def worker(index: int) -> None:
            try:
                for n in range(50):
                    assert rpc.call("echo", [index, n]) == [index, n]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors and not any(t.is_alive() for t in threads)


def test_eth_subscribe_updates_and_unsubscribe(jsonrpc_library: JsonRpcLibraryServer) -> None:
    received: queue.Queue[dict] = queue.Queue()
    with client(jsonrpc_library.url) as rpc:
        heads = rpc.subscribe(["newHeads"], received.put)
        assert received.get(timeout=5)["kind"] == "newHeads"
        key = heads.key
        assert rpc.call("debug.live") == [key]
        heads.unsubscribe()
        assert rpc.call("debug.live") == []
        assert rpc.call("debug.unsubscribed") == [key]
        with pytest.raises(maxsdk.RpcError) as info:
            rpc.subscribe(["forbidden"])
        assert info.value.data == "forbidden"


def test_updates_under_another_method_reach_their_subscription(
    plain_subscription_server: JsonRpcLibraryServer,
) -> None:
    received: queue.Queue[dict] = queue.Queue()
    stray: list[object] = []
    with client(plain_subscription_server.url) as rpc:
        rpc.on("subscription", stray.append)
        rpc.subscribe(["ticks"], received.put, method="subscribe")
        first, second = received.get(timeout=5), received.get(timeout=5)
        assert first["kind"] == second["kind"] == "ticks" and second["n"] > first["n"]
        assert stray == [] and rpc.diagnostics().counters["unroutable"] == 0


def test_a_subscription_confirmed_after_its_timeout_is_undone(slow_subscribe_server: JsonRpcLibraryServer) -> None:
    with client(slow_subscribe_server.url) as rpc:
        with pytest.raises(maxsdk.ReplyTimeoutError):
            rpc.subscribe(["newHeads"], timeout=0.3)
        # The server confirms a second later; the client answers with an unsubscribe.
        wait_until(lambda: rpc.call("debug.unsubscribed") != [], message="the late subscription to be undone")
        assert rpc.call("debug.live") == []
        assert rpc.diagnostics().counters["late_subscriptions_undone"] == 1
        frames_before = rpc.diagnostics().frames_in
        assert rpc.call("echo", [1]) == [1]
        # No update stream keeps arriving (one reply only, give or take a straggler sent before the unsubscribe).
        assert rpc.diagnostics().frames_in - frames_before <= 3


def test_subscriptions_come_back_after_a_server_restart(jsonrpc_library: JsonRpcLibraryServer) -> None:
    received: queue.Queue[dict] = queue.Queue()
    resubscribed = threading.Event()
    with client(jsonrpc_library.url) as rpc:
        rpc.on_signal(maxsdk.signals.subscribed, lambda sender, **kw: kw["resubscribed"] and resubscribed.set())
        heads = rpc.subscribe(["newHeads"], received.put)
        jsonrpc_library.restart()
        assert resubscribed.wait(10), "never subscribed again"
        # The new process knows exactly the one subscription the client made again.
        assert rpc.call("debug.live") == [heads.key] and heads.active
        while not received.empty():
            received.get_nowait()
        assert received.get(timeout=5)["kind"] == "newHeads"
