"""The floor for a synchronous Python client: websocket-client with hand-rolled Phoenix V2 frames.

``create_connection(url, enable_multithread=True, skip_utf8_validation=True)`` and
``json``, everything inline on the calling thread: no reader thread, no queue, no
dispatcher, no reconnects or heartbeats. It is what a careful person would write
by hand for one job, and the yardstick the other Python clients are compared to.

Two workloads cannot be done inline and say so in their results:

* ``rtt_concurrent``: several callers on one socket need someone to route replies,
  so this adds the smallest thing that works (one reader thread and a dict of
  ``ref → Event``) — "raw + reader thread".
* ``fanout``: 200 sockets are read by one thread with ``selectors`` (still no threads).
"""

from __future__ import annotations

import itertools
import json
import selectors
import threading
import time
from typing import Any

from common import (
    ECHO_PAYLOAD,
    FANOUT_TOPIC,
    TOPIC,
    latency_summary,
    memory_metrics,
    ms_summary,
    receive_metrics,
    run,
    run_threads,
    settled_rss_mb,
)


class RawChannel:
    """One websocket-client connection joined to topics, with inline request/reply."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(
            f"{url}/websocket?vsn=2.0.0", enable_multithread=True, skip_utf8_validation=True
        )
        self.refs = itertools.count(1)
        self.join_refs: dict[str, str] = {}

    def send(self, topic: str, event: str, payload: Any) -> str:
        ref = str(next(self.refs))
        join_ref = ref if event == "phx_join" else self.join_refs[topic]
        self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    def request(self, topic: str, event: str, payload: Any, on_message: Any = None) -> Any:
        """Send and read inline until the reply; other frames go to ``on_message(payload)``."""
        ref = self.send(topic, event, payload)
        recv, loads = self.ws.recv, json.loads
        while True:
            _, msg_ref, _, msg_event, msg_payload = loads(recv())
            if msg_ref == ref and msg_event == "phx_reply":
                return msg_payload
            if on_message is not None:
                on_message(msg_payload)

    def join(self, topic: str) -> None:
        ref = str(next(self.refs))
        self.join_refs[topic] = ref
        self.ws.send(json.dumps([ref, ref, topic, "phx_join", {}]))
        recv, loads = self.ws.recv, json.loads
        while True:
            _, msg_ref, _, msg_event, msg_payload = loads(recv())
            if msg_ref == ref and msg_event == "phx_reply":
                if msg_payload["status"] != "ok":
                    raise RuntimeError(f"join refused: {msg_payload}")
                return

    def close(self) -> None:
        self.ws.close()


def rtt(url: str, count: int, warmup: int = 200) -> dict[str, Any]:
    channel = RawChannel(url)
    channel.join(TOPIC)
    request, clock = channel.request, time.perf_counter_ns
    for _ in range(warmup):
        request(TOPIC, "echo", ECHO_PAYLOAD)
    samples = []
    for _ in range(count):
        started = clock()
        request(TOPIC, "echo", ECHO_PAYLOAD)
        samples.append(clock() - started)
    channel.close()
    return latency_summary(samples)


def rtt_concurrent(url: str, count: int, threads: int, warmup: int = 200) -> dict[str, Any]:
    channel = RawChannel(url)
    channel.join(TOPIC)
    for _ in range(warmup):
        channel.request(TOPIC, "echo", ECHO_PAYLOAD)
    waiting: dict[str, threading.Event] = {}
    send_lock = threading.Lock()

    def reader() -> None:
        recv, loads = channel.ws.recv, json.loads
        while True:
            try:
                frame = recv()
            except Exception:
                return
            if not frame:  # closed
                return
            _, ref, _, event, _ = loads(frame)
            if event == "phx_reply" and ref in waiting:
                waiting.pop(ref).set()

    threading.Thread(target=reader, daemon=True).start()
    per_thread = count // threads
    samples: list[int] = []

    def caller(_: int) -> None:
        clock, local = time.perf_counter_ns, []
        for _ in range(per_thread):
            done = threading.Event()
            started = clock()
            with send_lock:
                ref = str(next(channel.refs))
                waiting[ref] = done
                channel.ws.send(json.dumps([channel.join_refs[TOPIC], ref, TOPIC, "echo", ECHO_PAYLOAD]))
            done.wait()
            local.append(clock() - started)
        samples.extend(local)

    elapsed = run_threads(threads, caller)
    channel.close()
    return {
        **latency_summary(samples),
        "throughput": len(samples) / elapsed,
        "threads": threads,
        "elapsed_s": elapsed,
        "note": "raw + 1 reader thread routing replies",
    }


def receive(url: str, n: int, size: int) -> dict[str, Any]:
    channel = RawChannel(url)
    channel.join(TOPIC)
    channel.request(TOPIC, "flood", {"n": 10, "size": size}, on_message=lambda payload: None)
    received = 0

    def handler(payload: Any) -> None:
        nonlocal received
        received += 1

    cpu0, started = time.process_time(), time.perf_counter()
    channel.request(TOPIC, "flood", {"n": n, "size": size}, on_message=handler)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    channel.close()
    return receive_metrics(n, size, elapsed, cpu, received)


def connect_join(url: str, attempts: int, warmup: int = 10) -> dict[str, Any]:
    samples = []
    for i in range(warmup + attempts):
        started = time.perf_counter_ns()
        channel = RawChannel(url)
        channel.join(TOPIC)
        elapsed = time.perf_counter_ns() - started
        channel.close()
        if i >= warmup:
            samples.append(elapsed)
    return ms_summary(samples)


def memory(url: str, channels: int) -> dict[str, Any]:
    import websocket  # noqa: F401 - the imports being measured

    imports = settled_rss_mb()
    channel = RawChannel(url)
    channel.join(TOPIC)
    channel.request(TOPIC, "echo", ECHO_PAYLOAD)
    idle = settled_rss_mb()
    for i in range(channels):
        channel.join(f"room:mem{i}")
    channel.request(TOPIC, "echo", ECHO_PAYLOAD)
    many = settled_rss_mb()
    channel.close()
    return memory_metrics(imports, idle, many, channels)


def fanout(url: str, clients: int, n: int, size: int) -> dict[str, Any]:
    before = settled_rss_mb()
    channels = []
    for _ in range(clients):
        channel = RawChannel(url)
        channel.join(FANOUT_TOPIC)
        channels.append(channel)
    connected = settled_rss_mb()
    selector = selectors.DefaultSelector()
    counts = dict.fromkeys(range(clients), 0)
    for index, channel in enumerate(channels):
        selector.register(channel.ws.sock, selectors.EVENT_READ, index)
    trigger = channels[0]
    cpu0, started = time.process_time(), time.perf_counter()
    ref = trigger.send(FANOUT_TOPIC, "fanout", {"n": n, "size": size})
    remaining, total = clients, clients * n
    replied = False
    loads = json.loads
    while remaining or not replied:
        for key, _ in selector.select():
            # websocket-client reads exactly one frame's bytes per recv(), never more, so
            # whatever else arrived is still in the kernel and the selector sees it.
            index = key.data
            _, msg_ref, _, event, _ = loads(channels[index].ws.recv())
            if event == "flood_msg":
                counts[index] += 1
                if counts[index] == n:
                    remaining -= 1
            elif msg_ref == ref:
                replied = True
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    for channel in channels:
        channel.close()
    return {
        "rate": total / elapsed,
        "elapsed_s": elapsed,
        "delivered": sum(counts.values()),
        "clients": clients,
        "threads": 1,
        "threads_per_client": 0.0,
        "rss_per_client_mb": (connected - before) / clients,
        "cpu_s_per_100k": cpu * 100_000 / total,
        "note": "one thread, selectors over all sockets",
    }


def channels(url: str, channels: int, n: int, size: int) -> dict[str, Any]:
    before = settled_rss_mb()
    channel = RawChannel(url)
    recv, loads = channel.ws.recv, json.loads
    topics = [f"room:c{i}" for i in range(channels)]
    started = time.perf_counter()
    refs = set()
    for topic in topics:
        ref = str(next(channel.refs))
        channel.join_refs[topic] = ref
        channel.ws.send(json.dumps([ref, ref, topic, "phx_join", {}]))
        refs.add(ref)
    while refs:
        _, msg_ref, _, msg_event, _ = loads(recv())
        if msg_event == "phx_reply":
            refs.discard(msg_ref)
    join_elapsed = time.perf_counter() - started
    joined = settled_rss_mb()
    counts = dict.fromkeys(topics, 0)
    cpu0, started = time.process_time(), time.perf_counter()
    for topic in topics:
        refs.add(channel.send(topic, "flood", {"n": n, "size": size}))
    remaining, total = channels, channels * n
    while remaining or refs:
        _, msg_ref, topic, msg_event, _ = loads(recv())
        if msg_event == "flood_msg":
            counts[topic] += 1
            if counts[topic] == n:
                remaining -= 1
        elif msg_event == "phx_reply":
            refs.discard(msg_ref)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    channel.close()
    return {
        "join_rate": channels / join_elapsed,
        "rate": total / elapsed,
        "delivered": sum(counts.values()),
        "kib_per_channel": (joined - before) * 1024 / channels,
        "threads": 0,
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
