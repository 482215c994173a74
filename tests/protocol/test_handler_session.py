"""HandlerSession, PendingTable, RequestIds and SubscriptionTable with a fake clock (no I/O, no sleeping).

Frames the session sends are read back with ``json``; frames fed in are
written with ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from maxsdk.errors import CapacityError, LocalProtocolError, RemoteProtocolError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.handler import WEBSOCKET_PING, FrameKind, Incoming, ProtocolHandler
from maxsdk.protocol.handler_session import (
    Authenticated,
    ErrorReceived,
    HandlerSession,
    HandlerSessionConfig,
    NotificationReceived,
    ProtocolErrorReported,
    SubscriptionChanged,
    UpdateReceived,
)
from maxsdk.protocol.jsonfeed import JsonFeedProtocol, JsonFormat
from maxsdk.protocol.jsonrpc import JsonRpcProtocol
from maxsdk.protocol.pending import PendingRequest, PendingTable, RequestIds
from maxsdk.protocol.subscriptions import SubscriptionTable

pytestmark = pytest.mark.timeout(30)


class Waiter:
    def __init__(self, label: str = "") -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<Waiter {self.label}>"


class Harness:
    """Drives a session like the engine does, with a fake clock."""

    def __init__(self, handler: ProtocolHandler, **config: Any) -> None:
        config.setdefault("ping_interval", None)
        config.setdefault("resubscribe", Backoff(steps=(1.0, 2.0), jitter="none"))
        self.session = HandlerSession(handler, HandlerSessionConfig(**config))
        self.handler = handler
        self.now = 100.0
        self.done: dict[Any, Any] = {}

    def open(self) -> None:
        self.session.connection_opened(self.now)
        self.drain()

    def close(self) -> None:
        self.session.connection_closed(self.now)
        self.drain()

    def sent(self) -> list[Any]:
        frames = []
        while self.session.outgoing:
            frame = self.session.outgoing.popleft()
            frames.append(frame if type(frame) is not str else json.loads(frame))
        return frames

    def feed(self, value: Any) -> None:
        text = json.dumps(value)
        self.session.receive(self.handler.classify(self.handler.decode_text(text)), self.now)
        self.drain()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.session.on_deadline(self.now)
        self.drain()

    def drain(self) -> None:
        completions, _ = self.session.take_output()
        for waiter, outcome in completions:
            if waiter is not None:
                self.done[waiter] = outcome

    def events(self, kind: type) -> list[Any]:
        return [e for e in self.session.events if type(e) is kind]


def feed_harness(**config: Any) -> Harness:
    return Harness(JsonFeedProtocol(), **config)


# -- ids and tables -------------------------------------------------------------------------------------


def test_request_ids_are_unique_increasing_and_sortable() -> None:
    ints = RequestIds()
    values = [ints.next() for _ in range(1000)]
    assert values == sorted(values) and len(set(values)) == 1000
    strings = RequestIds(strings=True, prefix="c1-")
    texts = [strings.next() for _ in range(1000)]
    assert texts == sorted(texts) and len(set(texts)) == 1000 and texts[0] == "c1-000000000001"


def test_pending_table_bounds_expires_in_deadline_order_and_splits_on_loss() -> None:
    table = PendingTable(max_pending=3)
    entries = [PendingRequest(i, "call", "m", None, deadline) for i, deadline in ((1, 5.0), (2, 3.0), (3, 4.0))]
    for entry in entries:
        table.add(entry)
    with pytest.raises(CapacityError):
        table.add(PendingRequest(4, "call", "m", None, 9.0))
    assert [e.request_id for e in table.expire(4.0)] == [2, 3]
    assert table.next_deadline() == 5.0 and len(table) == 1
    durable = PendingRequest(5, "call", "m", None, 9.0, durable=True, sent=True)
    table.add(durable)
    entries[0].sent = True
    lost, kept = table.connection_lost()
    assert lost == [entries[0]] and kept == [durable] and not durable.sent and 5 in table


def test_subscription_table_shares_topics_and_routes_by_key() -> None:
    table = SubscriptionTable()
    a, b = object(), object()
    sub, first = table.add("t", None, a)
    assert first
    assert table.add("t", None, b) == (sub, False)
    table.set_key(sub, "0xabc")
    assert table.route("0xabc") is sub and table.route("t") is sub
    assert table.remove_subscriber("t", a) is None
    assert table.remove_subscriber("t", b) is sub and "t" not in table
    assert table.route("0xabc") is None


# -- requests ---------------------------------------------------------------------------------------------


def test_a_reply_completes_its_own_request() -> None:
    h = feed_harness()
    h.open()
    w1, w2 = Waiter("1"), Waiter("2")
    id1 = h.session.request("echo", {"a": 1}, h.now, 5.0, w1)
    id2 = h.session.request("echo", {"a": 2}, h.now, 5.0, w2)
    assert isinstance(id1, int) and isinstance(id2, int) and id2 > id1
    assert h.sent() == [{"op": "echo", "args": {"a": 1}, "id": id1}, {"op": "echo", "args": {"a": 2}, "id": id2}]
    h.feed({"id": id2, "result": "two"})
    h.feed({"id": id1, "error": {"code": 7, "message": "no"}})
    assert (h.done[w2].status, h.done[w2].result) == ("ok", "two")
    assert (h.done[w1].status, h.done[w1].error) == ("error", {"code": 7, "message": "no"})
    assert h.session.pending_count == 0


def test_requests_time_out_on_their_own_deadlines() -> None:
    h = feed_harness()
    h.open()
    short, long = Waiter("short"), Waiter("long")
    h.session.request("a", None, h.now, 1.0, short)
    h.session.request("b", None, h.now, 3.0, long)
    assert h.session.take_new_deadline() == h.now + 1.0
    h.advance(1.0)
    assert h.done[short].status == "timeout" and long not in h.done
    assert h.session.next_deadline() == pytest.approx(h.now + 2.0)
    h.advance(2.0)
    assert h.done[long].status == "timeout"
    assert h.session.counters["request_timeouts"] == 2
    h.feed({"id": 1, "result": "late"})  # a late reply is counted, not delivered
    assert h.session.counters["unknown_replies"] == 1


def test_capacity_is_bounded() -> None:
    h = feed_harness(max_pending=2)
    h.open()
    h.session.request("a", None, h.now, 5.0, Waiter())
    h.session.request("b", None, h.now, 5.0, Waiter())
    with pytest.raises(CapacityError):
        h.session.request("c", None, h.now, 5.0, Waiter())
    assert len(h.sent()) == 2


def test_requests_wait_for_the_connection_then_go_in_order() -> None:
    h = feed_harness()
    w = Waiter()
    h.session.request("a", 1, h.now, 5.0, w)
    h.session.notify("b", 2)
    h.session.request("c", 3, h.now, 5.0, Waiter())
    assert h.sent() == []
    h.open()
    assert [f["op"] for f in h.sent()] == ["a", "b", "c"]


def test_connection_loss_fails_sent_requests_and_resends_durable_ones() -> None:
    h = feed_harness()
    h.open()
    plain, durable = Waiter("plain"), Waiter("durable")
    h.session.request("a", None, h.now, 5.0, plain)
    durable_id = h.session.request("b", None, h.now, 5.0, durable, durable=True)
    h.sent()
    h.close()
    assert h.done[plain].status == "lost" and durable not in h.done
    h.open()
    assert h.sent() == [{"op": "b", "id": durable_id}]
    h.feed({"id": durable_id, "result": 1})
    assert h.done[durable].status == "ok"


# -- subscriptions ----------------------------------------------------------------------------------------


def test_subscribers_share_one_server_subscription_and_the_last_one_unsubscribes() -> None:
    h = feed_harness()
    h.open()
    first, second = Waiter("first"), Waiter("second")
    h.session.subscribe("t", None, "A", h.now, 5.0, first)
    [message] = h.sent()
    assert message["op"] == "subscribe" and message["args"] == ["t"]
    h.session.subscribe("t", None, "B", h.now, 5.0, second)
    assert h.sent() == [] and second not in h.done
    h.feed({"id": message["id"], "result": {}})
    assert h.done[first].status == "ok" and h.done[second].status == "ok"
    h.feed({"topic": "t", "data": 1})
    [update] = h.events(UpdateReceived)
    assert update.subscribers == ("A", "B") and update.data == 1
    h.session.unsubscribe("t", "A", h.now, 5.0, Waiter())
    assert h.sent() == []
    h.session.unsubscribe("t", "B", h.now, 5.0, Waiter())
    [unsubscribe] = h.sent()
    assert unsubscribe["op"] == "unsubscribe" and unsubscribe["args"] == ["t"]


def test_live_topics_are_resubscribed_in_batches_after_a_reconnect() -> None:
    h = feed_harness(subscribe_batch_size=3)
    h.open()
    topics = [f"t{i}" for i in range(8)]
    for topic in topics:
        h.session.subscribe(topic, None, topic.upper(), h.now, 5.0, Waiter())
        [message] = h.sent()
        h.feed({"id": message["id"], "result": {}})
    h.close()
    h.open()
    batches = h.sent()
    assert [b["args"] for b in batches] == [topics[0:3], topics[3:6], topics[6:8]]
    for message in batches:
        h.feed({"id": message["id"], "result": {}})
    resubscribed = [e for e in h.events(SubscriptionChanged) if e.resubscribed and e.state == "active"]
    assert [e.topic for e in resubscribed] == topics


def test_a_failed_batch_does_not_stop_the_others_and_its_topics_are_retried_one_by_one() -> None:
    h = feed_harness(subscribe_batch_size=2)
    h.open()
    topics = ["a", "b", "c", "d", "e"]
    for topic in topics:
        h.session.subscribe(topic, None, topic, h.now, 5.0, Waiter())
        h.feed({"id": h.sent()[0]["id"], "result": {}})
    h.close()
    h.open()
    b1, b2, b3 = h.sent()
    h.feed({"id": b2["id"], "error": {"code": 403, "message": "refused"}})  # c, d
    h.feed({"id": b1["id"], "result": {}})
    h.feed({"id": b3["id"], "result": {}})
    states = {t: h.session.subscriptions.get(t).state for t in topics}  # type: ignore[union-attr]
    assert states == {"a": "active", "b": "active", "c": "failed", "d": "failed", "e": "active"}
    h.advance(1.0)  # the resubscribe schedule's first step
    retries = h.sent()
    assert sorted(r["args"][0] for r in retries) == ["c", "d"] and all(len(r["args"]) == 1 for r in retries)
    for retry in retries:
        if retry["args"] == ["c"]:
            h.feed({"id": retry["id"], "result": {}})
        else:
            h.feed({"id": retry["id"], "error": {"code": 403, "message": "still refused"}})
    assert h.session.subscriptions.get("c").state == "active"  # type: ignore[union-attr]
    assert h.session.subscriptions.get("d").state == "failed"  # type: ignore[union-attr]
    h.advance(2.0)
    assert [r["args"] for r in h.sent()] == [["d"]]


def test_a_refused_first_subscription_is_forgotten() -> None:
    h = feed_harness()
    h.open()
    w = Waiter()
    h.session.subscribe("bad", None, "S", h.now, 5.0, w)
    h.feed({"id": h.sent()[0]["id"], "error": {"code": 403, "message": "no"}})
    assert h.done[w].status == "error" and "bad" not in h.session.subscriptions


def test_an_unconfirmed_first_subscription_times_out() -> None:
    h = feed_harness()
    h.open()
    w = Waiter()
    h.session.subscribe("slow", None, "S", h.now, 2.0, w)
    h.advance(2.0)
    assert h.done[w].status == "timeout" and "slow" not in h.session.subscriptions


def test_jsonrpc_subscriptions_take_the_id_from_the_reply_and_map_a_new_one_after_reconnect() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    w = Waiter()
    args = ("eth_subscribe", ["newHeads"], "eth_unsubscribe")
    h.session.subscribe("heads", args, "S", h.now, 5.0, w)
    [call] = h.sent()
    assert call == {"jsonrpc": "2.0", "method": "eth_subscribe", "params": ["newHeads"], "id": call["id"]}
    h.feed({"jsonrpc": "2.0", "result": "0x1", "id": call["id"]})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0x1", "result": 5}})
    assert h.events(UpdateReceived)[-1].data == 5
    h.close()
    h.open()
    [again] = h.sent()
    h.feed({"jsonrpc": "2.0", "result": "0x2", "id": again["id"]})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0x1", "result": "stale"}})
    h.feed({"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": "0x2", "result": 6}})
    assert [e.data for e in h.events(UpdateReceived)] == [5, 6]
    assert h.session.counters["unroutable"] == 1
    h.session.unsubscribe("heads", "S", h.now, 5.0, Waiter())
    assert h.sent() == [{"jsonrpc": "2.0", "method": "eth_unsubscribe", "params": ["0x2"], "id": again["id"] + 1}]


# -- liveness ---------------------------------------------------------------------------------------------


def test_pings_pongs_and_the_pong_timeout() -> None:
    h = feed_harness(ping_interval=10.0, pong_timeout=5.0)
    h.open()
    h.advance(10.0)
    assert h.sent() == [{"op": "ping"}]
    h.advance(1.0)
    h.feed({"op": "pong"})
    assert h.session.last_heartbeat_rtt == pytest.approx(1.0)
    h.advance(10.0)
    assert h.sent() == [{"op": "ping"}]
    h.advance(5.0)
    assert h.session.close_request == "heartbeat_timeout"


def test_server_pings_are_answered() -> None:
    h = feed_harness()
    h.open()
    h.feed({"op": "ping"})
    assert h.sent() == [{"op": "pong"}]


def test_websocket_pings_for_protocols_without_a_ping_message() -> None:
    h = Harness(JsonRpcProtocol(), ping_interval=10.0)
    h.open()
    h.advance(10.0)
    assert h.sent() == [WEBSOCKET_PING]
    h.now += 0.5
    h.session.pong_received(h.now)
    assert h.session.last_heartbeat_rtt == pytest.approx(0.5)


def test_a_reconnect_message_asks_the_engine_to_drop_the_connection() -> None:
    h = feed_harness()
    h.open()
    h.feed({"op": "reconnect"})
    assert h.session.take_new_deadline() <= h.now
    h.advance(0.0)
    assert h.session.close_request == "server_requested_reconnect"


# -- authentication ---------------------------------------------------------------------------------------


def test_auth_goes_first_and_requests_wait_for_its_success() -> None:
    h = feed_harness()
    h.session.credentials = {"token": "secret"}
    ready = Waiter("ready")
    h.session.add_ready_waiter(ready)
    h.session.request("echo", 1, h.now, 5.0, Waiter())
    h.open()
    [auth] = h.sent()
    assert auth["op"] == "auth" and auth["args"] == {"token": "secret"}
    h.feed({"id": auth["id"], "result": {"authenticated": True}})
    assert h.done[ready].status == "ok"
    assert [f["op"] for f in h.sent()] == ["echo"]


def test_a_refused_auth_fails_every_wait() -> None:
    h = feed_harness()
    h.session.credentials = {"token": "wrong"}
    ready, call = Waiter("ready"), Waiter("call")
    h.session.add_ready_waiter(ready)
    h.session.request("echo", 1, h.now, 5.0, call)
    h.open()
    [auth] = h.sent()
    h.feed({"id": auth["id"], "error": {"code": 401, "message": "invalid credentials"}})
    assert h.done[ready].status == "auth_failed" and h.done[call].status == "auth_failed"
    assert h.events(Authenticated) == [Authenticated(False, {"code": 401, "message": "invalid credentials"})]
    assert h.sent() == []
    assert h.done[ready].error == {"code": 401, "message": "invalid credentials"}


def test_a_wait_added_after_the_refusal_gets_the_servers_answer_too() -> None:
    h = feed_harness()
    h.session.credentials = {"token": "wrong"}
    h.open()
    [auth] = h.sent()
    h.feed({"id": auth["id"], "error": {"code": 401, "message": "invalid credentials"}})
    late = Waiter("late")
    h.session.add_ready_waiter(late)
    h.drain()
    assert h.done[late].status == "auth_failed"
    assert h.done[late].error == {"code": 401, "message": "invalid credentials"}


# -- malformed and unmatched input -------------------------------------------------------------------------


def test_jsonrpc_invalid_response_fails_its_request_and_is_reported() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    w = Waiter()
    request_id = h.session.request("m", None, h.now, 5.0, w)
    h.feed({"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "x"}, "id": request_id})
    assert h.done[w].status == "invalid" and isinstance(h.done[w].error, RemoteProtocolError)
    assert h.session.counters["protocol_errors"] == 1 and h.events(ProtocolErrorReported)


def test_jsonrpc_null_id_errors_are_reported_without_a_request() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    h.feed({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
    [event] = h.events(ErrorReceived)
    assert event.error["code"] == -32700 and h.session.counters["errors_received"] == 1


def test_jsonrpc_batch_responses_in_any_order_reach_their_callers() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    waiters = [Waiter(str(i)) for i in range(3)]
    ids = h.session.batch(
        [("sum", [1], waiters[0]), ("note", None, None), ("sum", [2], waiters[1]), ("x", [], waiters[2])], h.now, 5.0
    )
    assert ids[1] is None
    [frame] = h.sent()
    assert [m.get("id") for m in frame] == ids
    h.feed(
        [
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": ids[3]},
            {"jsonrpc": "2.0", "result": 2, "id": ids[2]},
            {"jsonrpc": "2.0", "result": 1, "id": ids[0]},
        ]
    )
    assert [h.done[w].status for w in waiters] == ["ok", "ok", "error"]
    assert [h.done[w].result for w in waiters[:2]] == [1, 2]


def test_jsonrpc_notifications_are_delivered_by_method() -> None:
    h = Harness(JsonRpcProtocol())
    h.open()
    h.feed({"jsonrpc": "2.0", "method": "update", "params": [1, 2]})
    assert h.events(NotificationReceived)[0][:2] == ("update", [1, 2])


@pytest.mark.parametrize(
    "frame",
    [
        {"result": 1, "id": 1},
        {"jsonrpc": "1.0", "result": 1, "id": 1},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "error": "bad", "id": 1},
        {"jsonrpc": "2.0", "result": 1, "id": True},
        {"jsonrpc": "2.0", "result": 1, "id": None},
    ],
)
def test_jsonrpc_invalid_responses_are_classified_invalid(frame: dict[str, Any]) -> None:
    assert JsonRpcProtocol().classify(frame).kind is FrameKind.INVALID


def test_jsonrpc_refuses_to_send_what_the_spec_forbids() -> None:
    protocol = JsonRpcProtocol()
    with pytest.raises(LocalProtocolError):
        protocol.request(1, 1, None)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        protocol.request(1, "m", "bar")
    with pytest.raises(LocalProtocolError):
        protocol.request(1, "", None)
    with pytest.raises(LocalProtocolError):
        protocol.request(1, "m", [float("nan")])
    with pytest.raises(LocalProtocolError):
        protocol.batch([])


def test_feed_format_is_configuration_only() -> None:
    fmt = JsonFormat(
        id_field="req_id",
        op_field="method",
        args_field="params",
        topic_field="channel",
        data_field="payload",
        subscribe_op="SUBSCRIBE",
        ping={"method": "PING"},
        pong={"method": "PONG"},
        server_ping={"event": "ping"},
        pong_reply={"event": "pong"},
    )
    protocol = JsonFeedProtocol(fmt)
    assert json.loads(protocol.subscribe([7], [])) == {"method": "SUBSCRIBE", "params": [], "req_id": 7}
    assert protocol.classify({"channel": "x", "payload": 1}) == Incoming(
        FrameKind.UPDATE, None, "x", 1, None, {"channel": "x", "payload": 1}
    )
    assert protocol.classify({"req_id": 7, "result": 2}).kind is FrameKind.REPLY
    assert protocol.classify({"method": "PONG"}).kind is FrameKind.PONG
    assert protocol.classify({"event": "ping"}).kind is FrameKind.PING
    assert json.loads(protocol.ping(1) or "") == {"method": "PING"}
    with pytest.raises(RemoteProtocolError):
        protocol.classify([1, 2])


def test_the_base_handler_documents_safe_defaults() -> None:
    class Minimal(ProtocolHandler):
        def classify(self, message: Any) -> Incoming:
            return Incoming(FrameKind.UNKNOWN, message=message)

    handler = Minimal()
    assert handler.connect_url("ws://h/x?a=1", {"b": True}) == "ws://h/x?a=1&b=true"
    assert handler.connect_url("https://h/x", None) == "wss://h/x"
    assert handler.ping(1) is WEBSOCKET_PING and handler.batch([]) is None
    with pytest.raises(LocalProtocolError):
        handler.subscribe([1], [])
    with pytest.raises(RemoteProtocolError):
        handler.decode_text("{not json")


def test_auth_recognised_by_a_pattern_without_an_id() -> None:
    fmt = JsonFormat(auth_ok={"event": "login", "ok": True}, auth_failed={"event": "login", "ok": False})
    for answer, status in (({"event": "login", "ok": True}, "ok"), ({"event": "login", "ok": False}, "auth_failed")):
        h = Harness(JsonFeedProtocol(fmt))
        h.session.credentials = {"key": "k"}
        ready = Waiter()
        h.session.add_ready_waiter(ready)
        h.open()
        assert h.sent()[0]["op"] == "auth"
        h.feed(answer)
        assert h.done[ready].status == status


def test_unconfirmed_feeds_one_topic_per_message() -> None:
    fmt = JsonFormat(id_field=None, subscription_confirmation="none", topics_as="string", unsubscribe_op=None)
    h = Harness(JsonFeedProtocol(fmt), subscribe_batch_size=10)
    h.open()
    waiters = [Waiter(t) for t in ("a", "b")]
    h.session.subscribe_many([("a", None, "A"), ("b", None, "B")], h.now, 5.0, waiters[0])
    h.drain()
    assert h.sent() == [{"op": "subscribe", "args": "a"}, {"op": "subscribe", "args": "b"}]
    assert h.done[waiters[0]].status == "ok"  # active as soon as sent
    h.session.unsubscribe("a", "A", h.now, 5.0, waiters[1])
    h.drain()
    assert h.sent() == [] and h.done[waiters[1]].status == "ok"  # no unsubscribe op: nothing to send
