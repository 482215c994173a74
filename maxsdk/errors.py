"""Every exception maxsdk raises.

Each error derives from :class:`MaxsdkError` and, where a generic caller would
reasonably catch a builtin, from that builtin too (``TimeoutError``,
``ValueError``, ``RuntimeError``, ``ConnectionError``) without reusing its name.
Errors carry context as attributes (``topic``, ``event``, ``status``,
``code``...) and never carry secrets: URLs are redacted before they reach a
message.

::

    MaxsdkError
    ├── ConfigurationError (ValueError)        a bad argument or option
    ├── ProtocolError
    │   ├── LocalProtocolError (ValueError)    we were asked to send what the protocol cannot carry
    │   └── RemoteProtocolError (ValueError)   the peer sent something malformed
    │       └── MessageTooLargeError           a frame above ``max_message_size``
    ├── TransportError (ConnectionError)
    │   ├── ConnectFailedError                 the connection could not be opened
    │   │   ├── HandshakeError                 the upgrade was refused with an HTTP status
    │   │   │   └── AuthenticationError        ... with 401 or 403
    │   │   └── TLSVerificationError           the server certificate did not verify
    │   └── ConnectionLostError                an open connection dropped
    ├── ClientClosedError (RuntimeError)       the client was closed, or gave up reconnecting
    ├── ChannelError
    │   ├── JoinError                          the server refused a join (carries its reason)
    │   ├── ChannelClosedError (RuntimeError)  the channel is closed (left, or never joined)
    │   └── ReplyError                         a push got an ``error`` reply
    ├── MaxsdkTimeoutError (TimeoutError)
    │   ├── ConnectTimeoutError                no connection within the timeout
    │   ├── JoinTimeoutError (also JoinError)  no join reply within the timeout
    │   └── ReplyTimeoutError                  no reply within the timeout
    │       └── ReplyLostError                 the connection or channel dropped before the reply
    ├── CapacityError (RuntimeError)           a bounded table is full
    ├── ForkedClientError (RuntimeError)       a client created before os.fork() used in the child
    └── WrongThreadError (RuntimeError)        a blocking call from one of maxsdk's own threads
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "CapacityError",
    "ChannelClosedError",
    "ChannelError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ForkedClientError",
    "HandshakeError",
    "JoinError",
    "JoinTimeoutError",
    "LocalProtocolError",
    "MaxsdkError",
    "MaxsdkTimeoutError",
    "MessageTooLargeError",
    "ProtocolError",
    "RemoteProtocolError",
    "ReplyError",
    "ReplyLostError",
    "ReplyTimeoutError",
    "TLSVerificationError",
    "TransportError",
    "WrongThreadError",
]


class MaxsdkError(Exception):
    """Base class of every error raised by maxsdk."""


class ConfigurationError(MaxsdkError, ValueError):
    """An argument or option has a wrong type or value."""


# -- protocol ---------------------------------------------------------------


class ProtocolError(MaxsdkError):
    """Something violates the wire protocol."""


class LocalProtocolError(ProtocolError, ValueError):
    """We were asked to send something the protocol cannot carry.

    Example: a binary push whose topic is longer than 255 UTF-8 bytes.
    """


class RemoteProtocolError(ProtocolError, ValueError):
    """The peer sent a frame that cannot be decoded or makes no sense.

    Attributes:
        frame: a short, printable excerpt of the offending frame.

    """

    def __init__(self, message: str, *, frame: str | bytes | None = None) -> None:
        super().__init__(message)
        self.frame = _excerpt(frame) if frame is not None else None


class MessageTooLargeError(RemoteProtocolError):
    """A frame larger than ``max_message_size`` was refused.

    Attributes:
        size: the announced size in bytes.
        limit: the configured limit in bytes.

    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds max_message_size={limit}")
        self.size = size
        self.limit = limit


# -- transport ----------------------------------------------------------------


class TransportError(MaxsdkError, ConnectionError):
    """The network connection failed or dropped.

    Attributes:
        url: the redacted URL of the endpoint, if known.

    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ConnectFailedError(TransportError):
    """The connection could not be opened (refused, DNS, reset, bad URL...)."""


class HandshakeError(ConnectFailedError):
    """The server answered the WebSocket upgrade with an HTTP error status.

    Attributes:
        status: the HTTP status code (e.g. 403, 404, 503).
        body: the start of the response body, if any.

    """

    def __init__(self, status: int, *, url: str | None = None, body: str = "") -> None:
        detail = f": {body[:200]}" if body else ""
        super().__init__(f"WebSocket upgrade refused with HTTP {status}{detail}", url=url)
        self.status = status
        self.body = body[:200]


class AuthenticationError(HandshakeError):
    """The server refused the connection's credentials (HTTP 401 or 403)."""


