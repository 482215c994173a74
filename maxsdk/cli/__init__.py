"""The ``maxsdk`` command line: ``demo``, ``serve``, ``listen``, ``push`` and ``outbox``.

Errors are one line on stderr with a non-zero exit status (see
:data:`maxsdk.cli.errors.EXIT`, listed in every command's ``--help``); tracebacks
only with ``-vv``.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from maxsdk._version import __version__
from maxsdk.cli import demo, listen, outbox, push, serve
from maxsdk.cli.common import configure_logging
from maxsdk.cli.errors import EXIT, EXIT_HELP, describe, exit_status
from maxsdk.cli.output import Printer

__all__ = ["build_parser", "main"]

EPILOG = """commands:
  maxsdk demo                      narrated live session on the embedded server
  maxsdk serve --port 4000         run the embedded server for local development
  maxsdk listen URL TOPIC          print a topic's events (--json for jq)
  maxsdk push URL TOPIC EVENT JSON push one event and print the reply
  maxsdk outbox PATH [ACTION]      inspect a durable outbox (stats, list, retry, purge)

Run `maxsdk COMMAND --help` for examples. Set NO_COLOR to disable colors.

"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``maxsdk`` command."""
    parser = argparse.ArgumentParser(
        prog="maxsdk",
        description="A blocking Python client for Phoenix Channels.",
        epilog=EPILOG + EXIT_HELP + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"maxsdk {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: connection logs; -vv: frame-level debug logs (secrets redacted)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (demo, serve, listen, push, outbox):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT["usage"]
    configure_logging(args.verbose, server=args.command == "serve")
    printer = Printer()
    try:
        return int(args.func(args, printer, stop))
    except KeyboardInterrupt:
        printer.note("interrupted")
        return EXIT["interrupted"]
    except Exception as exc:
        if args.verbose >= 2:
            raise
        printer.fail(describe(exc))
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
