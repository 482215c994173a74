"""JSON-RPC subscription styles, extension methods, late confirmations and feed formats (pure, fake clock)."""

from __future__ import annotations

import pytest

from maxsdk.errors import ConfigurationError
from maxsdk.protocol.handler import FrameKind
from maxsdk.protocol.handler_session import (
    Authenticated,
    NotificationReceived,
    SubscriptionChanged,
    UnroutableUpdate,
    UpdateReceived,
)
from maxsdk.protocol.jsonfeed import JsonFeedProtocol, JsonFormat
from maxsdk.protocol.jsonrpc import EVENT_KEY_PREFIX, JsonRpcProtocol
from tests.protocol.test_handler_session import Harness, Waiter

pytestmark = pytest.mark.timeout(30)

ETH = ("eth_subscribe", ["newHeads"], "eth_unsubscribe")


def subscribed(h: Harness, topic: str, args: tuple[object, ...], key: object, timeout: float = 5.0) -> Waiter:
    w = Waiter(topic)
    h.session.subscribe(topic, args, topic.upper(), h.now, timeout, w)
    [call] = h.sent()
    h.feed({"jsonrpc": "2.0", "result": key, "id": call["id"]})
    assert h.done[w].status == "ok"
    return w


# -- rpc.* extension methods ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["rpc.on", "rpc.off", "rpc.login", "rpc.discover"])
def test_rpc_extension_methods_are_sendable_in_calls_notifications_and_batches(method: str) -> None:
    protocol = JsonRpcProtocol()
    assert protocol.request(1, method, ["x"]) == f'{{"jsonrpc":"2.0","method":"{method}","params":["x"],"id":1}}'
    assert protocol.notification(method, None) == f'{{"jsonrpc":"2.0","method":"{method}"}}'
    assert f'"method":"{method}"' in str(protocol.batch([(2, method, None), (None, "other", None)]))


# -- subscription-id updates, whatever their method ------------------------------------------------


def test_an_update_reaches_its_subscription_whatever_the_notification_method() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    subscribed(h, "heads", ("subscribe", ["newHeads"], "unsubscribe"), "sub1")
    h.feed({"jsonrpc": "2.0", "method": "subscription", "params": {"subscription": "sub1", "result": {"n": 1}}})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "sub1", "result": {"n": 2}}})
    assert [(e.topic, e.data) for e in h.events(UpdateReceived)] == [("heads", {"n": 1}), ("heads", {"n": 2})]
    assert h.events(NotificationReceived) == []
    assert h.session.counters["unroutable"] == 0


def test_integer_subscription_ids_route_too() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    subscribed(h, "heads", ETH, 7)
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": 7, "result": "x"}})
    assert [e.data for e in h.events(UpdateReceived)] == ["x"]


def test_unroutable_updates_are_counted_reported_once_per_name_and_delivered_by_method() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    for n in range(3):
        h.feed({"jsonrpc": "2.0", "method": "subscription", "params": {"subscription": "gone", "result": n}})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "gone", "result": 9}})
    assert h.session.counters["unroutable"] == 4
    assert h.events(UnroutableUpdate) == [
        UnroutableUpdate("subscription", "gone"),
        UnroutableUpdate("eth_subscription", "gone"),
    ]
    names = [e.name for e in h.events(NotificationReceived)]
    assert names == ["subscription"] * 3 + ["eth_subscription"]


def test_a_configured_update_method_without_a_subscription_id_counts_as_unroutable() -> None:
    h = Harness(JsonRpcProtocol(update_methods=("subscription",)))
    h.open()
    h.feed({"jsonrpc": "2.0", "method": "subscription", "params": [1, 2]})
    h.feed({"jsonrpc": "2.0", "method": "ordinary", "params": [1, 2]})
    assert h.session.counters["unroutable"] == 1
    assert [e.name for e in h.events(NotificationReceived)] == ["subscription", "ordinary"]


