"""Endpoint failover: two servers behind fault proxies; the active one dies and later comes back."""

from __future__ import annotations

import threading
import time

import pytest

from maxsdk import Backoff, JsonClient, JsonRpcClient, MaxsdkError
from tests.client.helpers import SignalLog, fast_client
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def two_sites(phoenix_server_factory):
    """Two embedded servers, each behind its own fault proxy: (server_a, proxy_a, server_b, proxy_b)."""
    server_a, server_b = phoenix_server_factory(), phoenix_server_factory()
    with FaultProxy(("127.0.0.1", server_a.port)) as proxy_a, FaultProxy(("127.0.0.1", server_b.port)) as proxy_b:
        yield server_a, proxy_a, server_b, proxy_b


def _first_deliveries(servers, topic: str) -> list[int]:
    """The ``n`` of every durable message, in the order each key first reached a server."""
    seen, order = set(), []
    records = sorted(
        (
            m
            for server in servers
            for m in server.messages()
            if m.topic == topic and m.event == "echo" and "idempotency_key" in m.payload
        ),
        key=lambda m: m.at,
    )
    for message in records:
        key = message.payload["idempotency_key"]
        if key not in seen:
            seen.add(key)
            order.append(message.payload["n"])
    return order


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_the_active_endpoint_dies_and_comes_back_nothing_durable_lost_order_kept(two_sites, tmp_path, transport):
    server_a, proxy_a, server_b, proxy_b = two_sites
    urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
    client = fast_client(
        urls, outbox=tmp_path / "outbox", failback_after=0.3, heartbeat_interval=0.2, transport=transport
    )
    log = SignalLog(client)
    with client:
        room = client.join("room:orders")
        server_a.wait_for_connections(1)
        assert client.endpoint.startswith(urls[0].split("/socket")[0])
        stop = threading.Event()
        sent: list[int] = []

        def produce() -> None:
            n = 0
            # Long-poll delivers a batch of 100 per POST round trip: fewer messages there.
            while not stop.is_set() and n < (20_000 if transport == "websocket" else 2_000):
                n += 1
                room.send("echo", {"n": n})
                sent.append(n)
                if n % 50 == 0:
                    stop.wait(0.005)  # a steady producer, not a burst

        producer = threading.Thread(target=produce)
        producer.start()
        server_a.wait_for_message(event="echo", topic="room:orders", timeout=10)

        # A dies for good (connections reset, new ones refused): the client moves to B.
        proxy_a.refuse()
        proxy_a.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=15)
        server_b.wait_for_message(event="echo", topic="room:orders", timeout=10)
        assert client.endpoint.startswith(urls[1].split("/socket")[0])

        # A comes back: the client probes it and goes back (the way back to the preferred one).
        proxy_a.reset()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=2, timeout=15)
        assert client.endpoint.startswith(urls[0].split("/socket")[0])
        stop.set()
        producer.join(30)
        assert client.outbox is not None and client.outbox.wait_drained(60)
        assert room.push("echo", {"after": True}).response == {"after": True}

    # Nothing durable lost, and each message first reached a server in the order it was sent.
    order = _first_deliveries([server_a, server_b], "room:orders")
    assert order == sent
    assert any(m.event == "echo" for m in server_b.messages()), "part of the stream went through B"
    assert len([e for e in server_a.events() if e.kind == "opened"]) >= 2, "the client came back to A"
    connections_a = {m.connection_id for m in server_a.messages() if m.event == "echo"}
    assert len(connections_a) >= 2, "durable messages went to A before it died and after it came back"


@pytest.mark.timeout(60)
def test_stickiness_a_drop_reconnects_to_the_endpoint_in_use(two_sites):
    server_a, proxy_a, server_b, proxy_b = two_sites
    urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
    client = fast_client(urls, failback_after=None)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        proxy_a.refuse()
        proxy_a.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=15)
        assert client.endpoint.startswith(urls[1].split("/socket")[0])
        proxy_a.reset()  # A is back, but B works: a drop of B reconnects to B (sticky)
        proxy_b.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=2, timeout=15)
        assert client.endpoint.startswith(urls[1].split("/socket")[0])
        assert room.push("echo", {"n": 1}).response == {"n": 1}
        # The explicit way back.
        assert client.fail_back() is True
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=3, timeout=15)
        assert client.endpoint.startswith(urls[0].split("/socket")[0])
        assert client.fail_back() is False


@pytest.mark.timeout(60)
def test_a_dead_preferred_endpoint_is_skipped_without_waiting_for_the_backoff(two_sites):
    server_a, proxy_a, server_b, proxy_b = two_sites
    proxy_a.refuse()
    urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
    # A reconnect schedule of 30 s: connecting within 5 s proves B was tried at once.
    client = fast_client(urls, reconnect=lambda attempt: 30.0, connect_timeout=5)
    with client:
        assert client.join("room:lobby").push("echo", {"n": 2}).response == {"n": 2}
        assert client.endpoint.startswith(urls[1].split("/socket")[0])


