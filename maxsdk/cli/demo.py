"""``maxsdk demo``: a short, narrated live session (against the embedded server by default)."""

from __future__ import annotations

import argparse
import threading
import time
from contextlib import ExitStack
from typing import Any

from maxsdk import signals
from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.cli.common import deferred_interrupt, parse_params
from maxsdk.cli.errors import EXIT_HELP
from maxsdk.cli.output import Printer, to_json
from maxsdk.client import Client
from maxsdk.errors import ReplyError

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk demo                                   # starts the embedded server on a free port
  maxsdk demo ws://localhost:4000/socket        # against a server running the reference app
                                                # (e.g. another terminal's `maxsdk serve`)
"""
WAIT = 10.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``demo`` command."""
    parser = sub.add_parser(
        "demo",
        help="run a short narrated live session",
        description="Connect, join, push, broadcast, presence, a forced disconnect "
        "and automatic recovery, narrated step by step.",
        epilog=EPILOG + "\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", nargs="?", help="socket URL (default: start the embedded server)")
    parser.add_argument("--token", help="token param for the server (never printed)")
    parser.add_argument("--topic", default="room:lobby", help="topic to use (default room:lobby)")
    parser.set_defaults(func=run)


class _Waiter:
    """A flag set from a handler and waited on by the narrator (never sleep-polls)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.value = kwargs or (args[0] if len(args) == 1 else args)
        self.event.set()

    def wait(self, what: str) -> Any:
        if not wait_interruptibly(self.event.wait, WAIT):
            raise TimeoutError(f"gave up waiting for {what}")
        self.event.clear()
        return self.value


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Run the scripted session; return 0 when every step worked."""
    with ExitStack() as stack:
        server = history = None
        url = args.url
        token = args.token
        if url is None:
            from maxsdk.server import PhoenixServer, reference_router
            from maxsdk.server.stream import StreamHistory

            printer.step("Starting the embedded Phoenix server")
            history = StreamHistory(limit=100)
            router = reference_router().channel("stream:*", history.channel)
            server = PhoenixServer(router, token="demo-secret")
            stack.callback(server.stop)
            with deferred_interrupt():  # never leave a half-started server running
                server.start()
            url, token = server.url, "demo-secret"
            printer.info(f"listening on {server.url} (a token is required: 403 without it)")
        return _session(printer, url, token, args.topic, server, stack, history)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _session(
    printer: Printer, url: str, token: str | None, topic: str, server: Any, stack: ExitStack, history: Any = None
) -> int:
    step = printer.step
    alice = Client(url, params=parse_params(["user_id=alice"], token), name="alice")
    stack.callback(alice.close)
    events = _narrate(printer, alice)

    step("Connecting client 'alice'")
    started = time.monotonic()
    alice.connect()
    printer.good(f"connected in {_ms(time.monotonic() - started)}: {alice!r}")

    step(f"Joining {topic}")
    room = alice.join(topic)
    printer.good(f"joined with join_ref={room.join_ref}; server said {to_json(room.join_response)}")

    step("Push 'echo' and block for the reply")
    started = time.monotonic()
    reply = room.push("echo", {"hello": "world", "n": 1})
    printer.good(f"reply {reply.status} {to_json(reply.response)} in {_ms(time.monotonic() - started)}")

    step("Push 'echo_error': an error reply raises ReplyError")
    try:
        room.push("echo_error", {"why": "demo"})
        printer.info("(the server answered ok)")
    except ReplyError as exc:
        printer.good(f"ReplyError: status={exc.status} response={to_json(exc.response)}")

    step("Client 'bob' joins the same topic; presence tells alice who is online")
    bob_joined = _Waiter()
    room.presence.on_join(lambda key, current, joined: bob_joined(key) if key == "bob" else None)
    bob = Client(url, params=parse_params(["user_id=bob"], token), name="bob")
    stack.callback(bob.close)
    bob_room = bob.connect().channel(topic)
    heard = _Waiter()
    room.on("shout", heard)
    bob_room.join()
    try:
        bob_joined.wait("bob's presence")
        printer.good(f"alice sees online: {sorted(room.presence.keys())}")
    except TimeoutError:
        printer.info("(this server does not track presence on this topic)")

    step("Bob broadcasts 'shout'; alice's handler receives it")
    bob_room.push("shout", {"from": "bob", "text": "hi alice"})
    printer.good(f"alice got shout {to_json(heard.wait('the broadcast'))}")

    step("Binary payloads travel as binary frames")
    reply = room.push("binary_echo", bytes([0, 1, 2, 250, 255]))
    printer.good(f"binary reply: {reply.response!r}")

    step("Heartbeat round trip")
    printer.good(f"ping {_ms(alice.ping())}")

    step("Forced disconnect: the connection drops without a close frame")
    if server is not None:
        server.drop_connections()
        printer.info("the server dropped every connection")
    else:
        alice._engine._drop_connection("demo_forced_drop")
        printer.info("alice's socket was cut locally (a simulated network failure)")
    events["rejoined"].wait("the automatic rejoin")
    reply = room.push("echo", {"after": "reconnect"})
    printer.good(f"push after recovery: {reply.status} {to_json(reply.response)} (join_ref now {room.join_ref})")

    if history is not None:
        from maxsdk.cli.demo_recovery import recovery_steps

        recovery_steps(printer, url, token, server, history, stack)

    step("Closing (leaves channels, joins every thread)")
    diagnostics = alice.diagnostics()
    bob.close()
    alice.close()
    printer.good(
        f"alice: {diagnostics.frames_in} frames in, {diagnostics.frames_out} out, "
        f"{diagnostics.reconnects} reconnect(s), {diagnostics.protocol_errors} protocol error(s)"
    )
    printer.line(printer.style("demo complete", "green", "bold"))
    return 0


def _narrate(printer: Printer, client: Client) -> dict[str, _Waiter]:
    """Print the client's connection events as they happen; return waiters for some of them."""
    rejoined = _Waiter()

    def on_disconnected(_client: Client, **kw: Any) -> None:
        printer.info(printer.style(f"signal disconnected: code={kw['code']} reason={kw['reason']!r}", "yellow"))

    def on_reconnecting(_client: Client, **kw: Any) -> None:
        printer.info(printer.style(f"signal reconnecting: {kw['reason']}", "yellow"))

    def on_connected(_client: Client, **kw: Any) -> None:
        if kw["reconnect"]:
            printer.info(printer.style("signal connected: reconnected", "green"))

    def on_joined(_client: Client, **kw: Any) -> None:
        if kw["rejoined"]:
            printer.info(printer.style(f"signal channel_joined: {kw['channel'].topic} rejoined", "green"))
            rejoined()

    client.on_signal(signals.disconnected, on_disconnected)
    client.on_signal(signals.reconnecting, on_reconnecting)
    client.on_signal(signals.connected, on_connected)
    client.on_signal(signals.channel_joined, on_joined)
    return {"rejoined": rejoined}
