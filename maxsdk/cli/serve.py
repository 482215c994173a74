"""``maxsdk serve``: run the embedded Phoenix-protocol server for local development."""

from __future__ import annotations

import argparse
import threading

from maxsdk._runtime.threads import wait_interruptibly
from maxsdk.cli.common import deferred_interrupt
from maxsdk.cli.errors import EXIT, EXIT_HELP
from maxsdk.cli.output import Printer

__all__ = ["add_parser", "port_number", "run"]

EPILOG = """examples:
  maxsdk serve                      # ws://127.0.0.1:4000/socket/websocket
  maxsdk serve --port 0             # any free port (printed)
  maxsdk serve --token secret       # require ?token=secret

Ctrl-C stops it (exit status 130). A port in use or not allowed is one line
and exit status 7; with -v every connection is logged, and a channel that
crashes is always logged.

channels: room:* (new_msg, echo, echo_error, shout, flood, presence...), echo:* (echoes
every event), ticker:* (pushes "tick" every interval_ms).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``serve`` command."""
    parser = sub.add_parser(
        "serve",
        help="run the embedded Phoenix server",
        description="Run the embedded Phoenix Channels server until Ctrl-C.",
        epilog=EPILOG + "\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=4000, help="port (default 4000; 0 = any free port)")
    parser.add_argument("--token", help="require this token param on connect (403 otherwise)")
    parser.set_defaults(func=run)


def port_number(text: str) -> int:
    """``--port``: an integer from 0 to 65535 (argparse reports anything else as a usage error)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535; 0 = any free port)")
    return port


def run(args: argparse.Namespace, printer: Printer, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (130), or until ``stop`` is set (for tests; 0)."""
    from maxsdk.server import PhoenixServer

    server = PhoenixServer(host=args.host, port=args.port, token=args.token)
    status = EXIT["ok"]
    try:
        with deferred_interrupt():
            try:
                server.start()
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        printer.line(f"maxsdk server listening on {server.url}")
        if args.token:
            printer.line("connect with the param token=<your token> (e.g. ?token=...&vsn=2.0.0)")
        printer.note("channels: room:*, echo:*, ticker:*   (Ctrl-C to stop)")
        wait_interruptibly((stop or threading.Event()).wait, None)
    except KeyboardInterrupt:
        printer.note("stopping...")
        status = EXIT["interrupted"]
    finally:
        server.stop()
    printer.note("server stopped")
    return status
