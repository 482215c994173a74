"""The long-poll transport (reference §1.8) on a keep-alive ``requests.Session``.

One "connection" is a server-side session named by a signed token:

* **open**: ``GET <mount>/longpoll?<params>&vsn=...`` without a token; a
  logical ``410`` with a token means the session exists (phoenix.js fires
  ``onopen`` here), ``403`` means the connect handler refused. A redirect
  is refused unless ``follow_redirects`` allows it, with the WebSocket
  upgrade's rules (:mod:`maxsdk._runtime.redirects`); the session then lives
  at the final URL. Later requests never follow one (a session does not move).
* **receive** (:meth:`LongPollTransport.recv`): ``GET`` with the token,
  held by the server up to its window (10 s): ``200`` carries messages (each
  the serialized frame, returned one at a time), ``204`` means poll again.
* **send** (:meth:`LongPollTransport.send_many`): ``POST`` of an NDJSON
  batch of at most 100 lines (V2 text as is, binary as base64), answered
  ``200`` once the server handled every line.

Every response is HTTP 200 with the logical status in its JSON body. The
token goes in the ``X-Phoenix-Longpoll-Token`` header (Phoenix >= 1.8.10)
and in the ``token`` query parameter (what older servers read), exactly as
the server handed it out.

How failures end a connection, as phoenix.js's ``LongPoll`` does: a ``410``
while holding a token is session loss (close code 3410 ``session_gone``),
``403`` closes with 1008, a network failure, HTTP 500 or a failed POST with
1011, a request outliving ``poll_timeout`` (20 s, twice the server window)
with 1005. The engine reconnects (a fresh session) and channels rejoin.

Aborting must wake a blocked poll at once: every HTTP connection this
transport opens is tracked, and :meth:`~LongPollTransport.abort` shuts their
sockets down (the poll's read then fails immediately).

Every exception of ``requests``/``urllib3`` is mapped to ours here. URLs in
messages and logs are redacted; tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, NamedTuple, NoReturn, cast
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from maxsdk._runtime.redirects import REDIRECT_STATUSES, RedirectChain
from maxsdk._runtime.tls_http import ContextAdapter, PinnedHTTPSConnection
from maxsdk._runtime.tls_http import find_cause as _find
from maxsdk._runtime.transport import BINARY, CLOSE, TEXT, TransportOptions
from maxsdk.endpoint import redact_url
from maxsdk.errors import (
    AuthenticationError,
    CertificatePinError,
    ConnectFailedError,
    ConnectionLostError,
    HandshakeError,
    MessageTooLargeError,
    TLSVerificationError,
)

__all__ = ["DEFAULT_POLL_TIMEOUT", "MAX_BATCH", "LongPollTransport", "longpoll_url", "open_longpoll"]

log = logging.getLogger("maxsdk.transport")

MAX_BATCH = 100
"""Most lines in one POST (phoenix.js ``MAX_LONGPOLL_BATCH_SIZE``; the server ignores more)."""

DEFAULT_POLL_TIMEOUT = 20.0
"""Seconds one request may take (phoenix.js ``longpollerTimeout``: twice the server window)."""

_TOKEN_HEADER = "X-Phoenix-Longpoll-Token"
_AUTH_HEADER = "X-Phoenix-AuthToken"
_BEARER = "base64url.bearer.phx."
_NDJSON = "application/x-ndjson"
_JSON = "application/json"
_BODY_SLACK = 64 * 1024
_BODY_FACTOR = 8
"""An answer may be ``_BODY_FACTOR`` x ``max_message_size`` + ``_BODY_SLACK`` bytes: room for one
message at the limit written as a JSON string (escapes grow it up to 6x), and the envelope."""
_CERT_REQS = {ssl.CERT_NONE: "CERT_NONE", ssl.CERT_OPTIONAL: "CERT_OPTIONAL", ssl.CERT_REQUIRED: "CERT_REQUIRED"}


def longpoll_url(url: str) -> str:
    """The long-poll URL of a WebSocket URL (reference §1.8).

    ``ws``/``wss`` become ``http``/``https`` and a trailing ``/websocket``
    becomes ``/longpoll`` (appended when absent); the query is kept.

    >>> longpoll_url("wss://h/socket/websocket?vsn=2.0.0")
    'https://h/socket/longpoll?vsn=2.0.0'
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/")
    path = path[: -len("/websocket")] if path.endswith("/websocket") else path
    return urlunsplit((scheme, parts.netloc, path + "/longpoll", parts.query, ""))


