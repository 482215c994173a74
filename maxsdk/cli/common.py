"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from maxsdk.client import Client
from maxsdk.errors import ConfigurationError

__all__ = ["add_connection_args", "client_from_args", "configure_logging", "parse_json", "parse_params"]


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that connect to a server."""
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="K=V",
        help="connect param sent in the query string (repeatable)",
    )
    parser.add_argument("--token", help="shortcut for --param token=TOKEN (never printed)")
    parser.add_argument("--vsn", default="2.0.0", choices=["2.0.0", "1.0.0"], help="serializer version")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (warns)")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the connection (default 10)",
    )


def parse_params(pairs: list[str], token: str | None = None) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--param needs KEY=VALUE, got {pair!r}")
        params[key] = value
    if token is not None:
        params["token"] = token
    return params


def parse_json(text: str, what: str) -> Any:
    """Parse a JSON argument; ``-`` reads standard input."""
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not valid JSON: {exc}") from None


def client_from_args(args: argparse.Namespace, **options: Any) -> Client:
    """A :class:`Client` configured from the shared connection options."""
    return Client(
        args.url,
        params=parse_params(args.param, args.token),
        vsn=args.vsn,
        verify_tls=not args.insecure,
        connect_timeout=args.connect_timeout,
        **options,
    )


def configure_logging(verbose: int) -> None:
    """``-v``: maxsdk INFO logs; ``-vv``: frame-level DEBUG logs (secrets redacted)."""
    if not verbose:
        return
    level = logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("maxsdk")
    root.addHandler(handler)
    root.setLevel(level)
