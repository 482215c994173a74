"""supabase ``realtime`` (PyPI), the asyncio client of Supabase Realtime.

It is a Phoenix Channels client with Supabase's conventions baked in, which shape
what it can do against a plain Phoenix server:

* V1 serializer only (``vsn=1.0.0``); every topic is prefixed with ``realtime:``;
* every incoming frame is validated by pydantic against Supabase's message union:
  a plain Phoenix broadcast (``event: "new_msg"``) does not validate and is dropped
  with an error log, so the bench server wraps its floods the way the Supabase
  server does (event ``broadcast``, ``{"type": "broadcast", "event", "payload"}``,
  flood parameter ``shape: "supabase"``) and handlers are ``on_broadcast``.

Concurrent round trips are 8 asyncio tasks on one connection (it has no threads).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from common import (
    ECHO_PAYLOAD,
    LONG_TIMEOUT,
    async_countdowns,
    latency_summary,
    memory_metrics,
    ms_summary,
    receive_metrics,
    run,
    settled_rss_mb,
)

TOPIC = "bench"  # the client sends "realtime:bench"
FANOUT_TOPIC = "fanout"


async def connect(url: str, topic: str = TOPIC) -> tuple[Any, Any]:
    from realtime import AsyncRealtimeClient

    client = AsyncRealtimeClient(url, auto_reconnect=False, timeout=int(LONG_TIMEOUT))
    await client.connect()
    channel = client.channel(topic)
    await channel.subscribe()
    if not channel.is_joined:
        raise RuntimeError(f"join failed: {channel.state}")
    return client, channel


async def request(channel: Any, event: str, payload: Any) -> Any:
    from realtime.types import RealtimeAcknowledgementStatus as Ack

    reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    push = await channel.push(event, payload, timeout=int(LONG_TIMEOUT))
    push.receive(Ack.Ok, lambda response: reply.done() or reply.set_result(response))
    push.receive(Ack.Error, lambda response: reply.done() or reply.set_exception(RuntimeError(str(response))))
    return await reply


async def rtt_async(url: str, count: int, warmup: int) -> dict[str, Any]:
    client, channel = await connect(url)
    for _ in range(warmup):
        await request(channel, "echo", ECHO_PAYLOAD)
    clock, samples = time.perf_counter_ns, []
    for _ in range(count):
        started = clock()
        await request(channel, "echo", ECHO_PAYLOAD)
        samples.append(clock() - started)
    await client.close()
    return latency_summary(samples)


async def rtt_concurrent_async(url: str, count: int, threads: int, warmup: int) -> dict[str, Any]:
    client, channel = await connect(url)
    for _ in range(warmup):
        await request(channel, "echo", ECHO_PAYLOAD)
    samples: list[int] = []

    async def caller() -> None:
        clock = time.perf_counter_ns
        for _ in range(count // threads):
            started = clock()
            await request(channel, "echo", ECHO_PAYLOAD)
            samples.append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(threads)))
    elapsed = time.perf_counter() - started
    await client.close()
    return {
        **latency_summary(samples),
        "throughput": len(samples) / elapsed,
        "threads": threads,
        "elapsed_s": elapsed,
        "note": f"{threads} asyncio tasks",
    }


async def receive_async(url: str, n: int, size: int) -> dict[str, Any]:
    client, channel = await connect(url)
    await request(channel, "flood", {"n": 10, "size": size, "shape": "supabase"})
    (counter,), all_done = async_countdowns(1, n)
    channel.on_broadcast("flood_msg", counter)
    cpu0, started = time.process_time(), time.perf_counter()
    await request(channel, "flood", {"n": n, "size": size, "shape": "supabase"})
    await all_done()
    cpu = time.process_time() - cpu0
    await client.close()
    return receive_metrics(n, size, counter.finished_at - started, cpu, counter.count)


async def connect_join_async(url: str, attempts: int, warmup: int) -> dict[str, Any]:
    samples = []
    for i in range(warmup + attempts):
        started = time.perf_counter_ns()
        client, _ = await connect(url)
        elapsed = time.perf_counter_ns() - started
        await client.close()
        if i >= warmup:
            samples.append(elapsed)
    return ms_summary(samples)


async def memory_async(url: str, channels: int) -> dict[str, Any]:
    import realtime  # noqa: F401 - the imports being measured

    imports = settled_rss_mb()
    client, channel = await connect(url)
    await request(channel, "echo", ECHO_PAYLOAD)
    idle = settled_rss_mb()
    for i in range(channels):
        await client.channel(f"mem{i}").subscribe()
    await request(channel, "echo", ECHO_PAYLOAD)
    many = settled_rss_mb()
    await client.close()
    return memory_metrics(imports, idle, many, channels)


async def fanout_async(url: str, clients: int, n: int, size: int) -> dict[str, Any]:
    before = settled_rss_mb()
    counters, all_done = async_countdowns(clients, n)
    pairs = []
    for counter in counters:
        client, channel = await connect(url, FANOUT_TOPIC)
        channel.on_broadcast("flood_msg", counter)
        pairs.append((client, channel))
    after = settled_rss_mb()
    cpu0, started = time.process_time(), time.perf_counter()
    await request(pairs[0][1], "fanout", {"n": n, "size": size, "shape": "supabase"})
    await all_done()
    elapsed = max(counter.finished_at for counter in counters) - started
    cpu = time.process_time() - cpu0
    for client, _ in pairs:
        await client.close()
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
        "note": "one event loop",
    }


if __name__ == "__main__":
    run(
        {
            "rtt": lambda url, count, warmup=200: asyncio.run(rtt_async(url, count, warmup)),
            "rtt_concurrent": lambda url, count, threads, warmup=200: asyncio.run(
                rtt_concurrent_async(url, count, threads, warmup)
            ),
            "receive": lambda url, n, size: asyncio.run(receive_async(url, n, size)),
            "connect_join": lambda url, attempts, warmup=10: asyncio.run(connect_join_async(url, attempts, warmup)),
            "memory": lambda url, channels: asyncio.run(memory_async(url, channels)),
            "fanout": lambda url, clients, n, size: asyncio.run(fanout_async(url, clients, n, size)),
        }
    )
