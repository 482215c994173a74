"""Exit statuses of the command line and the mapping from maxsdk errors to them."""

from __future__ import annotations

from maxsdk import errors

__all__ = ["EXIT", "exit_status"]

#: Exit statuses (documented in ``maxsdk --help``).
EXIT = {
    "ok": 0,
    "error_reply": 1,
    "usage": 2,
    "timeout": 3,
    "connection": 4,
    "auth": 5,
    "join_refused": 6,
    "interrupted": 130,
}


def exit_status(error: BaseException) -> int:
    """The exit status for an error that ended a command."""
    if isinstance(error, errors.AuthenticationError):
        return EXIT["auth"]
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
    return EXIT["connection"]
