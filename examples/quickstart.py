"""Quickstart: connect, join a topic, push and wait for the reply, handle a broadcast, see who is online.

Run it as is (it starts maxsdk's embedded Phoenix server on a free port), or
against a server running the reference app, e.g. ``maxsdk serve``::

    python examples/quickstart.py
    python examples/quickstart.py ws://127.0.0.1:4000/socket
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import maxsdk


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


def main(url: str) -> None:
    # One client = one WebSocket. As a context manager it connects on entry and closes on exit
    # (leaving channels and joining its threads).
    with maxsdk.Client(url, params={"user_id": "alice"}) as client:
        room = client.join("room:lobby")  # blocks until the server accepts (JoinError if it refuses)
        print("joined room:lobby; the server said", room.join_response)

        reply = room.push("echo", {"body": "hello"})  # blocks for the reply
        print("reply:", reply.status, reply.response)

        # Handlers run on the client's dispatcher thread, in arrival order.
        heard = threading.Event()

        @room.on("shout")
        def on_shout(payload):
            print("broadcast received:", payload)
            heard.set()

        room.push("shout", {"body": "hi everyone"})  # the server broadcasts it to every subscriber
        heard.wait(5)

        try:
            room.push("echo_error", {"why": "demo"})
        except maxsdk.ReplyError as exc:  # an "error" reply raises, with the server's response attached
            print("error reply:", exc.response)

        room.presence.wait_synced(5)
        print("online:", room.presence.keys())


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
