"""maxsdk through its public API only: ``Client``, ``join``, ``push``, ``on``.

Handlers run where maxsdk runs them (its dispatcher thread); a blocking ``push``
is the round trip. Nothing here reaches into ``maxsdk._runtime``.

Default settings everywhere except the receive workload, which asks for
``overflow="block"``: by default (``"drop_oldest"``) a handler thread that falls
10,000 messages behind the reader loses the oldest ones, which is right for a
live feed but is not "receiving" in a throughput test. The runner also runs
receive with the defaults (``overflow`` parameter) and reports what was dropped.
"""

from __future__ import annotations

import time
from typing import Any

from common import (
    ECHO_PAYLOAD,
    FANOUT_TOPIC,
    LONG_TIMEOUT,
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


def rtt(url: str, count: int, warmup: int = 200) -> dict[str, Any]:
    import maxsdk

    with maxsdk.Client(url) as client:
        push = client.join(TOPIC).push
        for _ in range(warmup):
            push("echo", ECHO_PAYLOAD)
        clock, samples = time.perf_counter_ns, []
        for _ in range(count):
            started = clock()
            push("echo", ECHO_PAYLOAD)
            samples.append(clock() - started)
    return latency_summary(samples)


def rtt_concurrent(url: str, count: int, threads: int, warmup: int = 200) -> dict[str, Any]:
    import maxsdk

    per_thread = count // threads
    samples: list[int] = []
    with maxsdk.Client(url) as client:
        room = client.join(TOPIC)
        for _ in range(warmup):
            room.push("echo", ECHO_PAYLOAD)

        def caller(_: int) -> None:
            push, clock, local = room.push, time.perf_counter_ns, []
            for _ in range(per_thread):
                started = clock()
                push("echo", ECHO_PAYLOAD)
                local.append(clock() - started)
            samples.extend(local)

        elapsed = run_threads(threads, caller)
    return {**latency_summary(samples), "throughput": len(samples) / elapsed, "threads": threads, "elapsed_s": elapsed}


def receive(url: str, n: int, size: int, overflow: str = "block") -> dict[str, Any]:
    import maxsdk

    with maxsdk.Client(url, overflow=overflow) as client:
        room = client.join(TOPIC)
        room.push("flood", {"n": 10, "size": size})  # warm-up
        counter = Countdown(n)
        room.on("flood_msg", counter)
        client.on_signal(maxsdk.signals.messages_dropped, lambda _client, count, **_: counter.lost(count))
        cpu0, started = time.process_time(), time.perf_counter()
        room.push("flood", {"n": n, "size": size}, timeout=LONG_TIMEOUT)
        counter.wait()
        cpu = time.process_time() - cpu0
        elapsed = counter.finished_at - started
    metrics = receive_metrics(n, size, elapsed, cpu, counter.count, counter.dropped)
    if counter.dropped:
        metrics["note"] = "messages dropped by the dispatch queue (overflow=drop_oldest)"
    return metrics


def connect_join(url: str, attempts: int, warmup: int = 10) -> dict[str, Any]:
    import maxsdk

    samples = []
    for i in range(warmup + attempts):
        started = time.perf_counter_ns()
        client = maxsdk.Client(url)
        client.connect()
        client.join(TOPIC)
        elapsed = time.perf_counter_ns() - started
        client.close()
        if i >= warmup:
            samples.append(elapsed)
    return ms_summary(samples)


def memory(url: str, channels: int) -> dict[str, Any]:
    import maxsdk

    imports = settled_rss_mb()
    with maxsdk.Client(url) as client:
        room = client.join(TOPIC)
        room.push("echo", ECHO_PAYLOAD)
        idle = settled_rss_mb()
        for i in range(channels):
            client.join(f"room:mem{i}")
        room.push("echo", ECHO_PAYLOAD)
        many = settled_rss_mb()
    return memory_metrics(imports, idle, many, channels)


def fanout(url: str, clients: int, n: int, size: int) -> dict[str, Any]:
    import threading

    import maxsdk

    before, threads_before = settled_rss_mb(), threading.active_count()
    connected: list[Any] = []
    counters = [Countdown(n) for _ in range(clients)]
    try:
        rooms = []
        for counter in counters:
            client = maxsdk.Client(url)
            connected.append(client)
            client.connect()
            room = client.join(FANOUT_TOPIC)
            room.on("flood_msg", counter)
            rooms.append(room)
        after, threads_after = settled_rss_mb(), threading.active_count()
        cpu0, started = time.process_time(), time.perf_counter()
        rooms[0].push("fanout", {"n": n, "size": size}, timeout=LONG_TIMEOUT)
        for counter in counters:
            counter.wait()
        elapsed = max(counter.finished_at for counter in counters) - started
        cpu = time.process_time() - cpu0
    finally:
        for client in connected:
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


def channels(url: str, channels: int, n: int, size: int) -> dict[str, Any]:
    import threading

    import maxsdk

    before, threads_before = settled_rss_mb(), threading.active_count()
    with maxsdk.Client(url, max_channels_per_socket=None) as client:
        client.connect()
        started = time.perf_counter()
        rooms = [client.join_nowait(f"room:c{i}", timeout=LONG_TIMEOUT) for i in range(channels)]
        for room in rooms:
            room.wait_joined(LONG_TIMEOUT)
        join_elapsed = time.perf_counter() - started
        joined = settled_rss_mb()
        threads = threading.active_count() - threads_before
        counters = [Countdown(n) for _ in rooms]
        for room, counter in zip(rooms, counters):
            room.on("flood_msg", counter)
        cpu0, started = time.process_time(), time.perf_counter()
        pending = [room.push_nowait("flood", {"n": n, "size": size}, timeout=LONG_TIMEOUT) for room in rooms]
        for counter in counters:
            counter.wait()
        elapsed = max(counter.finished_at for counter in counters) - started
        cpu = time.process_time() - cpu0
        for reply in pending:
            reply.wait(LONG_TIMEOUT)
    total = channels * n
    return {
        "join_rate": channels / join_elapsed,
        "rate": total / elapsed,
        "delivered": sum(counter.count for counter in counters),
        "kib_per_channel": (joined - before) * 1024 / channels,
        "threads": threads,
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
            "channels": channels,
        }
    )
