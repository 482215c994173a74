"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from maxsdk.client import Client
from maxsdk.endpoint import redact_url
from maxsdk.errors import ConfigurationError, ConnectFailedError

__all__ = [
    "add_connection_args",
    "check_host",
    "client_from_args",
    "configure_logging",
    "deferred_interrupt",
    "parse_json",
    "parse_params",
]


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
    parser.add_argument(
        "--follow-redirects",
        type=int,
        default=0,
        metavar="N",
        help="follow up to N redirects of the opening request, to the same scheme only; the URL the"
        " server names is used as given, without your --param/--token (default 0: a redirect is an error)",
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


def check_host(url: str) -> None:
    """Fail at once if the URL's host name does not resolve.

    The client retries DNS failures (a resolver can fail for a moment), but a
    command given a host that does not exist should say so in one line instead
    of retrying for ``--connect-timeout`` seconds. Skipped when a proxy from the
    environment resolves names for us.

    Raises:
        ConnectFailedError: the name does not resolve.

    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host or parts.scheme not in ("ws", "wss", "http", "https"):
        return  # the client reports a bad URL itself
    scheme = "https" if parts.scheme in ("wss", "https") else "http"
    if scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        return  # a bad port: the client reports it
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConnectFailedError(
            f"cannot connect to {redact_url(url)}: unknown host {host!r} ({reason})", url=redact_url(url)
        ) from exc


def client_from_args(args: argparse.Namespace, **options: Any) -> Client:
    """A :class:`Client` configured from the shared connection options (after :func:`check_host`)."""
    check_host(args.url)
    return Client(
        args.url,
        params=parse_params(args.param, args.token),
        vsn=args.vsn,
        verify_tls=not args.insecure,
        connect_timeout=args.connect_timeout,
        follow_redirects=args.follow_redirects,
        **options,
    )


class OneLineFormatter(logging.Formatter):
    """A log line whose exception is summed up as ``Type: message`` instead of a traceback (below -vv)."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - the logging API's name
        return f"{ei[0].__name__}: {' '.join(str(ei[1]).split())}" if ei and ei[0] else ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\n", ": ", 1) if record.exc_info else text


def configure_logging(verbose: int, *, server: bool = False) -> None:
    """``-v``: maxsdk INFO logs; ``-vv``: frame-level DEBUG logs (secrets redacted), with tracebacks.

    Args:
        verbose: the count of ``-v`` flags.
        server: the command runs the embedded server: its warnings and errors (a channel
            that crashed) are shown even without ``-v``, one line each.

    """
    if not verbose and not server:
        return
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if verbose >= 2 else OneLineFormatter(fmt))
    logger = logging.getLogger("maxsdk" if verbose else "maxsdk.server")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back while something starts, so that it is never left half started.

    A ``KeyboardInterrupt`` in the middle of starting a server could leave its
    threads running with nothing to stop them (the process would hang instead
    of exiting). SIGINT is blocked meanwhile and arrives when the block ends, as
    a ``KeyboardInterrupt`` the caller's cleanup handles.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
