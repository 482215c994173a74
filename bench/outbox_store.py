"""Micro-benchmark of the durable outbox's store: put/s and take+ack/s by batch size.

    python bench/outbox_store.py                 # 5,000 messages, batch sizes 1, 10, 100
    python bench/outbox_store.py --count 20000 --synchronous normal

Each row stores ``count`` messages (about 150 bytes of JSON each, spread over 50
topics) with ``put_many`` in batches, then drains them with ``take_batch`` +
``ack`` in batches of the same size; every batch is one transaction (one
commit, one fsync with ``synchronous=full``). The ``persist-queue`` row is the
baseline the store is built on: ``SQLiteAckQueue.put`` / ``get`` / ``ack`` one
item at a time, one commit each. Files go to a temporary directory on the
disk holding ``--dir`` (default: the system's temporary directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import persistqueue.serializers.json as json_serializer
from persistqueue import SQLiteAckQueue

from maxsdk._runtime.outbox_store import OutboxMessage, OutboxStore

TOPICS = 50


def messages(count: int) -> list[OutboxMessage]:
    return [OutboxMessage(f"room:{i % TOPICS}", "new_msg", {"body": "x" * 100, "seq": i}) for i in range(count)]


def bench_store(directory: str, count: int, batch: int, synchronous: str) -> tuple[float, float]:
    batch_messages = messages(count)
    with OutboxStore(directory, synchronous=synchronous, max_messages=None, max_in_flight_per_topic=batch) as store:
        started = time.perf_counter()
        for start in range(0, count, batch):
            store.put_many(batch_messages[start : start + batch])
        put_rate = count / (time.perf_counter() - started)
        drained = 0
        started = time.perf_counter()
        while taken := store.take_batch(batch):
            store.ack([record.idempotency_key for record in taken])
            drained += len(taken)
        drain_rate = drained / (time.perf_counter() - started)
    assert drained == count, (drained, count)
    return put_rate, drain_rate


def bench_persist_queue(directory: str, count: int) -> tuple[float, float]:
    queue = SQLiteAckQueue(directory, multithreading=True, serializer=json_serializer)
    try:
        items = [{"topic": m.topic, "event": m.event, "payload": m.payload} for m in messages(count)]
        started = time.perf_counter()
        for item in items:
            queue.put(item)
        put_rate = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(count):
            queue.ack(queue.get(block=False))
        drain_rate = count / (time.perf_counter() - started)
    finally:
        queue.close()
    return put_rate, drain_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000, help="messages per row (default 5000)")
    parser.add_argument("--batches", default="1,10,100", help="batch sizes (default 1,10,100)")
    parser.add_argument("--synchronous", choices=("full", "normal", "both"), default="both")
    parser.add_argument("--dir", default=None, help="where to put the files (default: the temporary directory)")
    args = parser.parse_args()
    modes = ("full", "normal") if args.synchronous == "both" else (args.synchronous,)
    batches = [int(b) for b in args.batches.split(",")]
    root = tempfile.mkdtemp(prefix="outbox-bench-", dir=args.dir)
    try:
        print(f"{args.count} messages, {TOPICS} topics, files in {root}")
        print(f"{'store':<28}{'batch':>6}{'put/s':>12}{'take+ack/s':>14}")
        for mode in modes:
            for batch in batches:
                directory = os.path.join(root, f"{mode}-{batch}")
                put_rate, drain_rate = bench_store(directory, args.count, batch, mode)
                print(f"{'OutboxStore ' + mode:<28}{batch:>6}{put_rate:>12,.0f}{drain_rate:>14,.0f}", flush=True)
        put_rate, drain_rate = bench_persist_queue(os.path.join(root, "baseline"), min(args.count, 2000))
        print(f"{'SQLiteAckQueue item by item':<28}{1:>6}{put_rate:>12,.0f}{drain_rate:>14,.0f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
