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
    │   │   │       ├── AuthRefusedError       ... or the auth message sent after connecting was refused
    │   │   │       └── TokenRejectedError     a token endpoint refused with a 4xx (also TokenFetchError)
    │   │   ├── TLSVerificationError           the server certificate did not verify
    │   │   │   └── CertificatePinError        ... or its key matches none of the pins
    │   │   └── TokenFetchError                no token could be fetched from a token endpoint
    │   ├── ConnectionLostError                an open connection dropped
    │   └── NotConnectedError                  not connected, and the client was told not to wait
    ├── ClientClosedError (RuntimeError)       the client was closed, or gave up reconnecting
    ├── RpcError                               a request got an error response (``code``, ``message``, ``data``)
    ├── ChannelError
    │   ├── JoinError                          the server refused a join (carries its reason)
    │   │   └── SubscriptionError              the server refused a topic subscription
    │   ├── ChannelClosedError (RuntimeError)  the channel is closed (left, or never joined)
    │   └── ReplyError                         a push got an ``error`` reply
    │       └── StateConflictError             the server refused an optimistic state update
    ├── MaxsdkTimeoutError (TimeoutError)
    │   ├── ConnectTimeoutError                no connection within the timeout
    │   ├── JoinTimeoutError (also JoinError)  no join reply within the timeout
    │   └── ReplyTimeoutError                  no reply within the timeout
    │       └── ReplyLostError                 the connection or channel dropped before the reply
    ├── CapacityError (RuntimeError)           a bounded table is full
    ├── PatchError (ValueError)                a JSON Patch / Merge Patch does not apply to a document
    ├── ForkedClientError (RuntimeError)       a client created before os.fork() used in the child
    ├── WrongThreadError (RuntimeError)        a blocking call from one of maxsdk's own threads
    └── OutboxError                            the durable outbox's store failed; the message was not accepted
        ├── OutboxFullError (also CapacityError) the size bound refused a message
        ├── OutboxLockedError (RuntimeError)   another store, maybe in another process, holds the file
        ├── OutboxClosedError (RuntimeError)   the store is closed
        └── OutboxStorageError                 the disk is full or read-only, or an I/O error
            └── OutboxCorruptError             the file is not a valid outbox database
"""

from __future__ import annotations

from typing import Any

from maxsdk._redaction import redact_text

__all__ = [
    "AuthRefusedError",
    "AuthenticationError",
    "CapacityError",
    "CertificatePinError",
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
    "NotConnectedError",
    "OutboxClosedError",
    "OutboxCorruptError",
    "OutboxError",
    "OutboxFullError",
    "OutboxLockedError",
    "OutboxStorageError",
    "PatchError",
    "ProtocolError",
    "RemoteProtocolError",
    "ReplyError",
    "ReplyLostError",
    "ReplyTimeoutError",
    "RpcError",
    "StateConflictError",
    "SubscriptionError",
    "TLSVerificationError",
    "TokenFetchError",
    "TokenRejectedError",
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
        topic: the channel the frame was for, when known (e.g. a malformed
            ``presence_diff``), else ``None``.

    """

    def __init__(self, message: str, *, frame: str | bytes | None = None, topic: str | None = None) -> None:
        super().__init__(message)
        self.frame = _excerpt(frame) if frame is not None else None
        self.topic = topic


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
        body: the start of the response body, if any, with query strings,
            URL user info and ``Bearer`` credentials redacted.

    """

    def __init__(self, status: int, *, url: str | None = None, body: str = "") -> None:
        # A server may echo our request line or headers: redact before truncating.
        body = redact_text(body[:4096])[:200] if body else ""
        detail = f": {body}" if body else ""
        super().__init__(f"WebSocket upgrade refused with HTTP {status}{detail}", url=url)
        self.status = status
        self.body = body


class AuthenticationError(HandshakeError):
    """The server refused the connection's credentials (HTTP 401 or 403)."""


class AuthRefusedError(AuthenticationError):
    """The server refused the authentication message sent after the connection opened.

    Protocols that authenticate in-band (a login message rather than the
    HTTP upgrade) report a refusal with this error; ``status`` is ``None``.

    Attributes:
        response: the server's answer (its error object or message), if any.

    """

    def __init__(self, message: str, *, url: str | None = None, response: Any = None) -> None:
        ConnectFailedError.__init__(self, message, url=url)
        self.status = None  # type: ignore[assignment]  # no HTTP status: refused in-band
        self.body = ""
        self.response = response


class TLSVerificationError(ConnectFailedError):
    """The server's TLS certificate could not be verified."""


class CertificatePinError(TLSVerificationError):
    """The server's certificate verified, but its public key matches none of the pins.

    Attributes:
        seen: the pin of the certificate the server showed (``"sha256/<base64>"``).
        expected: the configured pins.

    """

    def __init__(self, message: str, *, url: str | None = None, seen: str = "", expected: tuple[str, ...] = ()) -> None:
        super().__init__(message, url=url)
        self.seen = seen
        self.expected = expected


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


class NotConnectedError(TransportError):
    """A push was refused because the client is not connected and ``offline="raise"``."""


class ClientClosedError(MaxsdkError, RuntimeError):
    """The client is closed (explicitly, or after giving up reconnecting)."""


# -- requests -----------------------------------------------------------------