def open_longpoll(
    url: str,
    options: TransportOptions,
    *,
    redacted_url: str | None = None,
    poll_timeout: float = DEFAULT_POLL_TIMEOUT,
) -> LongPollTransport:
    """Open a long-poll session for the WebSocket-style ``url`` and return the transport.

    Args:
        url: the connection URL (``ws(s)://.../websocket?...``) or its long-poll form.
        options: the same options the WebSocket path gets (headers, TLS, proxy,
            ``connect_timeout``; an ``authToken`` subprotocol becomes the
            ``X-Phoenix-AuthToken`` header).
        redacted_url: unused (the long-poll URL is redacted here); accepted
            for the connector's uniform call.
        poll_timeout: seconds a poll or POST may take before the connection
            counts as lost (close 1005).

    Raises:
        AuthenticationError: the server refused the session (logical 403, or HTTP 401/403).
        HandshakeError: another HTTP status, or an answer that is not the long-poll protocol.
        TLSVerificationError: the certificate did not verify.
        ConnectFailedError: any other failure (refused, DNS, timeout, reset).

    """
    transport = LongPollTransport(longpoll_url(url), options, poll_timeout=poll_timeout)
    try:
        transport.open()
    except BaseException:
        transport.abort()
        raise
    return transport


class LongPollTransport:
    """An open long-poll session; satisfies :class:`maxsdk._runtime.transport.Transport`.

    ``recv`` is called by one thread (the reader); ``send``/``send_many`` by
    one writer at a time (the engine's send lock); ``close`` and ``abort``
    from any thread.
    """

    kind = "longpoll"
    heartbeats = False  # phoenix.js skips heartbeats on long-poll (reference §4.1)

    def __init__(self, url: str, options: TransportOptions, *, poll_timeout: float = DEFAULT_POLL_TIMEOUT) -> None:
        """Prepare a session for the long-poll ``url`` (nothing is sent until :meth:`open`)."""
        self.url = url
        self.redacted_url = redact_url(url)
        self._connect_timeout = options.connect_timeout
        self._limit = options.max_message_size
        limit = options.max_message_size
        self._body_limit = None if limit is None else limit * _BODY_FACTOR + _BODY_SLACK
        self._poll_timeout = poll_timeout
        self._tracker = _Tracker()
        self._http = requests.Session()
        self._http.mount("http://", _Adapter(self._tracker, None))
        self._http.mount("https://", _Adapter(self._tracker, options.ssl_context, options.pins, self.redacted_url))
        # The environment (HTTP(S)_PROXY, NO_PROXY) is read once per connection, not per request:
        # requests' per-request lookups (proxies, .netrc) cost more than a local round trip.
        self._http.trust_env = False
        self._explicit_proxies = _proxies(options.proxy, options.proxy_type)
        self._proxies = self._explicit_proxies or requests.utils.get_environ_proxies(url)
        self._polling: requests.PreparedRequest | None = None
        self._headers = {name: value for name, value in options.headers}
        self._origin = options.origin
        if options.origin is not None:
            self._headers["Origin"] = options.origin
        self._follow_redirects = options.follow_redirects
        self._auth_token = _auth_token(options.subprotocols)
        self._token: str | None = None
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()
        self._closing: tuple[int, str] | None = None
        self._failure: ConnectionLostError | None = None
        self._released = False

    def __repr__(self) -> str:
        state = "open" if self._token is not None and not self._tracker.aborted else "closed"
        return f"<LongPollTransport {self.redacted_url} {state}>"

    # -- opening ---------------------------------------------------------------------

    def open(self) -> None:
        """Send the session-opening GET (following redirects if allowed); see :func:`open_longpoll`."""
        headers = {"Accept": _JSON}
        if self._auth_token is not None:
            headers[_AUTH_HEADER] = self._auth_token
        chain = RedirectChain(self.url, self._follow_redirects, schemes=("http", "https"))
        deadline = time.monotonic() + self._connect_timeout
        while True:
            response = self._open_request(headers, deadline)
            if response.status_code not in REDIRECT_STATUSES:
                break
            was = self.redacted_url
            try:
                self.url = chain.follow(response.status_code, response.location)
            except HandshakeError as exc:
                raise self._refused(HandshakeError, f"HTTP {exc.status}", exc.status, exc.body) from None
            self.redacted_url = redact_url(self.url)
            if chain.cross_origin:  # no credentials to another origin (see maxsdk._runtime.redirects)
                self._headers = {} if self._origin is None else {"Origin": self._origin}
                headers.pop(_AUTH_HEADER, None)
                self._auth_token = None
                self._proxies = self._explicit_proxies or requests.utils.get_environ_proxies(self.url)
            log.info(
                "following redirect %d from %s to %s (%d of at most %d%s)",
                response.status_code,
                was,
                self.redacted_url,
                chain.hops,
                self._follow_redirects,
                "; another origin: credentials not sent" if chain.cross_origin else "",
            )
        self._opened(response)

    def _open_request(self, headers: dict[str, str], deadline: float) -> _Answer:
        """One GET of the opening chain, within what is left of the connect timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectFailedError(f"cannot connect to {self.redacted_url}: timed out", url=self.redacted_url)
        try:
            return self._request("GET", headers, None, left, connect_timeout=left)
        except requests.RequestException as exc:
            pin = _find(exc, CertificatePinError)
            if pin is not None:
                raise pin from None
            if _find(exc, ssl.SSLCertVerificationError) is not None:
                raise TLSVerificationError(
                    f"TLS certificate verification failed for {self.redacted_url}: {_describe(exc)}",
                    url=self.redacted_url,
                ) from None
            raise ConnectFailedError(
                f"cannot connect to {self.redacted_url}: {_describe(exc)}", url=self.redacted_url
            ) from None
        except _BodyTooLargeError as exc:
            raise self._refused(HandshakeError, f"an answer of more than {exc.limit} bytes", 200, "") from None

    def _opened(self, response: _Answer) -> None:
        """Take the session token from the opening GET's answer, or raise."""
        body = _json_body(response)
        if response.status_code != 200:
            error_class = AuthenticationError if response.status_code in (401, 403) else HandshakeError
            raise self._refused(error_class, f"HTTP {response.status_code}", response.status_code, _excerpt(response))
        if body is None:
            what = "an answer nested too deeply" if _too_deep(response) else "an answer that is not JSON"
            raise self._refused(HandshakeError, what, 200, _excerpt(response))
        status = body.get("status")
        if status == 403:
            raise self._refused(AuthenticationError, "status 403", 403, "")
        token = body.get("token")
        if status != 410 or not isinstance(token, str):
            code = status if isinstance(status, int) else 200
            raise self._refused(HandshakeError, f"status {status!r}", code, _excerpt(response))
        self._token = token
        log.debug("long-poll session opened at %s", self.redacted_url)

    def _refused(self, error_class: type[HandshakeError], what: str, status: int, body: str) -> HandshakeError:
        """A handshake error worded for long-poll (the class's own message speaks of an upgrade)."""
        error = error_class(status, url=self.redacted_url, body=body)
        detail = f": {error.body}" if error.body else ""
        error.args = (f"long-poll session refused by {self.redacted_url} with {what}{detail}",)
        return error

    # -- receiving ---------------------------------------------------------------------

    def recv(self) -> tuple[int, Any]:
        """Return the next message as ``(TEXT, str)`` (polling as needed), or ``(CLOSE, (code, reason))``.

        A message that is not JSON text is a binary frame the server wrote as
        a string (Phoenix does this for binary frames that are valid UTF-8):
        it comes back as ``(BINARY, bytes)``.

        Raises:
            MessageTooLargeError: a message above ``max_message_size`` (it is
                dropped; the next call goes on with the following one).
            ConnectionLostError: the session is gone (3410), refused (1008),
                failed (1011), timed out (1005), sent an answer above the body
                limit (1009) or was aborted (1006).

        """
        pending = self._pending
        while True:
            if pending:
                message = pending.popleft()
                limit = self._limit
                if limit is not None and len(message) > limit // 4:  # only long ones need encoding
                    size = len(message.encode("utf-8", "surrogatepass"))
                    if size > limit:  # dropped like a WebSocket frame over the limit
                        raise MessageTooLargeError(size, limit)
                if message[:1] in ("[", "{"):
                    return TEXT, message
                return BINARY, message.encode("utf-8")
            ended = self._ended()
            if ended is not None:
                return ended
            self._poll()

    def _ended(self) -> tuple[int, Any] | None:
        """``(CLOSE, ...)`` after :meth:`close`; raises after a failure or :meth:`abort`."""
        with self._lock:
            closing, failure = self._closing, self._failure
        if failure is not None:
            raise failure
        if closing is not None:
            return CLOSE, closing
        if self._tracker.aborted:
            raise ConnectionLostError(
                "long-poll connection aborted", code=1006, reason="aborted", url=self.redacted_url
            )
        return None

    def _poll(self) -> None:
        try:
            response = self._request("GET", {"Accept": _JSON}, None, self._poll_timeout)
        except requests.Timeout:
            self._raise_unless_ended(1005, "timeout", "long-poll request timed out")
            return
        except requests.RequestException as exc:
            self._raise_unless_ended(1011, _describe(exc), f"long-poll request failed: {_describe(exc)}")
            return
        except _BodyTooLargeError as exc:  # like a WebSocket message over the limit: close 1009, reconnect
            self._raise_unless_ended(1009, "message too big", f"long-poll answer of more than {exc.limit} bytes")
            return
        body = _json_body(response)
        if response.status_code != 200 or body is None:
            what = f"HTTP {response.status_code}" if response.status_code != 200 else "an answer that is not JSON"
            if response.status_code == 200 and _too_deep(response):
                what = "an answer nested too deeply"
            self._raise_unless_ended(1011, "internal server error", f"long-poll poll got {what}")
            return
        status = body.get("status")
        if status == 410:
            # We hold a token, so the session we had is gone (the server made a new one).
            self._fail(3410, "session_gone", "long-poll session gone (410)")
        token = body.get("token")
        if isinstance(token, str):
            self._token = token
        if status == 200:
            messages = body.get("messages")
            if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
                self._fail(1011, "malformed answer", "long-poll answer without a list of string messages")
            self._pending.extend(cast("list[str]", messages))
        elif status == 403:
            self._fail(1008, "forbidden", "long-poll session refused (403)")
        elif status != 204:
            self._fail(1011, f"unexpected status {status!r}", f"long-poll poll got status {status!r}")

    # -- sending ---------------------------------------------------------------------------

    def send(self, frame: str | bytes) -> int:
        """Send one message (a POST of one line); return the bytes posted."""
        return self.send_many((frame,))

    def send_many(self, frames: Sequence[str | bytes]) -> int:
        """POST ``frames`` in order, in NDJSON batches of at most :data:`MAX_BATCH` lines.

        V2 text frames go as they are, binary frames as base64 lines. A text
        frame that is not a JSON array (V1) cannot be an NDJSON line (the
        server would take it for base64): it is POSTed alone, the way older
        clients did.

        Raises:
            ConnectionLostError: the POST failed (1011, 3410 when the session
                is gone, 1005 on timeout); the connection is then lost.

        """
        total = 0
        for body, content_type in _bodies(frames):
            total += self._post(body, content_type)
        return total

    def _post(self, body: bytes, content_type: str) -> int:
        self._raise_if_ended()
        try:
            response = self._request("POST", {"Accept": _JSON, "Content-Type": content_type}, body, self._poll_timeout)
        except requests.Timeout:
            self._raise_if_ended()  # close()/abort() cut it short: not a failure of the session
            self._fail(1005, "timeout", "long-poll POST timed out")
        except requests.RequestException as exc:
            self._raise_if_ended()
            self._fail(1011, _describe(exc), f"long-poll POST failed: {_describe(exc)}")
        except _BodyTooLargeError as exc:
            self._raise_if_ended()
            self._fail(1009, "message too big", f"long-poll POST answer of more than {exc.limit} bytes")
        body_json = _json_body(response)
        status = body_json.get("status") if body_json is not None and response.status_code == 200 else None
        if status == 410:
            self._fail(3410, "session_gone", "long-poll session gone (410 on POST)")
        if status != 200:
            what = f"status {status}" if status is not None else f"HTTP {response.status_code}"
            self._fail(1011, "internal server error", f"long-poll POST answered {what}")
        return len(body)

    # -- ending -------------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """End the session from our side: a blocked :meth:`recv` returns ``(CLOSE, (code, reason))``.

        Long-poll has no close message; the server expires the session once
        nobody polls it. Never raises.
        """
        with self._lock:
            if self._closing is None and self._failure is None:
                self._closing = (code, reason)
        self._tracker.abort()

    def abort(self) -> None:
        """Drop everything at once: wake a blocked :meth:`recv`, release sockets; never raises."""
        self._tracker.abort()
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._http.close()
        except Exception:  # best effort release
            log.debug("closing the long-poll HTTP session failed", exc_info=True)

    def release(self) -> None:
        """The reader is done with the session: the same as :meth:`abort` (idempotent)."""
        self.abort()

    # -- helpers ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
        *,
        connect_timeout: float | None = None,
    ) -> _Answer:
        token = self._token
        poll = method == "GET" and token is not None and body is None
        prepared = self._polling if poll else None
        if prepared is None or prepared.headers.get(_TOKEN_HEADER) != token:
            prepared = self._prepare(method, headers, body, token)
            if poll:
                self._polling = prepared  # polls repeat: prepare once per token
        response = self._http.send(
            prepared.copy(),
            timeout=(self._connect_timeout if connect_timeout is None else connect_timeout, timeout),
            proxies=self._proxies,
            allow_redirects=False,
            stream=True,  # read below, bounded
            verify=True,
            cert=None,
        )
        try:
            return _Answer(
                response.status_code, _read_bounded(response, self._body_limit), response.headers.get("location")
            )
        except _BodyTooLargeError:
            response.close()  # the rest is never read: the connection is not reused
            raise

    def _prepare(
        self, method: str, headers: dict[str, str], body: bytes | None, token: str | None
    ) -> requests.PreparedRequest:
        url = self.url
        merged = dict(self._headers)
        merged.update(headers)
        if token is not None:
            # Header for Phoenix >= 1.8.10, query parameter for older servers (§1.8).
            merged[_TOKEN_HEADER] = token
            url += ("&" if urlsplit(url).query else "?") + "token=" + quote(token, safe="")
        return self._http.prepare_request(requests.Request(method, url, headers=merged, data=body))

    def _raise_if_ended(self) -> None:
        """Raise :class:`ConnectionLostError` if the transport was closed, aborted or failed."""
        ended = self._ended()  # raises after a failure or abort()
        if ended is not None:
            raise ConnectionLostError("long-poll connection closed", code=ended[1][0], url=self.redacted_url)

    def _raise_unless_ended(self, code: int, reason: str, message: str) -> None:
        """After a failed request: report ``close``/``abort`` if that caused it, else fail."""
        if self._ended() is None:
            self._fail(code, reason, message)

    def _fail(self, code: int, reason: str, message: str) -> NoReturn:
        error = ConnectionLostError(message, code=code, reason=reason, url=self.redacted_url)
        with self._lock:
            if self._failure is None and self._closing is None:
                self._failure = error
        log.debug("%s: %s", self.redacted_url, message)
        raise error


# -- batching ------------------------------------------------------------------------------------


def _bodies(frames: Iterable[str | bytes]) -> Iterator[tuple[bytes, str]]:
    """Group frames into POST bodies: NDJSON batches, and lone V1 text frames."""
    lines: list[str] = []
    for frame in frames:
        if isinstance(frame, str):
            if frame[:1] != "[":
                if lines:
                    yield "\n".join(lines).encode("utf-8"), _NDJSON
                    lines = []
                yield frame.encode("utf-8"), _JSON
                continue
            lines.append(frame)
        else:
            lines.append(base64.b64encode(frame).decode("ascii"))
        if len(lines) == MAX_BATCH:
            yield "\n".join(lines).encode("utf-8"), _NDJSON
            lines = []
    if lines:
        yield "\n".join(lines).encode("utf-8"), _NDJSON


# -- HTTP plumbing ---------------------------------------------------------------------------------


class _Tracker:
    """The HTTP connections of one transport, so that abort can shut their sockets down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: set[HTTPConnection] = set()
        self.aborted = False

    def add(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self.aborted:
                raise ConnectionAbortedError("the long-poll transport was aborted")
            self._connections.add(connection)

    def connected(self, connection: HTTPConnection) -> None:
        if self.aborted:  # abort() ran while this connection was being made
            _shutdown(connection.sock)

    def discard(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection.sock)


class _TrackedHTTPConnection(HTTPConnection):
    """An ``http://`` connection registered with its transport's tracker."""

    tracker: ClassVar[_Tracker]

    def connect(self) -> None:
        """Connect, unless the transport was aborted."""
        self.tracker.add(self)
        super().connect()
        self.tracker.connected(self)

    def close(self) -> None:
        """Close and forget the connection."""
        self.tracker.discard(self)
        super().close()


class _TrackedHTTPSConnection(PinnedHTTPSConnection):
    """An ``https://`` connection registered with its transport's tracker (and pinned, if asked)."""

    tracker: ClassVar[_Tracker]

    def connect(self) -> None:
        """Connect (TLS included, pins checked), unless the transport was aborted."""
        self.tracker.add(self)
        super().connect()
        self.tracker.connected(self)

    def close(self) -> None:
        """Close and forget the connection."""
        self.tracker.discard(self)
        super().close()


def _pool_classes(
    tracker: _Tracker, *, socks: bool = False, pins: frozenset[bytes] = frozenset(), redacted: str = ""
) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pool classes whose connections report to ``tracker`` (through a SOCKS proxy if ``socks``)."""
    http_bases: tuple[type, ...] = (_TrackedHTTPConnection,)
    https_bases: tuple[type, ...] = (_TrackedHTTPSConnection,)
    pools: tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]] = (HTTPConnectionPool, HTTPSConnectionPool)
    if socks:
        from urllib3.contrib import socks as urllib3_socks  # needs PySocks (the socks extra)

        http_bases += (urllib3_socks.SOCKSConnection,)
        https_bases += (urllib3_socks.SOCKSHTTPSConnection,)
        pools = (urllib3_socks.SOCKSHTTPConnectionPool, urllib3_socks.SOCKSHTTPSConnectionPool)
    http = type("LongPollHTTPConnection", http_bases, {"tracker": tracker})
    https = type("LongPollHTTPSConnection", https_bases, {"tracker": tracker, "pins": pins, "redacted": redacted})
    return {
        "http": type("LongPollHTTPPool", (pools[0],), {"ConnectionCls": http}),
        "https": type("LongPollHTTPSPool", (pools[1],), {"ConnectionCls": https}),
    }


class _Adapter(ContextAdapter):
    """Tracked connections, and TLS from the client's ``ssl.SSLContext`` and pins (the WebSocket path's)."""

    def __init__(
        self,
        tracker: _Tracker,
        ssl_context: ssl.SSLContext | None,
        pins: frozenset[bytes] = frozenset(),
        redacted: str = "",
    ) -> None:
        self._tracker = tracker
        self._plain_classes = _pool_classes(tracker, pins=pins, redacted=redacted)
        super().__init__(ssl_context, pins, redacted)

    def pool_classes(self, *, socks: bool = False) -> dict[str, type[HTTPConnectionPool]]:
        """Pools whose connections report to the tracker (through SOCKS if ``socks``)."""
        if socks:
            return _pool_classes(self._tracker, socks=True, pins=self._pins, redacted=self._redacted)
        return self._plain_classes


def _proxies(proxy: tuple[str, int, tuple[str, str] | None] | None, kind: str = "http") -> dict[str, str] | None:
    """The client's ``proxy`` option for requests (``None``: use the environment's, as requests does).

    ``kind`` is the URL scheme: ``http``, or a SOCKS flavour (requests speaks those through PySocks).
    """
    if proxy is None:
        return None
    host, port, auth = proxy
    userinfo = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}@" if auth is not None else ""
    url = f"{kind}://{userinfo}{host}:{port}"
    return {"http": url, "https": url}


def _auth_token(subprotocols: Sequence[str]) -> str | None:
    """The ``authToken`` the WebSocket path would send as a subprotocol (phoenix.js decodes it the same way)."""
    for protocol in subprotocols:
        if protocol.startswith(_BEARER):
            encoded = protocol[len(_BEARER) :]
            try:
                return base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


class _Answer(NamedTuple):
    """A response read whole (and bounded)."""

    status_code: int
    content: bytes
    location: str | None = None


class _BodyTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _read_bounded(response: requests.Response, limit: int | None) -> bytes:
    """The (decoded) body, or :class:`_BodyTooLargeError` as soon as it passes ``limit`` bytes."""
    if limit is None:
        return response.content
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise _BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_body(response: _Answer) -> dict[str, Any] | None:
    try:
        value = json.loads(response.content)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        return None
    return value if isinstance(value, dict) else None


def _too_deep(response: _Answer) -> bool:
    try:
        json.loads(response.content)
    except RecursionError:
        return True
    except ValueError:
        return False
    return False


def _excerpt(response: _Answer) -> str:
    return response.content[:200].decode("utf-8", "replace")


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _describe(exc: BaseException) -> str:
    """A short description of a requests failure, without URLs (they may hold secrets)."""
    verify = _find(exc, ssl.SSLCertVerificationError)
    if isinstance(verify, ssl.SSLCertVerificationError):
        return f"certificate verify failed ({verify.verify_message})"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy error"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if _find(exc, ConnectionRefusedError) is not None:
        return "connection refused"
    if _find(exc, socket.gaierror) is not None:
        return "name resolution failed"
    if _find(exc, ConnectionResetError) is not None:
        return "connection reset"
    if _find(exc, ConnectionAbortedError) is not None:
        return "connection aborted"
    return "connection closed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__