@pytest.mark.timeout(60)
def test_a_callable_gives_the_endpoints_on_every_attempt(two_sites):
    server_a, proxy_a, server_b, proxy_b = two_sites
    urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
    current = [urls[0]]
    calls = []

    def discover() -> list[str]:
        calls.append(list(current))
        return list(current)

    client = fast_client(discover)
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        server_a.wait_for_connections(1)
        current[:] = [urls[1]]  # the discovery service now lists only B
        proxy_a.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=15)
        server_b.wait_for_connections(1)
        assert len(calls) >= 3  # once to validate, then once per attempt


@pytest.mark.timeout(60)
def test_longpoll_fails_over_too(two_sites):
    server_a, proxy_a, server_b, proxy_b = two_sites
    urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
    client = fast_client(urls, transport="longpoll", failback_after=None)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        proxy_a.refuse()
        proxy_a.cut("rst")
        log.wait_for("channel_joined", lambda kw: kw["rejoined"], timeout=20)
        assert room.push("echo", {"n": 3}).response == {"n": 3}
        assert any(m.event == "echo" and m.topic == "room:lobby" for m in server_b.messages())


@pytest.mark.timeout(60)
def test_protocol_clients_fail_over(jsonrpc_server_factory):
    server_a, server_b = jsonrpc_server_factory(), jsonrpc_server_factory()
    with FaultProxy(("127.0.0.1", server_a.port)) as proxy_a, FaultProxy(("127.0.0.1", server_b.port)) as proxy_b:
        urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
        reconnect = Backoff(steps=(0.01, 0.05), jitter="none")
        with JsonRpcClient(urls, failback_after=None, timeout=5, reconnect=reconnect) as client:
            assert client.call("echo", ["a"]) == ["a"]
            proxy_a.refuse()
            proxy_a.cut("rst")
            assert _call_eventually(client, ["b"]) == ["b"]
            assert any(isinstance(m.message, dict) and m.message.get("method") == "echo" for m in server_b.messages())


def _call_eventually(client: JsonRpcClient, params: list, timeout: float = 15.0):
    """Call ``echo`` until it goes through (calls made while reconnecting fail fast)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.call("echo", params, timeout=2)
        except MaxsdkError:
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.05)


@pytest.mark.timeout(60)
def test_protocol_clients_go_back_to_the_preferred_endpoint(jsonrpc_server_factory):
    server_a, server_b = jsonrpc_server_factory(), jsonrpc_server_factory()
    with FaultProxy(("127.0.0.1", server_a.port)) as proxy_a, FaultProxy(("127.0.0.1", server_b.port)) as proxy_b:
        urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
        reconnect = Backoff(steps=(0.01, 0.05), jitter="none")
        with JsonRpcClient(urls, failback_after=0.3, timeout=5, reconnect=reconnect) as client:
            assert client.call("echo", ["a"]) == ["a"] and client.endpoint == urls[0]
            assert client.fail_back() is False  # already on the preferred one
            proxy_a.refuse()
            proxy_a.cut("rst")
            assert _call_eventually(client, ["b"]) == ["b"]
            assert client.endpoint == urls[1]
            opened = server_a.connections_opened
            proxy_a.reset()  # A comes back: the probe finds it and the client moves back
            server_a.wait_for_opened(opened + 1, timeout=15)
            assert _call_eventually(client, ["a again"]) == ["a again"]
            assert client.endpoint == urls[0]
            calls = [m.message for m in server_a.messages() if isinstance(m.message, dict)]
            assert any(call.get("params") == ["a again"] for call in calls)


@pytest.mark.timeout(60)
def test_the_json_feed_client_fails_over_resubscribes_and_comes_back(json_topic_server_factory):
    server_a, server_b = json_topic_server_factory(), json_topic_server_factory()
    with FaultProxy(("127.0.0.1", server_a.port)) as proxy_a, FaultProxy(("127.0.0.1", server_b.port)) as proxy_b:
        urls = [proxy_a.rewrite(server_a.url), proxy_b.rewrite(server_b.url)]
        client = JsonClient(
            urls,
            failback_after=None,
            timeout=5,
            reconnect=Backoff(steps=(0.01, 0.05), jitter="none"),
            resubscribe=Backoff(steps=(0.05, 0.1), jitter="none"),
        )
        with client:
            ticks = client.subscribe("ticks")
            server_a.publish("ticks", 1)
            assert ticks.get(5) == 1
            proxy_a.refuse()
            proxy_a.cut("rst")
            _wait_until(lambda: server_b.topics() == {"ticks"})  # resubscribed on B
            assert client.endpoint == urls[1]
            server_b.publish("ticks", 2)
            assert ticks.get(5) == 2
            proxy_a.reset()
            assert client.fail_back() is True  # the explicit way back
            _wait_until(lambda: server_a.topics() == {"ticks"} and client.endpoint == urls[0])
            server_a.publish("ticks", 3)
            assert ticks.get(5) == 3


def _wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    wake = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        wake.wait(0.02)
