"""Presence: who is online on a channel, live.

Alice watches ``room:presence-demo``; Bob and Carol come online, Carol
changes her status, Bob goes away. Alice's presence callbacks print each
change as it happens (they run on her client's dispatcher thread) and
``room.presence`` answers "who is online" at any moment, from any thread.
The reference app tracks each connection under its ``user_id`` connect
param. Run it as is or with a URL::

    python examples/presence.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import maxsdk

TOPIC = "room:presence-demo"


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


_print_lock = threading.Lock()


def say(text: str) -> None:
    """Print whole lines: callbacks print from the dispatcher thread while the main thread prints too."""
    with _print_lock:
        print(text, flush=True)


def main(url: str) -> None:
    changed = threading.Condition()
    statuses: dict[str, str] = {}  # what alice's callbacks have seen so far

    def wait_until(predicate, what: str) -> None:
        with changed:
            if not changed.wait_for(predicate, 5):
                raise SystemExit(f"timed out waiting until {what}")

    with maxsdk.Client(url, params={"user_id": "alice"}) as alice:
        room = alice.channel(TOPIC)
        presence = room.presence

        @presence.on_join
        def joined(key, current, joined_presence):
            status = joined_presence["metas"][-1].get("status", "online")
            with changed:
                before = statuses.get(key)
                statuses[key] = status
                changed.notify_all()
            if before is None:
                say(f"  + {key} is {status}")
            elif before != status:
                say(f"  ~ {key} is now {status}")

        @presence.on_leave
        def left(key, remaining, left_presence):
            if not remaining["metas"]:
                with changed:
                    statuses.pop(key, None)
                    changed.notify_all()
                say(f"  - {key} left")

        room.join()
        wait_until(lambda: "alice" in statuses, "alice sees herself")
        say(f"online: {sorted(presence.keys())}")

        bob = maxsdk.Client(url, params={"user_id": "bob"}).connect()
        carol = maxsdk.Client(url, params={"user_id": "carol"}).connect()
        bob.join(TOPIC)
        carol_room = carol.join(TOPIC)
        wait_until(lambda: {"bob", "carol"} <= set(statuses), "bob and carol are online")
        say(f"online: {sorted(presence.keys())}")

        carol_room.push("presence_update", {"status": "away"})  # the server updates her tracked meta
        wait_until(lambda: statuses.get("carol") == "away", "carol is away")
        say(f"carol's metas: {[meta.get('status') for meta in presence.get('carol')['metas']]}")

        bob.close()  # leaves the channel: the server broadcasts a presence_diff with the leave
        wait_until(lambda: "bob" not in statuses, "bob has left")
        say(f"online: {sorted(presence.keys())}")
        counts = presence.list(lambda key, entry: f"{key}:{len(entry['metas'])}")
        say(f"list() with a chooser: {counts}")
        carol.close()


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
