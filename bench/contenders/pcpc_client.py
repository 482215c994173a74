"""phoenix-channels-python-client (PyPI), an asyncio client on ``websockets`` and pydantic.

What it can and cannot do against a standard Phoenix server, as measured here:

* It has no API to push an event and await the reply (subscribe, unsubscribe and
  handlers only), so the round-trip workloads are "n/a", and floods are started
  by a second, plain ``websockets`` connection in the same event loop that sends
  the bench server's ``publish`` event (it only reads one reply).
* With its default V2 serializer it drops every broadcast: it discards messages
  whose ``join_ref`` differs from its join's, and Phoenix broadcasts carry
  ``join_ref: null`` (reference §2.3). :func:`probe_v2` shows it on every receive
  run (``v2_broadcasts_delivered``); the workloads therefore use its V1 serializer.
* Every message becomes a pydantic model and runs its handler in a new task;
  ``max_topic_queue_size`` (default 1000, drop-oldest) is raised so that a flood
  is not silently cut.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from common import (
    FANOUT_TOPIC,
    LONG_TIMEOUT,
    TOPIC,
    Countdown,
    NotSupportedError,
    async_countdowns,
    memory_metrics,
    ms_summary,
    receive_metrics,
    run,
    settled_rss_mb,
)

NO_PUSH = "no API to push an event and await its reply (subscribe/unsubscribe and handlers only)"
QUEUE_SIZE = 1_000_000


def make_client(url: str, version: str = "1.0", queue_size: int = QUEUE_SIZE) -> Any:
    from phoenix_channels_python_client import PhoenixChannelsProtocolVersion, PHXChannelsClient

    return PHXChannelsClient(
        f"{url}/websocket",
        "bench",
        protocol_version=PhoenixChannelsProtocolVersion(version),
        auto_reconnect=False,
        max_topic_queue_size=queue_size,
        join_timeout_s=LONG_TIMEOUT,
    )


class Publisher:
    """A plain ``websockets`` connection that asks the server to flood a topic's subscribers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.ref = 0

    async def __aenter__(self) -> Publisher:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"{self.url}/websocket?vsn=2.0.0", max_size=None)
        await self.request("bench:control", "phx_join", {})
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.ws.close()

    async def request(self, topic: str, event: str, payload: Any) -> Any:
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send(json.dumps(["1", ref, topic, event, payload]))
        while True:
            _, msg_ref, _, msg_event, msg_payload = json.loads(await self.ws.recv())
            if msg_ref == ref and msg_event == "phx_reply":
                return msg_payload

    async def publish(self, topic: str, n: int, size: int, push_end: bool = False) -> Any:
        return await self.request(
            "bench:control", "publish", {"topic": topic, "n": n, "size": size, "push_end": push_end}
        )


async def probe_v2(url: str, publisher: Publisher) -> int:
    """Subscribe with the default V2 serializer, publish 10 broadcasts, count what arrives."""
    client = make_client(url, "2.0")
    counter = Countdown(10)
    ended = asyncio.Event()

    async def handler(message: Any) -> None:
        if message.event == "flood_end":
            ended.set()
        else:
            counter()

    await client.__aenter__()
    try:
        await client.subscribe_to_topic("room:probe", handler)
        await publisher.publish("room:probe", 10, 100, push_end=True)
        await asyncio.wait_for(ended.wait(), LONG_TIMEOUT)  # the push after the broadcasts
    finally:
        await client.shutdown("probe done")
    return counter.count


async def receive_async(url: str, n: int, size: int) -> dict[str, Any]:
    async with Publisher(url) as publisher:
        v2_delivered = await probe_v2(url, publisher)
        client = make_client(url)
        (counter,), all_done = async_countdowns(1, n)

        async def handler(message: Any) -> None:
            counter()

        await client.__aenter__()
        try:
            await client.subscribe_to_topic(TOPIC, handler)
            cpu0, started = time.process_time(), time.perf_counter()
            await publisher.publish(TOPIC, n, size)
            await all_done()
            cpu = time.process_time() - cpu0
        finally:
            await client.shutdown("done")
    return {
        **receive_metrics(n, size, counter.finished_at - started, cpu, counter.count),
        "v2_broadcasts_delivered": v2_delivered,
        "note": "V1 serializer",
    }


async def connect_join_async(url: str, attempts: int, warmup: int) -> dict[str, Any]:
    async def ignore(message: Any) -> None:
        return None

    samples = []
    for i in range(warmup + attempts):
        started = time.perf_counter_ns()
        client = make_client(url)
        await client.__aenter__()
        await client.subscribe_to_topic(TOPIC, ignore)
        elapsed = time.perf_counter_ns() - started
        await client.shutdown("done")
        if i >= warmup:
            samples.append(elapsed)
    return ms_summary(samples)


async def memory_async(url: str, channels: int) -> dict[str, Any]:
    import phoenix_channels_python_client  # noqa: F401 - the imports being measured

    async def ignore(message: Any) -> None:
        return None

    imports = settled_rss_mb()
    client = make_client(url, queue_size=1000)
    await client.__aenter__()
    await client.subscribe_to_topic(TOPIC, ignore)
    idle = settled_rss_mb()
    for i in range(channels):
        await client.subscribe_to_topic(f"room:mem{i}", ignore)
    many = settled_rss_mb()
    await client.shutdown("done")
    return memory_metrics(imports, idle, many, channels)


async def fanout_async(url: str, clients: int, n: int, size: int) -> dict[str, Any]:
    before = settled_rss_mb()
    counters, all_done = async_countdowns(clients, n)
    started_clients = []
    async with Publisher(url) as publisher:
        for counter in counters:
            client = make_client(url)
            await client.__aenter__()
            started_clients.append(client)

            async def handler(message: Any, counter: Countdown = counter) -> None:
                counter()

            await client.subscribe_to_topic(FANOUT_TOPIC, handler)
        after = settled_rss_mb()
        cpu0, started = time.process_time(), time.perf_counter()
        await publisher.publish(FANOUT_TOPIC, n, size)
        await all_done()
        elapsed = max(counter.finished_at for counter in counters) - started
        cpu = time.process_time() - cpu0
    for client in started_clients:
        await client.shutdown("done")
    total = clients * n
    return {
        "rate": total / elapsed,
        "elapsed_s": elapsed,
        "delivered": sum(counter.count for counter in counters),
        "clients": clients,
        "threads": 0,
        "threads_per_client": 0.0,
        "rss_per_client_mb": (after - before) / clients,
        "cpu_s_per_100k": cpu * 100_000 / total,
        "note": "one event loop, V1 serializer",
    }


def no_push(*_: Any, **__: Any) -> dict[str, Any]:
    raise NotSupportedError(NO_PUSH)


if __name__ == "__main__":
    run(
        {
            "rtt": no_push,
            "rtt_concurrent": no_push,
            "receive": lambda url, n, size: asyncio.run(receive_async(url, n, size)),
            "connect_join": lambda url, attempts, warmup=10: asyncio.run(connect_join_async(url, attempts, warmup)),
            "memory": lambda url, channels: asyncio.run(memory_async(url, channels)),
            "fanout": lambda url, clients, n, size: asyncio.run(fanout_async(url, clients, n, size)),
        }
    )