def test_update_method_options_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        JsonRpcProtocol(update_methods="subscription")
    with pytest.raises(ConfigurationError):
        JsonRpcProtocol(auth_method="")
    protocol = JsonRpcProtocol()
    protocol.add_update_method("mine")
    assert protocol.is_update_method("mine") and protocol.is_update_method("parity_subscription")
    assert not protocol.is_update_method("other")


# -- late confirmations -----------------------------------------------------------------------------


def test_a_subscribe_confirmed_after_its_timeout_is_undone_and_counted() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    w = Waiter()
    h.session.subscribe("heads", ETH, "S", h.now, 2.0, w)
    [call] = h.sent()
    h.advance(2.5)
    assert h.done[w].status == "timeout" and "heads" not in h.session.subscriptions
    h.feed({"jsonrpc": "2.0", "result": "0xlate", "id": call["id"]})
    [undo] = h.sent()
    assert undo["method"] == "eth_unsubscribe" and undo["params"] == ["0xlate"]
    assert h.session.counters["late_subscriptions_undone"] == 1
    assert h.session.counters["unknown_replies"] == 0
    # Its updates are not anybody's: they stay unroutable, never delivered as the topic's.
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0xlate", "result": 1}})
    assert h.events(UpdateReceived) == []


def test_a_late_refusal_of_an_abandoned_subscribe_sends_nothing() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    h.session.subscribe("heads", ETH, "S", h.now, 2.0, Waiter())
    [call] = h.sent()
    h.advance(2.5)
    h.feed({"jsonrpc": "2.0", "error": {"code": -32000, "message": "no"}, "id": call["id"]})
    assert h.sent() == [] and h.session.counters["late_subscriptions_undone"] == 0


def test_a_late_confirmation_of_a_timed_out_resubscription_is_adopted() -> None:
    h = Harness(JsonRpcProtocol(), subscribe_timeout=2.0)
    h.open()
    subscribed(h, "heads", ETH, "0x1")
    h.close()
    h.open()
    [again] = h.sent()
    h.advance(2.5)  # the resubscription timed out: retried later
    assert h.session.subscriptions.get("heads").state == "failed"
    h.feed({"jsonrpc": "2.0", "result": "0x2", "id": again["id"]})
    assert h.session.subscriptions.get("heads").state == "active"
    assert h.session.subscriptions.get("heads").key == "0x2"
    assert h.session.counters["late_subscriptions_adopted"] == 1
    assert h.sent() == []
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0x2", "result": 3}})
    assert [e.data for e in h.events(UpdateReceived)] == [3]


def test_abandoned_subscribes_are_forgotten_with_the_connection() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    h.session.subscribe("heads", ETH, "S", h.now, 2.0, Waiter())
    [call] = h.sent()
    h.advance(2.5)
    h.close()
    h.open()
    h.feed({"jsonrpc": "2.0", "result": "0xlate", "id": call["id"]})
    assert h.sent() == [] and h.session.counters["unknown_replies"] == 1


# -- rpc-websockets named events --------------------------------------------------------------------

EVENT = ("rpc.on", ["feedUpdated"], "rpc.off", "event")


def test_named_events_subscribe_with_rpc_on_receive_notifications_and_leave_with_rpc_off() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    topic = EVENT_KEY_PREFIX + "feedUpdated"
    w = Waiter()
    h.session.subscribe(topic, EVENT, "S", h.now, 5.0, w)
    [call] = h.sent()
    assert call == {"jsonrpc": "2.0", "method": "rpc.on", "params": ["feedUpdated"], "id": call["id"]}
    h.feed({"jsonrpc": "2.0", "result": {"feedUpdated": "ok"}, "id": call["id"]})
    assert h.done[w].status == "ok"
    h.feed({"notification": "feedUpdated", "params": {"n": 1}})
    h.feed({"notification": "feedUpdated", "params": [1, 2]})
    assert [e.data for e in h.events(UpdateReceived)] == [{"n": 1}, [1, 2]]
    assert h.session.counters["protocol_errors"] == 0
    h.session.unsubscribe(topic, "S", h.now, 5.0, Waiter())
    [off] = h.sent()
    assert off["method"] == "rpc.off" and off["params"] == ["feedUpdated"]


