"""``maxsdk push``: join a topic, push one event, print the reply."""

from __future__ import annotations

import argparse
import threading

from maxsdk.cli.common import add_connection_args, client_from_args, parse_json
from maxsdk.cli.errors import EXIT
from maxsdk.cli.output import Printer, to_json
from maxsdk.errors import ReplyError

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk push ws://localhost:4000/socket room:lobby echo '{"hello": "world"}'
  echo '{"body": "hi"}' | maxsdk push ws://localhost:4000/socket room:lobby new_msg -
  maxsdk push wss://example.com/socket room:42 ping --token "$TOKEN" --timeout 2

exit status: 0 ok reply, 1 error reply, 2 usage error, 3 timeout,
4 connection failure, 5 authentication refused, 6 join refused.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``push`` command."""
    parser = sub.add_parser(
        "push",
        help="push one event and print the reply",
        description="Join TOPIC, push EVENT with PAYLOAD and print the reply as JSON.",
        epilog=EPILOG,
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
        except ReplyError as exc:
            printer.line(to_json({"status": exc.status, "response": exc.response}))
            return EXIT["error_reply"]
        printer.line(to_json({"status": reply.status, "response": reply.response}))
        return EXIT["ok"]
    finally:
        client.close()
