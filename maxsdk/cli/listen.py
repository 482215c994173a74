"""``maxsdk listen``: join a topic and print every event until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime
from typing import Any

from maxsdk import signals
from maxsdk._runtime.threads import start_thread, wait_interruptibly
from maxsdk.cli.common import add_connection_args, client_from_args, parse_json
from maxsdk.cli.errors import EXIT, EXIT_HELP
from maxsdk.cli.output import Printer, to_json

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk listen ws://localhost:4000/socket room:lobby
  maxsdk listen wss://example.com/socket room:42 --token "$TOKEN" --json | jq .payload
  maxsdk listen ws://localhost:4000/socket room:lobby --event shout --event new_msg
  maxsdk listen ws://localhost:4000/socket room:private --join-payload '{"password": "pw"}'

Events go to stdout; connection state changes go to stderr. Once connected it
keeps reconnecting until Ctrl-C (exit status 130) or --count events (0), then
prints a summary. An unknown host, a refused login (403) or a wrong path (404)
end it at once.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``listen`` command."""
    parser = sub.add_parser(
        "listen",
        help="join a topic and print its events",
        description="Join TOPIC and print every event until Ctrl-C.",
        epilog=EPILOG + "\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="socket URL, e.g. ws://localhost:4000/socket")
    parser.add_argument("topic", help="topic to join, e.g. room:lobby")
    add_connection_args(parser)
    parser.add_argument("--join-payload", default="{}", metavar="JSON", help="join params as JSON")
    parser.add_argument(
        "--event", "-e", action="append", default=[], metavar="NAME", help="only print these events (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines (for jq)")
    parser.add_argument("--count", type=int, default=0, metavar="N", help="exit after N events")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Listen until Ctrl-C (130), ``--count`` events, or ``stop`` (for tests; 0)."""
    join_payload = parse_json(args.join_payload, "--join-payload")
    stop = stop or threading.Event()
    wanted = set(args.event)
    counts = {"messages": 0}
    started = time.monotonic()
    client = client_from_args(args, reconnect_on_normal_close=True)

    def on_event(event: str, payload: Any) -> None:
        if wanted and event not in wanted:
            return
        counts["messages"] += 1
        if args.json:
            printer.line(
                to_json(
                    {
                        "topic": args.topic,
                        "event": event,
                        "payload": payload,
                        "at": datetime.now().isoformat(timespec="milliseconds"),
                    }
                )
            )
        else:
            stamp = printer.style(datetime.now().strftime("%H:%M:%S.%f")[:-3], "dim")
            printer.line(f"{stamp} {printer.style(event, 'cyan')} {to_json(payload)}")
        if args.count and counts["messages"] >= args.count:
            stop.set()

    client.on_signal(signals.state_changed, lambda _c, **kw: printer.note(f"[{kw['new']}] {kw['reason']}"))
    client.on_signal(
        signals.channel_joined,
        lambda _c, **kw: printer.note(f"[joined] {args.topic}" + (" (rejoined)" if kw["rejoined"] else "")),
    )
    client.on_signal(
        signals.channel_errored, lambda _c, **kw: printer.note(f"[channel errored] {args.topic}: {kw['reason']}")
    )
    channel = client.channel(args.topic, join_payload)
    channel.on_any(on_event)
    ticker = threading.Thread(target=_status_line, args=(client, printer, counts, stop), daemon=True)
    status = EXIT["ok"]
    try:
        client.connect()
        channel.join()
        if printer.live:
            start_thread(ticker)
        wait_interruptibly(stop.wait, None)
    except KeyboardInterrupt:
        printer.note("interrupted")
        status = EXIT["interrupted"]
    finally:
        stop.set()
        if ticker.is_alive():
            ticker.join(2)
        printer.end_status()
        diagnostics = client.diagnostics()
        client.close()
        printer.note(_summary(counts["messages"], diagnostics.reconnects, diagnostics.connect_failures, started))
    return status


def _summary(messages: int, reconnects: int, failures: int, started: float) -> str:
    """``3 message(s), 1 reconnect(s), 4 failed connection attempt(s), 12.3 s``."""
    failed = f", {failures} failed connection attempt(s)" if failures else ""
    return f"{messages} message(s), {reconnects} reconnect(s){failed}, {time.monotonic() - started:.1f} s"


def _status_line(client: Any, printer: Printer, counts: dict[str, int], stop: threading.Event) -> None:
    """Redraw a one-line summary on the terminal every second until ``stop``."""
    while not stop.wait(1.0):
        stats = client.stats()
        rtt = "" if stats.heartbeat_rtt is None else f" · rtt {stats.heartbeat_rtt * 1000:.1f} ms"
        printer.status(
            f"● {stats.state} · {counts['messages']} msgs · {stats.messages_in_per_s:.0f}/s"
            f" · {stats.reconnects} reconnects{rtt}"
        )
