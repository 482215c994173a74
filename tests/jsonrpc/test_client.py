"""JsonRpcClient against the embedded JSON-RPC server over loopback: reliability under faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, signals
from maxsdk.server import JsonRpcServer
from tests.client.helpers import Inbox, SignalLog

pytestmark = pytest.mark.timeout(60)

EXTRA = [
    signals.error_received,
    signals.notification_received,
    signals.subscribed,
    signals.subscription_failed,
]


def fast_rpc(url: str, **options: Any) -> maxsdk.JsonRpcClient:
    options.setdefault("reconnect", Backoff(steps=(0.01, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1, 0.2), jitter="none"))
    options.setdefault("timeout", 5.0)
    options.setdefault("connect_timeout", 5.0)
    return maxsdk.JsonRpcClient(url, **options)


@pytest.fixture
def rpc(jsonrpc_server: JsonRpcServer) -> Iterator[maxsdk.JsonRpcClient]:
    with fast_rpc(jsonrpc_server.url) as client:
        yield client


def test_a_request_times_out_and_its_late_reply_is_ignored(
    rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer
) -> None:
    jsonrpc_server.withhold_replies()
    with pytest.raises(maxsdk.ReplyTimeoutError) as caught:
        rpc.call("echo", ["late"], timeout=0.2)
    assert isinstance(caught.value, TimeoutError) and caught.value.event == "echo"
    assert jsonrpc_server.release_replies() == 1
    assert rpc.call("echo", ["next"]) == ["next"]
    assert rpc.diagnostics().pending_pushes == 0


def test_capacity_exceeded(jsonrpc_server: JsonRpcServer) -> None:
    with fast_rpc(jsonrpc_server.url, max_pending_requests=5) as rpc:
        jsonrpc_server.withhold_replies()
        pending = [rpc.call_nowait("echo", [n]) for n in range(5)]
        with pytest.raises(maxsdk.CapacityError):
            rpc.call_nowait("echo", [5])
        jsonrpc_server.wait_for_messages(lambda r: True, 5)
        jsonrpc_server.release_replies()
        assert [p.wait() for p in pending] == [[n] for n in range(5)]
        assert rpc.call("echo", ["room again"]) == ["room again"]


def test_fifty_threads_each_get_their_own_two_hundred_replies(rpc: maxsdk.JsonRpcClient) -> None:
    threads, calls = 50, 200
    barrier = threading.Barrier(threads)
    wrong: list[tuple[int, int, Any]] = []
    done = [0] * threads

    def caller(index: int) -> None:
        barrier.wait()
        for n in range(calls):
            result = rpc.call("echo", [index, n])
            if result != [index, n]:
                wrong.append((index, n, result))
            done[index] += 1

    workers = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(50)
    assert not wrong and done == [calls] * threads
    assert rpc.diagnostics().pending_pushes == 0


def test_server_notifications_reach_handlers_and_signals(rpc: maxsdk.JsonRpcClient) -> None:
    log = SignalLog(rpc, EXTRA)  # type: ignore[arg-type]
    inbox = Inbox()
    rpc.on("server_event", inbox)
    assert rpc.call("notify_me", ["server_event", {"x": 1}]) is True
    assert inbox.wait_count(1) == [{"x": 1}]
    assert log.wait_for("notification_received")["method"] == "server_event"
    assert all(name.endswith(("dispatch",)) or "-dispatch" in name for name in inbox.threads)


def test_subscribers_share_one_server_subscription_until_the_last_leaves(
    rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer
) -> None:
    first, second = Inbox(), Inbox()
    a = rpc.subscribe(["newHeads"], first)
    b = rpc.subscribe(["newHeads"], second)
    assert a.key == b.key and jsonrpc_server.subscriptions("newHeads") == [a.key]
    subscribes = [r for r in jsonrpc_server.messages() if r.message.get("method") == "eth_subscribe"]
    assert len(subscribes) == 1
    assert jsonrpc_server.publish("newHeads", {"number": 1}) == 1
    assert first.wait_count(1) == [{"number": 1}] and second.wait_count(1) == [{"number": 1}]
    cursor = jsonrpc_server.message_count
    a.unsubscribe()
    assert rpc.call("echo", [1]) == [1]
    assert [r.message["method"] for r in jsonrpc_server.messages(cursor)] == ["echo"]
    b.unsubscribe()
    record = jsonrpc_server.wait_for_message(lambda r: r.message.get("method") == "eth_unsubscribe", since=cursor)
    assert record.message["params"] == [b.key or record.message["params"][0]]
    assert jsonrpc_server.subscriptions() == []


def test_a_refused_subscription_raises_the_rpc_error(rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    jsonrpc_server.refuse_subscriptions("secret*")
    with pytest.raises(maxsdk.RpcError) as caught:
        rpc.subscribe(["secretHeads"])
    assert caught.value.code == -32000 and caught.value.data == {"topic": "secretHeads"}


def test_subscriptions_come_back_after_a_server_restart_in_batches(jsonrpc_server: JsonRpcServer) -> None:
    with fast_rpc(jsonrpc_server.url, subscribe_batch_size=3) as rpc:
        log = SignalLog(rpc, EXTRA)  # type: ignore[arg-type]
        inboxes = {f"t{n}": Inbox() for n in range(7)}
        subs = {topic: rpc.subscribe([topic], inbox) for topic, inbox in inboxes.items()}
        old_keys = {topic: sub.key for topic, sub in subs.items()}
        cursor = jsonrpc_server.message_count
        jsonrpc_server.restart(abrupt=True)
        log.wait_for("subscribed", lambda kw: kw["resubscribed"], count=7)
        frames = [r.message for r in jsonrpc_server.messages(cursor)]
        batches = [f if isinstance(f, list) else [f] for f in frames]
        assert [len(b) for b in batches] == [3, 3, 1]
        assert [m["params"][0] for b in batches for m in b] == list(inboxes)
        for topic, sub in subs.items():
            assert sub.key is not None and sub.key != old_keys[topic] and sub.active
            assert jsonrpc_server.publish(topic, topic.upper()) == 1
        for topic, inbox in inboxes.items():
            assert inbox.wait_count(1) == [topic.upper()]


def test_a_partial_resubscription_failure_is_retried_and_does_not_stop_the_rest(
    jsonrpc_server: JsonRpcServer,
) -> None:
    with fast_rpc(jsonrpc_server.url, subscribe_batch_size=2) as rpc:
        log = SignalLog(rpc, EXTRA)  # type: ignore[arg-type]
        subs = {f"t{n}": rpc.subscribe([f"t{n}"]) for n in range(5)}
        jsonrpc_server.refuse_subscriptions("t3")
        jsonrpc_server.restart(abrupt=True)
        failed = log.wait_for("subscription_failed")
        assert failed["topic"] == 'eth_subscribe:["t3"]' and failed["will_retry"]
        log.wait_for("subscribed", lambda kw: kw["resubscribed"], count=4)
        assert sorted(t for t, s in subs.items() if s.active) == ["t0", "t1", "t2", "t4"]
        jsonrpc_server.allow_subscriptions()
        log.wait_for("subscribed", lambda kw: kw["resubscribed"] and kw["topic"] == 'eth_subscribe:["t3"]')
        assert subs["t3"].active and jsonrpc_server.publish("t3", "back") == 1
        assert subs["t3"].get(5) == "back"


@pytest.mark.parametrize(
    "frame",
    [
        "this is not json",
        '{"jsonrpc": "2.0", "result": 1}',
        '{"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "both"}, "id": 999}',
        '{"jsonrpc": "1.0", "result": 1, "id": 1}',
        "[]",
        "42",
        b"\x00\x01binary",
    ],
    ids=["not json", "no id", "result and error", "wrong version", "empty batch", "scalar", "binary"],
)
def test_malformed_frames_are_reported_and_the_connection_carries_on(
    rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer, frame: str | bytes
) -> None:
    log = SignalLog(rpc, EXTRA)  # type: ignore[arg-type]
    jsonrpc_server.send_raw(frame)
    error = log.wait_for("protocol_error")["error"]
    assert isinstance(error, maxsdk.RemoteProtocolError)
    assert rpc.call("echo", ["still here"]) == ["still here"]
    diagnostics = rpc.diagnostics()
    assert diagnostics.protocol_errors == 1 and diagnostics.reconnects == 0


def test_an_invalid_reply_fails_its_call_at_once(rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer) -> None:
    jsonrpc_server.withhold_replies()
    pending = rpc.call_nowait("echo", [1])
    jsonrpc_server.wait_for_message()
    jsonrpc_server.send_raw(f'{{"jsonrpc": "2.0", "id": {pending.request_id}}}')
    with pytest.raises(maxsdk.RemoteProtocolError):
        pending.wait(5)


def test_a_dropped_connection_loses_plain_calls_and_resends_durable_ones(
    rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer
) -> None:
    jsonrpc_server.withhold_replies()
    plain = rpc.call_nowait("echo", ["plain"])
    durable = rpc.call_nowait("echo", ["durable"], durable=True)
    jsonrpc_server.wait_for_messages(lambda r: True, 2)
    jsonrpc_server.release_replies(send=False)
    cursor = jsonrpc_server.message_count
    jsonrpc_server.drop_connections()
    with pytest.raises(maxsdk.ReplyLostError):
        plain.wait(5)
    assert durable.wait(5) == ["durable"]
    [again] = jsonrpc_server.messages(cursor)
    assert again.message["id"] == durable.request_id


def test_calls_made_while_reconnecting_are_sent_once_connected(
    rpc: maxsdk.JsonRpcClient, jsonrpc_server: JsonRpcServer
) -> None:
    log = SignalLog(rpc)  # type: ignore[arg-type]
    jsonrpc_server.stop(abrupt=True)
    log.wait_for("disconnected")
    pending = rpc.call_nowait("echo", ["queued"])
    jsonrpc_server.start()
    assert pending.wait(5) == ["queued"]


def test_no_pong_means_a_dead_link_and_a_reconnect(jsonrpc_server: JsonRpcServer) -> None:
    with fast_rpc(jsonrpc_server.url, ping_interval=0.1, ping_timeout=0.2) as rpc:
        log = SignalLog(rpc)  # type: ignore[arg-type]
        log.wait_for("heartbeat")  # WebSocket pings are answered
        jsonrpc_server.stop_answering_pings()
        disconnected = log.wait_for("disconnected")
        assert disconnected["reason"] == "heartbeat_timeout" and disconnected["will_reconnect"]
        jsonrpc_server.answer_pings()
        log.wait_for("connected", lambda kw: kw["reconnect"])
        assert rpc.call("echo", [1]) == [1]


def test_auth_on_connect(jsonrpc_server_factory: Any) -> None:
    server = jsonrpc_server_factory(token="secret")
    calls = []

    def credentials() -> dict[str, str]:
        calls.append(1)
        return {"token": "secret"}

    with fast_rpc(server.url, auth=credentials, auth_method="auth") as rpc:
        assert rpc.call("echo", ["in"]) == ["in"]
        server.drop_connections()
        server.wait_for_opened(2)
        assert rpc.call("echo", ["again"], durable=True) == ["again"]
    assert len(calls) >= 2  # evaluated again for the new connection
    methods = [r.message["method"] for r in server.messages()]
    assert methods[0] == "auth" and methods.count("auth") >= 2


def test_refused_credentials_stop_the_client(jsonrpc_server_factory: Any) -> None:
    server = jsonrpc_server_factory(token="secret")
    rpc = fast_rpc(server.url, auth={"token": "wrong"}, auth_method="auth")
    try:
        with pytest.raises(maxsdk.AuthRefusedError) as caught:
            rpc.connect()
        assert isinstance(caught.value, maxsdk.AuthenticationError) and caught.value.status is None
        assert caught.value.response["code"] == -32002
        assert server.connections_opened == 1
    finally:
        rpc.close()


def test_ping_measures_a_round_trip(rpc: maxsdk.JsonRpcClient) -> None:
    rtt = rpc.ping()
    assert rtt is not None and 0 <= rtt < 5


def test_auth_messages_are_never_logged(jsonrpc_server_factory: Any, caplog: Any) -> None:
    import logging

    server = jsonrpc_server_factory(token="s3cr3t-token-value")
    caplog.set_level(logging.DEBUG, logger="maxsdk")
    with fast_rpc(server.url, auth={"token": "s3cr3t-token-value"}, auth_method="auth") as rpc:
        assert rpc.call("echo", ["x"]) == ["x"]
    client_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("maxsdk.server")]
    assert any("<authentication message redacted>" in line for line in client_logs)
    assert not any("s3cr3t-token-value" in line for line in client_logs)


def test_a_client_inherited_through_fork_refuses_to_work_in_the_child(rpc: maxsdk.JsonRpcClient) -> None:
    import os

    assert rpc.call("echo", [1]) == [1]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        outcome = b"no error"
        try:
            rpc.call("echo", [2])
        except maxsdk.ForkedClientError:
            outcome = b"ForkedClientError"
        except BaseException as exc:
            outcome = repr(exc).encode()
        rpc.close()
        os.write(write, outcome)
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 200) == b"ForkedClientError"
    os.close(read)
    assert rpc.call("echo", [3]) == [3]
