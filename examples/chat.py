"""Chat: an interactive two-terminal chat. Each line you type is pushed; other people's lines are printed.

Terminal 1 starts the embedded server and prints the command for terminal 2::

    python examples/chat.py --name alice
    python examples/chat.py ws://127.0.0.1:PORT/socket --name bob     # as printed by terminal 1

Type a line and press Enter to send it; ``/who`` lists who is online; end
with Ctrl-D (or ``/quit``). Also works against ``maxsdk serve`` or any server
running the reference app (``room:*`` broadcasts ``shout`` and tracks
presence under the ``user_id`` connect param).

What it shows: the main thread blocks on input and pushes; incoming
broadcasts and presence changes are printed by handlers on the client's
dispatcher thread, at the same time.
"""

from __future__ import annotations

import argparse
import sys
import threading
from contextlib import contextmanager

import maxsdk

_print_lock = threading.Lock()


def say(text: str) -> None:
    """Print whole lines (handlers print from another thread while the main thread reads input)."""
    with _print_lock:
        print(text, flush=True)


@contextmanager
def server_url(url: str | None, name: str):
    """``url``, or the URL of an embedded server started for this session (and the command to join it)."""
    if url is not None:
        yield url
        return
    from maxsdk.server import PhoenixServer

    with PhoenixServer() as server:
        say(f"embedded server running; in another terminal: python examples/chat.py {server.url} --name bob")
        yield server.url


def chat(url: str, name: str, topic: str) -> None:
    with maxsdk.Client(url, params={"user_id": name}) as client:
        room = client.channel(topic)

        @room.on("shout")
        def on_line(payload):
            if isinstance(payload, dict) and payload.get("user") != name:
                say(f"<{payload.get('user')}> {payload.get('body')}")

        @room.presence.on_join
        def joined(key, current, _joined):
            if current is None and key != name:
                say(f"* {key} joined")

        @room.presence.on_leave
        def left(key, remaining, _left):
            if not remaining["metas"] and key != name:
                say(f"* {key} left")

        room.join()
        room.presence.wait_synced(5)
        say(f"joined {topic} as {name} (online: {', '.join(sorted(room.presence.keys()))})")
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            if not text:
                continue
            if text == "/quit":
                break
            if text == "/who":
                say(f"online: {', '.join(sorted(room.presence.keys()))}")
                continue
            try:
                room.push("shout", {"user": name, "body": text})
            except maxsdk.MaxsdkError as exc:  # e.g. a timeout while the connection is down: say so, keep going
                say(f"! not sent: {exc}")
    say("bye")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A two-terminal chat over Phoenix Channels.")
    parser.add_argument("url", nargs="?", help="socket URL (default: start an embedded server)")
    parser.add_argument("--name", default="alice", help="your name (default alice)")
    parser.add_argument("--topic", default="room:chat", help="the room (default room:chat)")
    args = parser.parse_args(argv)
    with server_url(args.url, args.name) as url:
        chat(url, args.name, args.topic)


if __name__ == "__main__":
    main()
