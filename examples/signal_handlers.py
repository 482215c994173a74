"""Signals: react to connection and channel events (connected, disconnected, reconnecting, rejoined...).

Every signal is sent from the client's dispatcher thread (``maxsdk-N-dispatch``),
in the order things happened, so a receiver may itself make blocking calls.
The script asks the server to drop the connection (the reference app's
``drop_me`` event) and prints the signals of the automatic recovery, then
shows that a failing handler is reported through ``handler_failed`` without
stopping anything. Run it as is or with a URL::

    python examples/signal_handlers.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
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


def say(text: str) -> None:
    # One write per line: handlers run on several threads, and print() writes the text and the
    # newline separately, so two threads could share a line.
    sys.stdout.write(f"[{threading.current_thread().name}] {text}\n")
    sys.stdout.flush()


def main(url: str) -> None:
    client = maxsdk.Client(url, name="demo")
    back_online = threading.Event()
    failure_reported = threading.Event()

    # Receivers get the client as the sender and keyword arguments; accept **kwargs for forward compatibility.
    # client.on_signal() connects for this client only and holds the receiver strongly.
    @client.on_signal(signals.state_changed)
    def on_state(sender, *, old, new, reason, **kwargs):
        say(f"state {old} -> {new}: {reason}")

    @client.on_signal(signals.connected)
    def on_connected(sender, *, reconnect, **kwargs):
        say("connected" + (" again" if reconnect else ""))

    @client.on_signal(signals.disconnected)
    def on_disconnected(sender, *, code, reason, will_reconnect, **kwargs):
        say(f"disconnected: code={code} will_reconnect={will_reconnect}")

    @client.on_signal(signals.reconnecting)
    def on_reconnecting(sender, *, attempt, delay, **kwargs):
        say(f"reconnecting: attempt {attempt} in {delay:.3f} s")

    @client.on_signal(signals.channel_joined)
    def on_joined(sender, *, channel, rejoined: bool, **kwargs):
        say(f"{'rejoined' if rejoined else 'joined'} {channel.topic}")
        if rejoined:
            back_online.set()

    @client.on_signal(signals.channel_errored)
    def on_errored(sender, *, channel, reason, **kwargs):
        say(f"{channel.topic} errored ({reason}); it will rejoin")

    @client.on_signal(signals.handler_failed)
    def on_handler_failed(sender, *, error, context, **kwargs):
        say(f"a handler failed while handling {context}: {error!r}")
        failure_reported.set()

    with client:
        room = client.join("room:lobby")
        say(f"main thread: joined with join_ref {room.join_ref}")

        room.push("drop_me")  # the reference app replies, then cuts the connection without a close frame
        if not back_online.wait(10):
            raise SystemExit("no rejoin within 10 s")
        say(f"main thread: rejoined with join_ref {room.join_ref}; push -> {room.push('echo', {'ok': 1}).response}")

        def broken(payload):
            raise ValueError("this handler has a bug")

        room.on("shout", broken)  # its exception is logged and reported, never raised into the reader
        room.push("shout", {"n": 1})
        if not failure_reported.wait(5):
            raise SystemExit("handler_failed was not reported")
    say("main thread: closed")


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
