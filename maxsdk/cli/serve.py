"""``maxsdk serve``: run the embedded Phoenix-protocol server for local development."""

from __future__ import annotations

import argparse
import threading

from maxsdk.cli.output import Printer

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  maxsdk serve                      # ws://127.0.0.1:4000/socket/websocket
  maxsdk serve --port 0             # any free port (printed)
  maxsdk serve --token secret       # require ?token=secret

channels: room:* (new_msg, echo, echo_error, shout, flood, presence...), echo:* (echoes
every event), ticker:* (pushes "tick" every interval_ms).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``serve`` command."""
    parser = sub.add_parser(
        "serve",
        help="run the embedded Phoenix server",
        description="Run the embedded Phoenix Channels server until Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4000, help="port (default 4000; 0 = any free port)")
    parser.add_argument("--token", help="require this token param on connect (403 otherwise)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (or until ``stop`` is set, for tests)."""
    from maxsdk.server import PhoenixServer

    server = PhoenixServer(host=args.host, port=args.port, token=args.token)
    server.start()
    try:
        printer.line(f"maxsdk server listening on {server.url}")
        if args.token:
            printer.line("connect with the param token=<your token> (e.g. ?token=...&vsn=2.0.0)")
        printer.note("channels: room:*, echo:*, ticker:*   (Ctrl-C to stop)")
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        printer.note("stopping...")
    finally:
        server.stop()
    printer.note("server stopped")
    return 0
