"""``maxsdk outbox``: inspect and manage a durable outbox directory."""

from __future__ import annotations

import argparse
import os
import threading
import time

from maxsdk._runtime.outbox_store import DB_FILE, OutboxStore
from maxsdk.cli.errors import EXIT, EXIT_HELP, CommandError
from maxsdk.cli.output import Printer, to_json

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk outbox ~/.myapp/outbox                  # stats (the default action)
  maxsdk outbox ~/.myapp/outbox list --json      # dead letters as JSON lines
  maxsdk outbox ~/.myapp/outbox retry            # queue every dead letter again
  maxsdk outbox ~/.myapp/outbox retry KEY KEY    # ... or just these
  maxsdk outbox ~/.myapp/outbox purge --all      # delete every dead letter

The outbox must not be open in a running client (it is locked while in use).
It never creates anything: a path that holds no outbox is an error (exit status 7).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``outbox`` command."""
    parser = sub.add_parser(
        "outbox",
        help="inspect and manage a durable outbox",
        description="Show the state of a durable outbox directory and manage its dead letters.",
        epilog=EPILOG + "\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", help="the outbox directory given to Client(outbox=...)")
    parser.add_argument("action", nargs="?", default="stats", choices=["stats", "list", "retry", "purge"])
    parser.add_argument("keys", nargs="*", help="idempotency keys (retry/purge); default: every dead letter")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--limit", type=int, default=None, help="list at most N dead letters")
    parser.add_argument("--all", action="store_true", help="purge: confirm deleting every dead letter")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Open the store (it refuses if a client holds it), act, close."""
    check_outbox(args.path)
    with OutboxStore(args.path, max_messages=None) as store:
        if args.action == "stats":
            stats = store.stats()
            age = store.oldest_age()
            if args.json:
                printer.line(to_json({**stats.__dict__, "oldest_age": age}))
            else:
                printer.line(f"outbox {args.path}")
                printer.line(f"  waiting     {stats.ready}")
                printer.line(f"  in flight   {stats.in_flight} (ready again at the next open)")
                printer.line(f"  dead        {stats.dead}")
                printer.line(f"  bytes       {stats.bytes}")
                printer.line(f"  oldest      {'-' if age is None else f'{age:.1f} s'}")
            return 0
        if args.action == "list":
            now = time.time()
            for record in store.list_dead(args.limit):
                if args.json:
                    printer.line(
                        to_json(
                            {
                                "key": record.idempotency_key,
                                "topic": record.topic,
                                "event": record.event,
                                "reason": record.dead_reason,
                                "attempts": record.attempts,
                                "payload": record.payload,
                            }
                        )
                    )
                else:
                    printer.line(
                        f"{record.idempotency_key}  {record.topic} {record.event}  "
                        f"{record.dead_reason!r}  {record.age(now):.0f} s old, {record.attempts} retries"
                    )
            return 0
        if args.action == "retry":
            count = store.retry_dead(args.keys or None)
            printer.line(f"{count} dead letter(s) queued again")
            return 0
        if not args.keys and not args.all:
            printer.fail("purge deletes dead letters for good: give their keys, or --all")
            return 2
        count = store.purge_dead(args.keys or None)
        printer.line(f"{count} dead letter(s) deleted")
        return 0


def check_outbox(path: str) -> None:
    """Refuse a path that holds no outbox, so that inspecting never creates one.

    Raises:
        CommandError: ``path`` is missing, not a directory, or has no outbox database.

    """
    hint = "give the directory passed to Client(outbox=...)"
    if not os.path.exists(path):
        raise CommandError(f"no outbox at {path}: no such file or directory ({hint})", EXIT["system"])
    if not os.path.isdir(path):
        raise CommandError(f"no outbox at {path}: not a directory ({hint})", EXIT["system"])
    if not os.path.isfile(os.path.join(path, DB_FILE)):
        raise CommandError(f"no outbox at {path}: the directory has no {DB_FILE} ({hint})", EXIT["system"])
