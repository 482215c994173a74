"""phxsocket (PyPI): a synchronous facade over an asyncio ``websockets`` loop in a thread.

It speaks only the V1 serializer (it puts ``vsn=1.0.0`` in the URL and sends JSON
objects), which every standard Phoenix server still accepts; the bench server
answers it in V1. Handlers registered with ``channel.on`` run on its event-loop
thread. Each client also starts a heartbeat thread.
"""

from __future__ import annotations

import time
from typing import Any

from common import (
    ECHO_PAYLOAD,
    FANOUT_TOPIC,
    TOPIC,
    Countdown,
    latency_summary,
    memory_metrics,
    ms_summary,
    receive_metrics,
    run,
    run_threads,
    settled_rss_mb,
)


def connect(url: str, topic: str = TOPIC) -> tuple[Any, Any]:
    import phxsocket

    client = phxsocket.Client(f"{url}/websocket")
    client.connect()
    channel = client.channel(topic)
    channel.join()
    return client, channel


def request(channel: Any, event: str, payload: Any) -> Any:
    response = channel.push(event, payload, reply=True).wait_for_response()
    if response["status"] != "ok":
        raise RuntimeError(f"{event} refused: {response}")
    return response


def rtt(url: str, count: int, warmup: int = 200) -> dict[str, Any]:
    client, channel = connect(url)
    for _ in range(warmup):
        request(channel, "echo", ECHO_PAYLOAD)
    clock, samples = time.perf_counter_ns, []
    for _ in range(count):
        started = clock()
        request(channel, "echo", ECHO_PAYLOAD)
        samples.append(clock() - started)
    client.close()
    return latency_summary(samples)


def rtt_concurrent(url: str, count: int, threads: int, warmup: int = 200) -> dict[str, Any]:
    client, channel = connect(url)
    for _ in range(warmup):
        request(channel, "echo", ECHO_PAYLOAD)
    per_thread, samples = count // threads, []

    def caller(_: int) -> None:
        clock, local = time.perf_counter_ns, []
        for _ in range(per_thread):
            started = clock()
            request(channel, "echo", ECHO_PAYLOAD)
            local.append(clock() - started)
        samples.extend(local)

    elapsed = run_threads(threads, caller)
    client.close()
    return {**latency_summary(samples), "throughput": len(samples) / elapsed, "threads": threads, "elapsed_s": elapsed}


def receive(url: str, n: int, size: int) -> dict[str, Any]:
    client, channel = connect(url)
    request(channel, "flood", {"n": 10, "size": size})
    counter = Countdown(n)
    channel.on("flood_msg", counter)
    cpu0, started = time.process_time(), time.perf_counter()
    request(channel, "flood", {"n": n, "size": size})
    counter.wait()
    cpu = time.process_time() - cpu0
    client.close()
    return receive_metrics(n, size, counter.finished_at - started, cpu, counter.count)


def connect_join(url: str, attempts: int, warmup: int = 10) -> dict[str, Any]:
    samples = []
    for i in range(warmup + attempts):
        started = time.perf_counter_ns()
        client, _ = connect(url)
        elapsed = time.perf_counter_ns() - started
        client.close()
        if i >= warmup:
            samples.append(elapsed)
    return ms_summary(samples)


def memory(url: str, channels: int) -> dict[str, Any]:
    import phxsocket  # noqa: F401 - the imports being measured

    imports = settled_rss_mb()
    client, channel = connect(url)
    request(channel, "echo", ECHO_PAYLOAD)
    idle = settled_rss_mb()
    for i in range(channels):
        client.channel(f"room:mem{i}").join()
    request(channel, "echo", ECHO_PAYLOAD)
    many = settled_rss_mb()
    client.close()
    return memory_metrics(imports, idle, many, channels)


def fanout(url: str, clients: int, n: int, size: int) -> dict[str, Any]:
    import threading

    before, threads_before = settled_rss_mb(), threading.active_count()
    counters = [Countdown(n) for _ in range(clients)]
    pairs = []
    for counter in counters:
        client, channel = connect(url, FANOUT_TOPIC)
        channel.on("flood_msg", counter)
        pairs.append((client, channel))
    after, threads_after = settled_rss_mb(), threading.active_count()
    cpu0, started = time.process_time(), time.perf_counter()
    request(pairs[0][1], "fanout", {"n": n, "size": size})
    for counter in counters:
        counter.wait()
    elapsed = max(counter.finished_at for counter in counters) - started
    cpu = time.process_time() - cpu0
    for client, _ in pairs:
        client.close()
    total = clients * n
    return {
        "rate": total / elapsed,
        "elapsed_s": elapsed,
        "delivered": sum(counter.count for counter in counters),
        "clients": clients,
        "threads": threads_after - threads_before,
        "threads_per_client": (threads_after - threads_before) / clients,
        "rss_per_client_mb": (after - before) / clients,
        "cpu_s_per_100k": cpu * 100_000 / total,
    }


if __name__ == "__main__":
    run(
        {
            "rtt": rtt,
            "rtt_concurrent": rtt_concurrent,
            "receive": receive,
            "connect_join": connect_join,
            "memory": memory,
            "fanout": fanout,
        }
    )
