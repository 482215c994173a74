"""``maxsdk push``: join a topic, push one event, print the reply."""

from __future__ import annotations

import argparse
import threading

from maxsdk.channel import Channel
from maxsdk.cli.common import add_connection_args, client_from_args, parse_json
from maxsdk.cli.errors import EXIT, EXIT_HELP, CommandError
from maxsdk.cli.output import Printer, to_json
from maxsdk.client import Client
from maxsdk.errors import ReplyError, ReplyLostError
from maxsdk.protocol.phoenix.channel import ChannelState

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk push ws://localhost:4000/socket room:lobby echo '{"hello": "world"}'
  echo '{"body": "hi"}' | maxsdk push ws://localhost:4000/socket room:lobby new_msg -
  maxsdk push wss://example.com/socket room:42 ping --token "$TOKEN" --timeout 2

The reply goes to stdout as JSON: {"status": ..., "response": ...}.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``push`` command."""
    parser = sub.add_parser(
        "push",
        help="push one event and print the reply",
        description="Join TOPIC, push EVENT with PAYLOAD and print the reply as JSON.",
        epilog=EPILOG + "\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="socket URL, e.g. ws://localhost:4000/socket")
    parser.add_argument("topic", help="topic to join")
    parser.add_argument("event", help="event to push")
    parser.add_argument("payload", nargs="?", default="{}", help="JSON payload, or - for stdin (default {})")
    add_connection_args(parser)
    parser.add_argument("--join-payload", default="{}", metavar="JSON", help="join params as JSON")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="reply timeout (default 10)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Push and print; the exit status tells the outcome apart."""
    payload = parse_json(args.payload, "PAYLOAD")
    join_payload = parse_json(args.join_payload, "--join-payload")
    client = client_from_args(args, reconnect=False, timeout=args.timeout)
    try:
        client.connect()
        channel = client.join(args.topic, join_payload)
        try:
            reply = channel.push(args.event, payload, timeout=args.timeout)
        except ReplyLostError as exc:
            if _channel_crashed(client, channel):
                raise CommandError(
                    f"the channel {args.topic!r} crashed on the server before it replied to {args.event!r}"
                    " (the server's log says why)",
                    EXIT["error_reply"],
                ) from exc
            raise
        except ReplyError as exc:
            printer.line(to_json({"status": exc.status, "response": exc.response}))
            return EXIT["error_reply"]
        printer.line(to_json({"status": reply.status, "response": reply.response}))
        return EXIT["ok"]
    finally:
        client.close()


def _channel_crashed(client: Client, channel: Channel) -> bool:
    """A reply was lost while the connection stayed up: the server's channel crashed (``phx_error``)."""
    return client.connected and channel.state in (ChannelState.ERRORED, ChannelState.JOINING)
