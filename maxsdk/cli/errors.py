"""Exit statuses of the command line, and the one-line description of an error that ended a command."""

from __future__ import annotations

import errno
import html
import re

from maxsdk import errors

__all__ = ["EXIT", "EXIT_HELP", "CommandError", "describe", "exit_status", "one_line"]

#: Exit statuses (documented in every command's ``--help``, see :data:`EXIT_HELP`).
EXIT = {
    "ok": 0,
    "error_reply": 1,
    "usage": 2,
    "timeout": 3,
    "connection": 4,
    "auth": 5,
    "join_refused": 6,
    "system": 7,
    "internal": 70,
    "interrupted": 130,
}

#: The exit statuses as the ``--help`` texts list them.
EXIT_HELP = """exit status: 0 ok, 1 error reply or channel crashed on the server, 2 usage error,
3 timeout, 4 connection failure (unknown host, refused, lost), 5 authentication
refused, 6 join refused, 7 system error (port in use, no outbox at the path, a file
that cannot be read or is in use), 70 internal error (please report; -vv shows the
traceback), 130 interrupted (Ctrl-C)."""

_MAX_MESSAGE = 300
_MAX_PAGE = 120
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>?")

_CREDENTIALS_HINT = "pass credentials with --token TOKEN or --param KEY=VALUE"
_PATH_HINT = "check the URL's path: Phoenix serves sockets at /socket by default (e.g. ws://localhost:4000/socket)"


class CommandError(Exception):
    """A command's own failure: its one-line message and the exit status it ends with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def exit_status(error: BaseException) -> int:
    """The exit status for an error that ended a command."""
    if isinstance(error, CommandError):
        return error.status
    if isinstance(error, errors.AuthenticationError):
        return EXIT["auth"]
    if isinstance(error, errors.OutboxError):
        return EXIT["system"]
    if isinstance(error, errors.ConnectTimeoutError):
        return EXIT["connection"]  # never connected: the same cause as push's immediate failure
    if isinstance(error, errors.JoinTimeoutError):
        return EXIT["timeout"]
    if isinstance(error, errors.JoinError):
        return EXIT["join_refused"]
    if isinstance(error, errors.ReplyError):
        return EXIT["error_reply"]
    if isinstance(error, errors.MaxsdkTimeoutError):
        return EXIT["timeout"]
    if isinstance(error, (errors.TransportError, errors.ClientClosedError)):
        return EXIT["connection"]
    if isinstance(error, (errors.ConfigurationError, ValueError)):
        return EXIT["usage"]
    if isinstance(error, OSError):
        return EXIT["system"]
    if isinstance(error, errors.MaxsdkError):
        return EXIT["connection"]
    return EXIT["internal"]


def describe(error: BaseException) -> str:
    """One line for an error: its message (a server's HTML page cut down), plus a hint where one helps."""
    if isinstance(error, OSError) and not isinstance(error, errors.MaxsdkError):
        return _describe_os_error(error)
    if not isinstance(error, (errors.MaxsdkError, TimeoutError, ValueError, CommandError)):
        return f"internal error: {type(error).__name__}: {one_line(str(error))} (run with -vv for the traceback)"
    message = one_line(str(error))
    if isinstance(error, errors.HandshakeError) and error.body:
        message = message.replace(one_line(error.body), page_summary(error.body))
    if isinstance(error, errors.AuthenticationError) and error.status is not None:
        return f"{message} (the server refused the credentials: {_CREDENTIALS_HINT})"
    if isinstance(error, errors.HandshakeError) and error.status == 404:
        return f"{message} ({_PATH_HINT})"
    if isinstance(error, errors.HandshakeError) and "follow_redirects is 0" in message:
        return message.replace("follow_redirects is 0", "pass --follow-redirects 1 to follow it")
    if isinstance(error, errors.HandshakeError) and error.status in (200, 301, 302, 400):
        return f"{message} (is this a Phoenix socket URL? {_PATH_HINT})"
    return message


def one_line(text: str) -> str:
    """Whitespace (a server's HTML error page, a multi-line message) collapsed, then cut to a line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def page_summary(body: str) -> str:
    """An HTML error page as a short quoted line (its title, else its text); other bodies as one line."""
    if "<" not in body:
        return one_line(body)
    title = _TITLE.search(body)
    text = title.group(1) if title else _TAG.sub(" ", body)
    text = " ".join(html.unescape(_TAG.sub(" ", text)).split())
    if not text:
        return "an HTML page"
    return f"an HTML page {text if len(text) <= _MAX_PAGE else text[: _MAX_PAGE - 1] + '…'!r}"


def _describe_os_error(error: OSError) -> str:
    reason = error.strerror or one_line(str(error)) or type(error).__name__
    where = f"{error.filename}: " if error.filename else ""
    hint = ""
    if error.errno == errno.EADDRINUSE:
        hint = " (another program uses this port: pick another with --port, or --port 0 for any free one)"
    elif error.errno in (errno.EACCES, errno.EPERM):
        hint = " (permission denied: ports below 1024 need privileges)" if not error.filename else ""
    return f"{where}{reason}{hint}"