class RpcError(MaxsdkError):
    """A request received an error response (JSON-RPC 2.0 ``error`` object, or a feed's error reply).

    JSON-RPC reserves ``-32700`` (parse error), ``-32600`` (invalid request),
    ``-32601`` (method not found), ``-32602`` (invalid params), ``-32603``
    (internal error) and ``-32000..-32099`` (server errors); other codes are
    the application's.

    Attributes:
        code: the error code (``None`` when the protocol has none).
        message: the server's short description.
        data: the optional ``data`` member (any JSON value), else ``None``.
        method: the method (or operation) of the failed request, if known.

    """

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603

    def __init__(self, code: int | None, message: str, data: Any = None, *, method: str | None = None) -> None:
        where = f"{method!r} failed: " if method else ""
        super().__init__(f"{where}{message} (code {code})" if code is not None else f"{where}{message}")
        self.code = code
        self.message = message
        self.data = data
        self.method = method

    @property
    def is_server_error(self) -> bool:
        """Whether the code is in JSON-RPC's implementation-defined server range (-32099..-32000)."""
        return self.code is not None and -32099 <= self.code <= -32000


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


class SubscriptionError(JoinError):
    """The server refused to subscribe to a topic (generic JSON feeds).

    Attributes:
        response: the server's error (reply error object or control message).

    """

    def __init__(self, topic: str, response: Any) -> None:
        super().__init__(topic, response, message=f"subscription to {topic!r} refused: {_excerpt(repr(response))}")


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


class StateConflictError(ReplyError):
    """The server refused an optimistic update of a replicated state (see ``docs/state.md``).

    The local copy has already been rolled back when this is raised.

    Attributes:
        reason: the server's reason (``"conflict"``, ``"invalid patch"``...).
        version: the server's current version, when it said so.

    """

    def __init__(self, reply: Any) -> None:
        super().__init__(reply)
        response = reply.response if isinstance(reply.response, dict) else {}
        self.reason: str | None = response.get("reason")
        version = response.get("version")
        self.version: int | None = version if type(version) is int else None


class PatchError(MaxsdkError, ValueError):
    """A JSON Patch (RFC 6902) or JSON Merge Patch (RFC 7396) is malformed or does not apply.

    Attributes:
        op: the patch kind, ``"json"`` or ``"merge"``.

    """

    def __init__(self, message: str, *, op: str) -> None:
        super().__init__(message)
        self.op = op


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


# -- token provider (maxsdk.auth) ------------------------------------------------


class TokenFetchError(ConnectFailedError):
    """A token could not be fetched from a token endpoint (:class:`maxsdk.auth.TokenProvider`).

    Every failure of the fetch maps to this type: connection errors and
    timeouts, 5xx statuses after the retries, 4xx statuses, a body that is not
    JSON or lacks the token field. It is a :class:`ConnectFailedError` because,
    raised from a ``params``/``headers``/``auth_token`` callable, it means the
    connection could not be opened; the client then retries on its reconnect
    schedule. The message never contains the token, the request body or the
    response body.

    Attributes:
        status: the HTTP status of the last response, or ``None`` when none
            arrived (connection error, timeout).
        url: the token endpoint's redacted URL.
        reason: a short description of what went wrong.
        attempts: how many requests were made.

    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        reason: str = "",
        attempts: int = 1,
    ) -> None:
        # Not super().__init__: in TokenRejectedError the next class in the MRO
        # is HandshakeError, whose constructor takes a status, not a message.
        TransportError.__init__(self, message, url=url)
        self.status = status
        self.reason = reason
        self.attempts = attempts
        self.body = ""


class TokenRejectedError(TokenFetchError, AuthenticationError):
    """The token endpoint refused the request with a 4xx status (bad client credentials...).

    Also an :class:`AuthenticationError`, so the client treats it like a
    refused upgrade: fatal when ``status`` is one of its ``fatal_statuses``
    (after one retry with freshly evaluated credentials), retried otherwise.
    """

    status: int


# -- durable outbox (maxsdk._runtime.outbox_store) ---------------------------------------


class OutboxError(MaxsdkError):
    """The durable outbox's store failed; an operation that raises it did not take effect.

    A ``put`` that raises it did not accept the message: nothing of it was
    written.

    Attributes:
        path: the store's directory, if known.
        reason: a short machine-readable cause (``"disk_full"``, ``"read_only"``,
            ``"locked"``, ``"corrupt"``, ``"io"``, ``"full"``, ``"closed"``...).

    """

    def __init__(self, message: str, *, path: str | None = None, reason: str = "error") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


class OutboxFullError(OutboxError, CapacityError):
    """The outbox is at its size bound and the new message was refused.

    Attributes:
        limit: the bound that was reached.
        unit: ``"messages"`` or ``"bytes"``.

    """

    def __init__(self, message: str, *, limit: int, unit: str, path: str | None = None) -> None:
        super().__init__(message, path=path, reason="full")
        self.limit = limit
        self.unit = unit


class OutboxLockedError(OutboxError, RuntimeError):
    """Another store, in this process or another one, holds the outbox file."""


class OutboxClosedError(OutboxError, RuntimeError):
    """The store is closed."""


class OutboxStorageError(OutboxError):
    """The disk refused: it is full or read-only, or an I/O error occurred."""


class OutboxCorruptError(OutboxStorageError):
    """The file is not a valid outbox database (corrupt, truncated or foreign)."""
