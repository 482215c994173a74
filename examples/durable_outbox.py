"""The durable outbox: messages queued while offline (even across a restart), delivered once online.

``channel.send()`` stores the message on disk before returning and keeps it
until the server answers ``ok`` (at least once; the idempotency key in the
payload lets the server drop duplicates). Here a first client, never
connected, queues three orders and exits; a second client opening the same
outbox directory connects, joins and delivers them in order. A message the
server answers with ``error`` becomes a dead letter: listed, retryable,
purgeable, never silently dropped. Run it as is or with a URL::

    python examples/durable_outbox.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
import tempfile
import threading
from contextlib import contextmanager

import maxsdk
from maxsdk import signals


@contextmanager
def server_url(argv):
    """The URL given on the command line, or the URL of an embedded server started for this run."""
    if len(argv) > 1:
        yield argv[1]
        return
    from maxsdk.server import PhoenixServer

    with PhoenixServer() as server:
        print(f"started the embedded server at {server.url}")
        yield server.url


def queue_while_offline(url: str, outbox_dir: str) -> list[str]:
    """A client that never connects: send() only needs the disk."""
    client = maxsdk.Client(url, outbox=outbox_dir)
    try:
        room = client.channel("room:orders")  # not joined: nothing goes out yet
        keys = [room.send("echo", {"order": n}) for n in (1, 2, 3)]
        print(f"offline: queued {client.outbox.depth()} messages")
        print(f"their idempotency keys: {', '.join(keys)}")
        return keys
    finally:
        client.close()  # the messages stay on disk (so they would after a crash, too)


def deliver(url: str, outbox_dir: str) -> None:
    """A new client on the same directory: joining the topic delivers what waited."""
    delivered: list[int] = []
    all_delivered = threading.Condition()
    dead = threading.Event()
    client = maxsdk.Client(url, outbox=outbox_dir)

    @client.on_signal(signals.outbox_delivered)
    def on_delivered(sender, *, key, event, response, **kwargs):
        print(f"delivered order {response['order']} (idempotency_key {response['idempotency_key']} in its payload)")
        with all_delivered:
            delivered.append(response["order"])
            all_delivered.notify_all()

    @client.on_signal(signals.outbox_dead_lettered)
    def on_dead(sender, *, key, event, response, **kwargs):
        print(f"dead letter: {event!r} was refused with {response}")
        dead.set()

    with client:
        print(f"restarted with {client.outbox.depth()} messages waiting")
        room = client.join("room:orders")
        with all_delivered:
            if not all_delivered.wait_for(lambda: len(delivered) == 3, 10):
                raise SystemExit(f"only {delivered} were delivered")
        print(f"all delivered, in order: {delivered}; waiting now: {client.outbox.depth()}")

        room.send("no_such_event", {"order": 4})  # the reference app answers unknown events with an error
        if not dead.wait(10):
            raise SystemExit("no dead letter reported")
        print("dead letters:", [(r.event, r.payload.get("order")) for r in client.outbox.dead_letters()])
        print("purged", client.outbox.purge(), "dead letter(s)")


def main(url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="maxsdk-outbox-") as outbox_dir:
        queue_while_offline(url, outbox_dir)
        deliver(url, outbox_dir)


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