class TLSVerificationError(ConnectFailedError):
    """The server's TLS certificate could not be verified."""


class ConnectionLostError(TransportError):
    """An open connection dropped.

    Attributes:
        code: the WebSocket close code, if the server sent one.
        reason: the close reason or a description of the failure.

    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str = "",
        url: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.code = code
        self.reason = reason


class ClientClosedError(MaxsdkError, RuntimeError):
    """The client is closed (explicitly, or after giving up reconnecting)."""


# -- channels -----------------------------------------------------------------


class ChannelError(MaxsdkError):
    """Base class for channel-level failures.

    Attributes:
        topic: the channel topic.

    """

    def __init__(self, message: str, *, topic: str) -> None:
        super().__init__(message)
        self.topic = topic


class JoinError(ChannelError):
    """The server refused to join the channel.

    Attributes:
        response: the server's response payload (often ``{"reason": ...}``).
        reason: ``response["reason"]`` when present, else ``None``.

    """

    def __init__(self, topic: str, response: Any, *, message: str | None = None) -> None:
        reason = response.get("reason") if isinstance(response, dict) else None
        super().__init__(message or f"join {topic!r} refused: {reason or response!r}", topic=topic)
        self.response = response
        self.reason = reason


class ChannelClosedError(ChannelError, RuntimeError):
    """The channel is closed: it was left, closed by the server, or never joined."""


class ReplyError(ChannelError):
    """A push received an ``error`` reply.

    Attributes:
        event: the pushed event.
        status: the reply status (``"error"``).
        response: the server's response payload.
        reply: the full :class:`maxsdk.Reply`.

    """

    def __init__(self, reply: Any) -> None:
        super().__init__(
            f"{reply.event!r} on {reply.topic!r} replied {reply.status!r}: {_excerpt(repr(reply.response))}",
            topic=reply.topic,
        )
        self.reply = reply
        self.event = reply.event
        self.status = reply.status
        self.response = reply.response


# -- timeouts -----------------------------------------------------------------


class MaxsdkTimeoutError(MaxsdkError, TimeoutError):
    """Base class for every timeout; also a builtin :class:`TimeoutError`."""


class ConnectTimeoutError(MaxsdkTimeoutError):
    """No connection could be opened within the timeout.

    The last underlying failure, if any, is chained as ``__cause__``.
    """


class JoinTimeoutError(JoinError, MaxsdkTimeoutError):
    """No reply to a join within the timeout."""

    def __init__(self, topic: str, timeout: float) -> None:
        super().__init__(topic, None, message=f"join {topic!r} timed out after {timeout:g} s")
        self.timeout = timeout


class ReplyTimeoutError(MaxsdkTimeoutError):
    """No reply arrived for a push within its timeout.

    Attributes:
        topic: the channel topic.
        event: the pushed event.

    """

    def __init__(self, message: str, *, topic: str, event: str) -> None:
        super().__init__(message)
        self.topic = topic
        self.event = event


class ReplyLostError(ReplyTimeoutError):
    """The push was sent but its connection or channel went away before a reply.

    Whether the server processed it is unknown. It is a :class:`ReplyTimeoutError`
    because that is the outcome the Phoenix protocol defines for such pushes;
    it is raised at once instead of after the full timeout.
    """


class CapacityError(MaxsdkError, RuntimeError):
    """A bounded table or queue is full and the operation was refused."""


class ForkedClientError(MaxsdkError, RuntimeError):
    """A client created in a parent process was used in a forked child.

    Its threads and socket did not survive the fork (gunicorn/uwsgi workers
    with preloading, multiprocessing with fork). Create the client in the
    child (for example lazily, see :mod:`maxsdk.integrations`).
    """


class WrongThreadError(MaxsdkError, RuntimeError):
    """A blocking call was made from one of maxsdk's internal threads.

    Blocking there would deadlock; use the ``*_nowait`` variant instead.
    """


def _excerpt(value: str | bytes, limit: int = 120) -> str:
    """Return a short printable excerpt of ``value`` for error messages."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"
