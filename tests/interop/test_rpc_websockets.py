"""JsonRpcClient against the npm rpc-websockets server (Node), which the project did not write."""

from __future__ import annotations

import queue
import threading

import pytest

import maxsdk
from maxsdk import Backoff
from tests.interop.conftest import wait_until
from tests.interop.servers import RpcWebsocketsServer

pytestmark = pytest.mark.timeout(60)


def client(url: str, **options) -> maxsdk.JsonRpcClient:
    options.setdefault("reconnect", Backoff(steps=(0.02, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1), jitter="none"))
    options.setdefault("timeout", 5.0)
    return maxsdk.JsonRpcClient(url, **options)


def test_calls_and_errors_with_data(rpc_websockets: RpcWebsocketsServer) -> None:
    with client(rpc_websockets.url) as rpc:
        assert rpc.call("sum", [1, 2, 3]) == 6
        assert rpc.call("echo", {"a": [1, None]}) == {"a": [1, None]}
        with pytest.raises(maxsdk.RpcError) as info:
            rpc.call("fail")
        error = info.value
        assert (error.code, error.message, error.data) == (-32050, "refused on purpose", {"why": "test", "n": 1})
        with pytest.raises(maxsdk.RpcError) as missing:
            rpc.call("no_such_method")
        assert missing.value.code == -32601


def test_rpc_extension_methods_are_sent(rpc_websockets: RpcWebsocketsServer) -> None:
    with client(rpc_websockets.url) as rpc:
        assert rpc.call("rpc.on", ["feedUpdated"]) == {"feedUpdated": "ok"}
        assert rpc.call("subscribers", ["feedUpdated"]) == 1
        assert rpc.call("rpc.off", ["feedUpdated"]) == {"feedUpdated": "ok"}
        assert rpc.call("subscribers", ["feedUpdated"]) == 0
        assert "sum" in rpc.call("__listMethods")


def test_a_batch_keeps_each_result_and_error_apart(rpc_websockets: RpcWebsocketsServer) -> None:
    with client(rpc_websockets.url) as rpc:
        with rpc.batch() as batch:
            total = batch.call("sum", [1, 2, 4])
            failing = batch.call("fail")
            batch.notify("echo", ["ignored"])
            echoed = batch.call("echo", ["x"])
        assert total.result() == 7 and echoed.result() == ["x"]
        with pytest.raises(maxsdk.RpcError) as info:
            failing.result()
        assert info.value.data == {"why": "test", "n": 1}
        assert [r.method for r in batch.results] == ["sum", "fail", "echo"]


def test_eight_threads_calling_at_once_get_their_own_answers(rpc_websockets: RpcWebsocketsServer) -> None:
    errors: list[BaseException] = []
    with client(rpc_websockets.url) as rpc:

        def worker(index: int) -> None:
            try:
                for n in range(100):
                    assert rpc.call("echo", [index, n]) == [index, n]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors and not any(t.is_alive() for t in threads)
        assert rpc.diagnostics().pending_pushes == 0


def test_events_are_a_subscription_style(rpc_websockets: RpcWebsocketsServer) -> None:
    received: queue.Queue[object] = queue.Queue()
    with client(rpc_websockets.url) as rpc:
        feed = rpc.subscribe_event("feedUpdated", received.put)
        assert feed.active and feed.key == "event:feedUpdated"
        assert rpc.call("emit", ["feedUpdated", 50]) == 50
        seqs = [received.get(timeout=5)["seq"] for _ in range(50)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        assert rpc.diagnostics().counters["protocol_errors"] == 0
        assert rpc.diagnostics().counters["unroutable"] == 0
        rpc.call("emitArgs", ["feedUpdated", 1, "two"])
        assert received.get(timeout=5) == [1, "two"]
        feed.unsubscribe()
        assert rpc.call("subscribers", ["feedUpdated"]) == 0


def test_an_unknown_event_is_refused_with_the_servers_answer(rpc_websockets: RpcWebsocketsServer) -> None:
    with client(rpc_websockets.url) as rpc:
        with pytest.raises(maxsdk.SubscriptionError, match="provided event invalid"):
            rpc.subscribe_event("noSuchEvent")
        assert rpc.call("sum", [1]) == 1


def test_login_with_rpc_login_opens_protected_methods_and_events(rpc_websockets: RpcWebsocketsServer) -> None:
    with client(rpc_websockets.url) as anonymous:
        with pytest.raises(maxsdk.RpcError) as info:
            anonymous.call("secret")
        assert info.value.code == -32605
    received: queue.Queue[object] = queue.Queue()
    credentials = {"user": "alice", "password": "wonderland"}
    with client(rpc_websockets.url, auth_method="rpc.login", auth=credentials) as rpc:
        assert rpc.call("secret") == "the secret"
        rpc.subscribe_event("vip", received.put)
        rpc.call("emit", ["vip", 1])
        assert "seq" in received.get(timeout=5)


def test_a_wrong_password_is_a_refused_login(rpc_websockets: RpcWebsocketsServer) -> None:
    rpc = client(rpc_websockets.url, auth_method="rpc.login", auth={"user": "alice", "password": "nope"})
    try:
        with pytest.raises(maxsdk.AuthRefusedError):
            rpc.connect(timeout=5)
    finally:
        rpc.close()


def test_events_are_subscribed_again_after_a_server_restart(rpc_websockets: RpcWebsocketsServer) -> None:
    received: queue.Queue[object] = queue.Queue()
    with client(rpc_websockets.url) as rpc:
        rpc.subscribe_event("feedUpdated", received.put)
        rpc_websockets.restart()
        # The new server process knows nobody until the client has subscribed again.
        wait_until(lambda: _subscribers(rpc) == 1, message="the event subscription to come back")
        rpc.call("emit", ["feedUpdated", 3])
        assert [received.get(timeout=5)["seq"] for _ in range(3)] == [1, 2, 3]


def _subscribers(rpc: maxsdk.JsonRpcClient) -> int:
    try:
        result: int = rpc.call("subscribers", ["feedUpdated"], timeout=1)
        return result
    except maxsdk.MaxsdkError:
        return -1
