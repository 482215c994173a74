"""JsonClient (a feed described by configuration) against the embedded topic server over loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import maxsdk
from maxsdk import Backoff, JsonFormat, signals
from maxsdk.server import FeedError, JsonTopicServer
from tests.client.helpers import Inbox, SignalLog

pytestmark = pytest.mark.timeout(60)

EXTRA = [signals.subscribed, signals.subscription_failed, signals.notification_received]
CONTROL_FORMAT = JsonFormat(
    subscription_confirmation="control",
    subscribed={"event": "subscribed"},
    subscribe_error={"event": "error"},
)


def fast_feed(url: str, **options: Any) -> maxsdk.JsonClient:
    options.setdefault("reconnect", Backoff(steps=(0.01, 0.05, 0.1), jitter="none"))
    options.setdefault("resubscribe", Backoff(steps=(0.05, 0.1, 0.2), jitter="none"))
    options.setdefault("timeout", 5.0)
    options.setdefault("connect_timeout", 5.0)
    return maxsdk.JsonClient(url, **options)


@pytest.fixture
def feed(json_topic_server: JsonTopicServer) -> Iterator[maxsdk.JsonClient]:
    with fast_feed(json_topic_server.url) as client:
        yield client


def subscribe_messages(server: JsonTopicServer, since: int = 0) -> list[list[str]]:
    return [r.message["args"] for r in server.messages(since) if r.message.get("op") == "subscribe"]


def test_requests_are_correlated_with_their_replies(
    feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer
) -> None:
    @json_topic_server.operation("double")
    def double(args: Any) -> Any:
        return args * 2

    @json_topic_server.operation("refuse")
    def refuse(args: Any) -> Any:
        raise FeedError(409, "conflict")

    wrong: list[Any] = []

    def caller(index: int) -> None:
        for n in range(100):
            if feed.request("double", index * 1000 + n) != 2 * (index * 1000 + n):
                wrong.append((index, n))

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not wrong
    with pytest.raises(maxsdk.RpcError) as caught:
        feed.request("refuse")
    assert (caught.value.code, caught.value.message) == (409, "conflict")
    with pytest.raises(maxsdk.RpcError):
        feed.request("no_such_op")


def test_subscribers_share_a_topic_and_the_last_one_unsubscribes(
    feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer
) -> None:
    first, second = Inbox(), Inbox()
    a = feed.subscribe("trades.BTC", first)
    b = feed.subscribe("trades.BTC", second)
    assert subscribe_messages(json_topic_server) == [["trades.BTC"]]
    json_topic_server.publish("trades.BTC", {"price": 1})
    assert first.wait_count(1) == [{"price": 1}] and second.wait_count(1) == [{"price": 1}]
    a.unsubscribe()
    assert json_topic_server.topics() == {"trades.BTC"}
    b.unsubscribe()
    json_topic_server.wait_for_message(lambda r: r.message.get("op") == "unsubscribe")
    assert json_topic_server.topics() == set()
    a.unsubscribe()  # idempotent


def test_updates_without_a_handler_are_buffered(feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer) -> None:
    with feed.subscribe("ticks") as sub:
        for n in range(3):
            json_topic_server.publish("ticks", n)
        assert [sub.get(5) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(maxsdk.MaxsdkTimeoutError):
            sub.get(0.05)


def test_subscriptions_come_back_in_batches_after_a_server_restart(json_topic_server: JsonTopicServer) -> None:
    with fast_feed(json_topic_server.url, subscribe_batch_size=4) as feed:
        log = SignalLog(feed, EXTRA)  # type: ignore[arg-type]
        topics = [f"book.{n}" for n in range(10)]
        subs = feed.subscribe_many(topics)
        assert subscribe_messages(json_topic_server) == [topics[0:4], topics[4:8], topics[8:10]]
        cursor = json_topic_server.message_count
        json_topic_server.restart()
        log.wait_for("subscribed", lambda kw: kw["resubscribed"], count=10)
        assert subscribe_messages(json_topic_server, cursor) == [topics[0:4], topics[4:8], topics[8:10]]
        assert json_topic_server.topics() == set(topics)
        json_topic_server.publish("book.7", "after restart")
        assert subs[7].get(5) == "after restart"


def test_a_refused_batch_does_not_stop_the_others_and_is_retried_topic_by_topic(
    json_topic_server: JsonTopicServer,
) -> None:
    with fast_feed(json_topic_server.url, subscribe_batch_size=3) as feed:
        log = SignalLog(feed, EXTRA)  # type: ignore[arg-type]
        topics = [f"t{n}" for n in range(7)]
        feed.subscribe_many(topics)
        json_topic_server.refuse_subscriptions("t4")
        cursor = json_topic_server.message_count
        json_topic_server.drop_connections()
        # [t0 t1 t2] ok, [t3 t4 t5] refused as a whole, [t6] ok; then t3, t4, t5 one by one.
        log.wait_for("subscribed", lambda kw: kw["resubscribed"], count=6)
        failed = log.wait_for("subscription_failed", lambda kw: kw["topic"] == "t4", count=2)
        assert failed["will_retry"]
        sent = subscribe_messages(json_topic_server, cursor)
        assert sent[:3] == [topics[0:3], topics[3:6], topics[6:7]]
        assert {tuple(args) for args in sent[3:]} >= {("t3",), ("t4",), ("t5",)}
        assert json_topic_server.topics() == set(topics) - {"t4"}
        json_topic_server.allow_subscriptions()
        log.wait_for("subscribed", lambda kw: kw["topic"] == "t4" and kw["resubscribed"])
        assert json_topic_server.topics() == set(topics)


def test_control_confirmations_and_a_partial_failure_inside_one_batch(json_topic_server_factory: Any) -> None:
    server = json_topic_server_factory(confirmations="control")
    server.refuse_subscriptions("bad")
    with fast_feed(server.url, format=CONTROL_FORMAT, subscribe_batch_size=10) as feed:
        good = feed.subscribe("good")
        with pytest.raises(maxsdk.SubscriptionError) as caught:
            feed.subscribe("bad")
        assert isinstance(caught.value, maxsdk.JoinError) and caught.value.topic == "bad"
        server.publish("good", 1)
        assert good.get(5) == 1
        log = SignalLog(feed, EXTRA)  # type: ignore[arg-type]
        subs = feed.subscribe_many(["a", "b", "c"])
        server.refuse_subscriptions("b")
        server.drop_connections()
        log.wait_for("subscribed", lambda kw: kw["resubscribed"], count=3)  # good, a, c
        assert log.wait_for("subscription_failed")["topic"] == "b"
        assert not subs[1].active and subs[0].active and subs[2].active


def test_a_refused_first_subscription_raises(feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer) -> None:
    json_topic_server.refuse_subscriptions("private.*")
    with pytest.raises(maxsdk.SubscriptionError) as caught:
        feed.subscribe("private.orders")
    assert caught.value.response["code"] == 403
    assert feed.diagnostics().channels == ()


def test_server_pings_are_answered_and_client_pings_detect_a_dead_link(json_topic_server: JsonTopicServer) -> None:
    with fast_feed(json_topic_server.url, ping_interval=0.1, ping_timeout=0.2) as feed:
        log = SignalLog(feed)  # type: ignore[arg-type]
        log.wait_for("heartbeat")
        json_topic_server.ping_clients()
        json_topic_server.wait_for_message(lambda r: r.message == {"op": "pong"})
        json_topic_server.stop_answering_pings()
        assert log.wait_for("disconnected")["reason"] == "heartbeat_timeout"
        json_topic_server.answer_pings()
        log.wait_for("connected", lambda kw: kw["reconnect"])


def test_a_reconnect_message_makes_the_client_reconnect(
    feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer
) -> None:
    log = SignalLog(feed)  # type: ignore[arg-type]
    sub = feed.subscribe("status")
    json_topic_server.request_reconnect()
    assert log.wait_for("disconnected")["reason"] == "server_requested_reconnect"
    log.wait_for("connected", lambda kw: kw["reconnect"])
    json_topic_server.wait_for_connections(1)
    json_topic_server.wait_for_message(lambda r: r.message.get("op") == "subscribe" and r.connection_id > 1)
    json_topic_server.publish("status", "ok")
    assert sub.get(5) == "ok"


def test_auth_after_connecting(json_topic_server_factory: Any) -> None:
    server = json_topic_server_factory(token="k")
    with fast_feed(server.url, auth={"token": "k"}) as feed:
        assert feed.request("echo", "hi") == "hi"
        assert server.messages()[0].message["op"] == "auth"
    refused = fast_feed(server.url, auth={"token": "nope"})
    try:
        with pytest.raises(maxsdk.AuthRefusedError):
            refused.connect()
        with pytest.raises(maxsdk.AuthRefusedError):
            refused.request("echo", 1)
    finally:
        refused.close()


@pytest.mark.parametrize("frame", ["{broken", "[1, 2]", "7", b"\xff\x00"], ids=["json", "array", "scalar", "binary"])
def test_malformed_frames_are_reported_and_the_connection_carries_on(
    feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer, frame: str | bytes
) -> None:
    log = SignalLog(feed)  # type: ignore[arg-type]
    json_topic_server.send_raw(frame)
    assert isinstance(log.wait_for("protocol_error")["error"], maxsdk.RemoteProtocolError)
    assert feed.request("echo", 1) == 1
    assert feed.diagnostics().protocol_errors == 1 and feed.diagnostics().reconnects == 0


def test_unsolicited_topics_reach_on_handlers(feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer) -> None:
    inbox = Inbox()
    feed.on("announcements", inbox)
    json_topic_server.broadcast_json({"topic": "announcements", "data": {"text": "hello"}})
    assert inbox.wait_count(1) == [{"text": "hello"}]


def test_delayed_replies_still_reach_their_callers(feed: maxsdk.JsonClient, json_topic_server: JsonTopicServer) -> None:
    json_topic_server.delay_replies(0.2)
    pending = [feed.request_nowait("echo", n) for n in range(5)]
    assert [p.wait() for p in pending] == list(range(5))
    with pytest.raises(maxsdk.ReplyTimeoutError):
        feed.request("echo", "slow", timeout=0.05)
