"""JsonFormat options for nested, id-keyed, greeted and strict feeds (pure, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest

from maxsdk.errors import ConfigurationError, RemoteProtocolError
from maxsdk.protocol.handler import FrameKind, TopicRef
from maxsdk.protocol.handler_session import NotificationReceived, UpdateReceived
from maxsdk.protocol.jsonfeed import NO_CREDENTIALS, JsonFeedProtocol, JsonFormat
from tests.protocol.test_handler_session import Harness, Waiter

pytestmark = pytest.mark.timeout(30)

ETH_SHAPED = JsonFormat(
    op_field="method",
    args_field="params",
    constant_fields={"jsonrpc": "2.0"},
    subscribe_op="eth_subscribe",
    unsubscribe_op="eth_unsubscribe",
    subscription_key="result",
    topic_field=("params", "subscription"),
    data_field=("params", "result"),
)

NES_SHAPED = JsonFormat(
    op_field="type",
    args_field="path",
    topic_field="path",
    data_field="message",
    update={"type": "pub"},
    notification={"type": "update"},
    topics_as="string",
    subscribe_op="sub",
    unsubscribe_op="unsub",
    is_error=lambda reply: reply.get("statusCode", 200) >= 400,
    auth_op="hello",
    handshake=True,
    op_fields={"hello": {"version": "2"}},
    op_args_fields={"hello": "auth", "message": "message"},
    server_ping={"type": "ping"},
    pong_reply={"type": "ping"},
    pong_id=True,
    ping=None,
)


def test_nested_topic_and_data_paths() -> None:
    protocol = JsonFeedProtocol(ETH_SHAPED)
    message = {"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0x1", "result": {"n": 1}}}
    incoming = protocol.classify(message)
    assert (incoming.kind, incoming.topic, incoming.data) == (FrameKind.UPDATE, "0x1", {"n": 1})
    # A path that runs into a non-object, or is missing, names no topic.
    assert protocol.classify({"params": "x"}).kind is FrameKind.UNKNOWN
    assert protocol.classify({"params": {"result": 1}}).kind is FrameKind.UNKNOWN
    # A numeric id is a key too (as its string).
    assert protocol.classify({"params": {"subscription": 7, "result": 2}}).topic == "7"


def test_subscription_ids_from_the_reply_route_updates_and_unsubscribe() -> None:
    h = Harness(JsonFeedProtocol(ETH_SHAPED), subscribe_batch_size=10)
    h.open()
    waiters = [Waiter("heads"), Waiter("logs")]
    h.session.subscribe_many([("newHeads", None, "H"), ("logs", None, "L")], h.now, 5.0, waiters[0])
    h.drain()
    calls = h.sent()
    # One topic per message: each reply's result is one subscription's id.
    assert [c["params"] for c in calls] == [["newHeads"], ["logs"]]
    assert all(c["jsonrpc"] == "2.0" and c["method"] == "eth_subscribe" for c in calls)
    h.feed({"jsonrpc": "2.0", "id": calls[0]["id"], "result": "0xa"})
    h.feed({"jsonrpc": "2.0", "id": calls[1]["id"], "result": 11})
    assert h.done[waiters[0]].status == "ok"
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "11", "result": "L1"}})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0xa", "result": "H1"}})
    assert [(e.topic, e.data) for e in h.events(UpdateReceived)] == [("logs", "L1"), ("newHeads", "H1")]
    h.session.unsubscribe("newHeads", "H", h.now, 5.0, waiters[1])
    h.drain()
    [unsubscribe] = h.sent()
    assert (unsubscribe["method"], unsubscribe["params"]) == ("eth_unsubscribe", ["0xa"])


def test_a_reply_without_a_usable_id_refuses_the_subscription() -> None:
    protocol = JsonFeedProtocol(ETH_SHAPED)
    refs = [TopicRef("newHeads")]
    for result in (None, {"id": 1}, "", True):
        [outcome] = protocol.subscribe_results(refs, protocol.classify({"id": 1, "result": result}))
        assert not outcome.ok, result
    [refused] = protocol.subscribe_results(refs, protocol.classify({"id": 1, "error": {"code": -1}}))
    assert (refused.ok, refused.error) == (False, {"code": -1})


def test_the_update_pattern_keeps_other_topic_messages_out() -> None:
    protocol = JsonFeedProtocol(NES_SHAPED)
    pub = protocol.classify({"type": "pub", "path": "/a", "message": {"x": 1}})
    assert (pub.kind, pub.topic, pub.data) == (FrameKind.UPDATE, "/a", {"x": 1})
    # A revocation names the path but is not data for it.
    assert protocol.classify({"type": "revoke", "path": "/a", "message": 2}).kind is FrameKind.UNKNOWN


def test_notifications_are_named_by_their_op_field() -> None:
    h = Harness(JsonFeedProtocol(NES_SHAPED))
    h.open()
    h.feed({"type": "update", "message": {"all": 1}})
    h.feed({"type": "revoke", "path": "/a"})
    assert [(e.name, e.data) for e in h.events(NotificationReceived)] == [("update", {"all": 1})]
    assert h.session.counters["unknown_messages"] == 1
    # Without a data field the whole message is the data; a name that is not a string is None.
    protocol = JsonFeedProtocol(JsonFormat(notification={"event": 5}, op_field="event", data_field=None))
    incoming = protocol.classify({"event": 5, "x": 1})
    assert (incoming.kind, incoming.topic, incoming.data) == (FrameKind.NOTIFICATION, None, {"event": 5, "x": 1})


def test_a_handshake_greets_without_credentials_then_with_them() -> None:
    protocol = JsonFeedProtocol(NES_SHAPED)
    assert protocol.auth_message(1, NO_CREDENTIALS) == '{"version":"2","type":"hello","id":1}'
    assert protocol.auth_message(2, {"headers": {}}) == '{"version":"2","type":"hello","auth":{"headers":{}},"id":2}'
    # Per-operation fields and args fields apply to that operation only.
    assert protocol.request(3, "message", {"q": 1}) == '{"type":"message","message":{"q":1},"id":3}'
    assert protocol.subscribe([4], [TopicRef("/a")]) == '{"type":"sub","path":"/a","id":4}'


def test_the_handshake_gates_subscriptions_until_answered() -> None:
    h = Harness(JsonFeedProtocol(NES_SHAPED))
    h.session.credentials = NO_CREDENTIALS
    ready = Waiter()
    h.session.add_ready_waiter(ready)
    h.open()
    [hello] = h.sent()
    sub = Waiter("/a")
    h.session.subscribe("/a", None, "A", h.now, 5.0, sub)
    h.drain()
    assert h.sent() == []  # queued behind the greeting
    h.feed({"type": "hello", "id": hello["id"], "heartbeat": {"interval": 1000, "timeout": 500}})
    assert h.done[ready].status == "ok"
    [subscribe] = h.sent()
    assert subscribe == {"type": "sub", "path": "/a", "id": subscribe["id"]}
    h.feed({"type": "sub", "id": subscribe["id"], "path": "/a"})
    assert h.done[sub].status == "ok"


def test_a_refused_handshake_is_an_auth_failure() -> None:
    h = Harness(JsonFeedProtocol(NES_SHAPED))
    h.session.credentials = NO_CREDENTIALS
    ready = Waiter()
    h.session.add_ready_waiter(ready)
    h.open()
    [hello] = h.sent()
    refusal = {"statusCode": 400, "payload": {"message": "Incorrect protocol version"}}
    h.feed({"type": "hello", "id": hello["id"], **refusal})
    assert h.done[ready].status == "auth_failed"


def test_answers_to_server_pings_carry_fresh_ids() -> None:
    h = Harness(JsonFeedProtocol(NES_SHAPED))
    h.open()
    h.sent()
    h.feed({"type": "ping"})
    h.feed({"type": "ping"})
    assert h.sent() == [{"type": "ping", "id": "pong-1"}, {"type": "ping", "id": "pong-2"}]
    assert h.events(NotificationReceived) == []


def test_is_error_decides_what_a_reply_is() -> None:
    protocol = JsonFeedProtocol(NES_SHAPED)
    ok = protocol.classify({"type": "request", "id": 1, "statusCode": 200, "payload": "x"})
    assert ok.kind is FrameKind.REPLY and ok.error is None
    failed = {"type": "sub", "id": 2, "statusCode": 404, "payload": {"message": "Subscription not found"}}
    assert protocol.classify(failed).error == failed
    assert protocol.classify({"type": "unsub", "id": 3}).error is None
    # A predicate that fails on a reply is a protocol error, not a crash of the reader.
    with pytest.raises(RemoteProtocolError):
        protocol.classify({"type": "request", "id": 4, "statusCode": "teapot"})


@pytest.mark.parametrize(
    "options",
    [
        {"topic_field": ""},
        {"topic_field": ()},
        {"topic_field": ("params", 1)},
        {"data_field": 3},
        {"update": "pub"},
        {"notification": ["update"]},
        {"is_error": "statusCode"},
        {"subscription_key": "id"},
        {"subscription_key": "result", "subscription_confirmation": "none", "id_field": None},
        {"handshake": True, "auth_op": None},
        {"pong_id": True, "id_field": None, "subscription_confirmation": "none"},
        {"op_fields": {"hello": {"op": "x"}}},
        {"op_fields": {"hello": {"id": 1}}},
        {"op_fields": {"hello": "version"}},
        {"op_fields": {"hello": {"n": float("nan")}}},
        {"op_args_fields": {"hello": "id"}},
        {"op_args_fields": {"hello": ""}},
    ],
)
def test_new_options_are_validated(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JsonFormat(**options)


def test_a_one_element_path_is_a_plain_field() -> None:
    assert JsonFormat(topic_field=("channel",), data_field=["params", "data"]).topic_field == "channel"
    assert JsonFormat(data_field=["params", "data"]).data_field == ("params", "data")