def test_an_event_the_server_does_not_know_is_a_refused_subscription() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    w = Waiter()
    h.session.subscribe(EVENT_KEY_PREFIX + "nope", ("rpc.on", ["nope"], "rpc.off", "event"), "S", h.now, 5.0, w)
    [call] = h.sent()
    h.feed({"jsonrpc": "2.0", "result": {"nope": "provided event invalid"}, "id": call["id"]})
    assert h.done[w].status == "error" and "provided event invalid" in h.done[w].error["message"]
    failed = h.events(SubscriptionChanged)[-1]
    assert failed.state == "failed"


def test_an_event_notification_without_a_subscription_is_delivered_by_its_name() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    h.feed({"notification": "news", "params": {"a": 1}})
    [note] = h.events(NotificationReceived)
    assert (note.name, note.data) == ("news", {"a": 1})


def test_a_malformed_event_notification_is_a_protocol_error() -> None:
    assert JsonRpcProtocol().classify({"notification": 5, "params": {}}).kind is FrameKind.INVALID


def test_a_login_answered_false_is_refused() -> None:
    h = Harness(JsonRpcProtocol(auth_method="rpc.login"))
    h.session.credentials = {"user": "u", "password": "p"}
    h.open()
    [login] = h.sent()
    assert login["method"] == "rpc.login"
    h.feed({"jsonrpc": "2.0", "result": False, "id": login["id"]})
    assert h.events(Authenticated) == [Authenticated(False, False)]


# -- JSON feed formats ------------------------------------------------------------------------------


def test_feed_keepalives_follow_a_renamed_op_field() -> None:
    fmt = JsonFormat(op_field="method", args_field="params")
    protocol = JsonFeedProtocol(fmt)
    assert protocol.ping(1) == '{"method":"ping"}'
    assert protocol.classify({"method": "pong"}).kind is FrameKind.PONG
    assert protocol.classify({"method": "ping"}).kind is FrameKind.PING
    assert protocol.pong(protocol.classify({"method": "ping"})) == '{"method":"pong"}'
    assert protocol.reconnect_reason(protocol.classify({"method": "reconnect"})) == "server_requested_reconnect"
    # The literal op-named messages mean nothing to this feed any more.
    assert protocol.classify({"op": "pong"}).kind is FrameKind.UNKNOWN


def test_explicit_keepalive_patterns_and_none_still_win() -> None:
    fmt = JsonFormat(op_field="method", ping={"type": "hb"}, pong=None, server_ping=None)
    assert (fmt.ping, fmt.pong, fmt.server_ping, fmt.pong_reply) == ({"type": "hb"}, None, None, {"method": "pong"})


def test_feed_constant_fields_go_into_every_message() -> None:
    fmt = JsonFormat(op_field="method", args_field="params", constant_fields={"jsonrpc": "2.0"})
    protocol = JsonFeedProtocol(fmt)
    assert protocol.request(3, "sub", ["a"]) == '{"jsonrpc":"2.0","method":"sub","params":["a"],"id":3}'
    assert protocol.ping(4) == '{"jsonrpc":"2.0","method":"ping"}'
    assert protocol.pong(protocol.classify({"method": "ping"})) == '{"jsonrpc":"2.0","method":"pong"}'
    assert protocol.auth_message(5, {"k": 1}) == '{"jsonrpc":"2.0","method":"auth","params":{"k":1},"id":5}'


@pytest.mark.parametrize(
    "fields",
    [{"op": "x"}, {"args": 1}, {"id": 1}, {"n": float("nan")}, {1: "x"}, "jsonrpc"],
)
def test_feed_constant_fields_are_validated(fields: object) -> None:
    with pytest.raises(ConfigurationError):
        JsonFormat(constant_fields=fields)  # type: ignore[arg-type]
