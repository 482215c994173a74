"""The LongPoll transport of the embedded server (reference §1.8), without the HTTP parsing.

A long-poll "connection" is a server-side session identified by a signed
token. The :class:`LongPollHub` answers the three requests of the protocol,
always with HTTP 200 and the logical status in the JSON body:

* ``GET`` without a valid token opens a session: ``{"status": 410, "token": T}``
  (``403`` when the connect handler or the origin check refuses);
* ``GET`` with a token waits up to ``longpoll_window`` for buffered frames:
  ``200`` with ``"messages"`` (each the serialized frame, a string) or ``204``;
* ``POST`` with a token carries client frames (NDJSON batch of at most 100
  lines: ``[``-lines are V2 text, other lines base64 binary; any other
  content type is one message): ``200``, ``410`` (no session) or ``408``
  (a line was not acknowledged: the session crashed on it).

Sessions are ordinary :class:`~.session.Session` objects writing through a
:class:`LongPollTransport`, so channels, presence, faults and the recorder
behave exactly as over WebSocket. A session nobody polled for
1.5 x ``longpoll_window`` expires (Phoenix: ``:shutdown_if_inactive``).

Deviations from Phoenix, all on error paths: a line the session cannot
decode ends the session and answers ``408`` at once (Phoenix crashes the
session process and the POST times out after the window); empty NDJSON lines
are skipped (a trailing newline is harmless); a dead session's held poll is
answered ``204`` at once instead of at the end of the window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .connect import ConnectRequest, Refuse
from .message import Frame
from .query import decode_query
from .serializer import encode_json

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .session import Session

logger = logging.getLogger(__name__)

MAX_BATCH = 100
"""Lines of one NDJSON POST that are processed (Phoenix ignores the rest)."""

TOKEN_MAX_AGE = 1_209_600.0
"""Seconds a session token stays valid (``Phoenix.Token`` default: 14 days)."""

MAX_BODY = 8_000_000
"""Largest POST body read (Plug's ``read_body`` default); larger ones get HTTP 400."""

NDJSON = "application/x-ndjson"

_EXPIRY_FACTOR = 1.5
_TOKEN_HEADER = "x-phoenix-longpoll-token"
_AUTH_HEADER = "x-phoenix-authtoken"
_SERVER_ERROR: Mapping[str, Any] = {"errors": {"detail": "Internal Server Error"}}
_EXPIRED_CODE = 1001
_DROPPED_CODE = 1006
_CRASHED_CODE = 1011


@dataclass(frozen=True)
class HttpResponse:
    """What to write back: an HTTP status, extra headers and a body.

    ``body`` is JSON text unless ``json`` is false (then it is sent as is,
    usually empty).
    """

    status: int
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    json: bool = True


def _json(payload: Mapping[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(status, encode_json(payload))


def _empty(status: int, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status, "", headers, json=False)


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request to the long-poll path, as the HTTP front parsed it.

    Attributes:
        method: ``"GET"``, ``"POST"``, ``"OPTIONS"``...
        query: The raw query string.
        headers: Header names lower-cased; repeated headers joined by ``", "``.
        body: The request body (empty for GET).
        path: The request path.
        remote_address: The peer's ``(host, port)``.

    """

    method: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""
    path: str = ""
    remote_address: Any = None


class LongPollTransport:
    """The :class:`~.transport.Transport` of one long-poll session: frames wait for the next poll."""

    name = "longpoll"

    def __init__(self, hub: LongPollHub, key: str) -> None:
        """Create the buffer of the session ``key`` (not registered yet)."""
        self.key = key
        self.session: Session | None = None
        self.dispatch_lock = threading.Lock()
        """Held while client frames are handled: one POST line at a time, never during teardown."""
        self._hub = hub
        self._cond = threading.Condition(threading.Lock())
        self._buffer: list[Frame] = []
        self._ended = False
        self._polls = 0
        self.last_poll = time.monotonic()

    @property
    def ended(self) -> bool:
        """Whether the session is over (writes are refused, polls answer at once)."""
        return self._ended

    def write(self, frames: Sequence[Frame]) -> bool:
        """Buffer ``frames`` for the next poll (and wake a waiting one)."""
        with self._cond:
            if self._ended:
                return False
            self._buffer.extend(frames)
            self._cond.notify_all()
        return True

    def close(self, code: int, reason: str = "") -> None:
        """End the session (there is no close frame in long-poll); the next poll gets 410."""
        self._hub.end(self, code)

    def abort(self) -> None:
        """End the session at once, as if its process was killed."""
        self._hub.end(self, _DROPPED_CODE)

    def take(self, window: float) -> list[Frame] | None:
        """Wait up to ``window`` seconds for frames; return them all, or ``None`` (nothing/ended)."""
        with self._cond:
            self._polls += 1
            self.last_poll = time.monotonic()
            try:
                self._cond.wait_for(lambda: bool(self._buffer) or self._ended, window)
                if self._ended or not self._buffer:
                    return None
                frames, self._buffer = self._buffer, []
                return frames
            finally:
                self._polls -= 1
                self.last_poll = time.monotonic()

    def wait_buffered(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` frames wait for the next poll; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._buffer) >= count, timeout)

    def idle_for(self, now: float) -> float:
        """Seconds since the last poll ended, or 0 while one is waiting."""
        with self._cond:
            return 0.0 if self._polls else now - self.last_poll

    def mark_ended(self) -> bool:
        """Refuse further writes, drop the buffer, wake polls; ``False`` if already ended."""
        with self._cond:
            if self._ended:
                return False
            self._ended = True
            self._buffer.clear()
            self._cond.notify_all()
        return True


class LongPollHub:
    """Every long-poll session of one endpoint, and the answers to long-poll requests."""

    def __init__(self, endpoint: Endpoint, *, secret: bytes | None = None) -> None:
        """Serve long-poll for ``endpoint``; tokens are signed with ``secret`` (random by default)."""
        self._endpoint = endpoint
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._sessions: dict[str, LongPollTransport] = {}
        self._lock = threading.Lock()
        self._stopping = False

    @property
    def window(self) -> float:
        """Seconds a poll is held (``ServerSettings.longpoll_window``)."""
        return self._endpoint.settings.longpoll_window

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Accept requests (again, after :meth:`stop`)."""
        with self._lock:
            self._stopping = False

    def stop(self, code: int = _DROPPED_CODE) -> None:
        """End every session now (their channels shut down; recorded with ``code``) and refuse new ones."""
        with self._lock:
            self._stopping = True
            transports = list(self._sessions.values())
        for transport in transports:
            if transport.mark_ended():
                self._teardown(transport, code)

    def transports(self) -> list[LongPollTransport]:
        """The sessions alive right now."""
        with self._lock:
            return list(self._sessions.values())

    def expire(self, connection_id: int | None = None) -> int:
        """End sessions as if their client had stopped polling; returns how many."""
        count = 0
        for transport in self.transports():
            session = transport.session
            if connection_id is None or (session is not None and session.id == connection_id):
                count += self.end(transport, _EXPIRED_CODE)
        return count

    def end(self, transport: LongPollTransport, code: int) -> int:
        """End a session; its channels shut down on a worker. Returns 1 if it was alive."""
        if not transport.mark_ended():
            return 0
        self._endpoint.scheduler.submit(lambda: self._teardown(transport, code))
        return 1

    def _teardown(self, transport: LongPollTransport, code: int) -> None:
        with self._lock:
            self._sessions.pop(transport.key, None)
        session = transport.session
        if session is None:
            return
        # Wait for a POST line being handled: no client frame reaches a terminated session.
        with transport.dispatch_lock:
            self._endpoint.close_session(session, code)

    # -- requests ----------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse | None:
        """Answer one request to the long-poll path; ``None`` means: drop the connection (stopping)."""
        if self._stopping:
            return None
        origin = request.headers.get("origin")
        allowed = self._endpoint.settings.allowed_origins
        if origin is not None and allowed is not None and origin not in allowed:
            self._endpoint.refused(self._connect_request(request), 403, f"origin {origin!r} not allowed")
            return _json({"status": 403})
        if request.method == "OPTIONS":
            return self._preflight(request)
        if request.method == "GET":
            return self._get(request)
        if request.method == "POST":
            return self._post(request)
        return _empty(400)

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        headers = (
            ("access-control-allow-headers", request.headers.get("access-control-request-headers", "")),
            ("access-control-allow-methods", "get, post, options"),
            ("access-control-max-age", "3600"),
        )
        return _empty(200, headers)

    def _get(self, request: HttpRequest) -> HttpResponse | None:
        token, transport = self._resume(request)
        if transport is None:
            return self._open(request)
        frames = transport.take(self.window)
        if frames is None:
            return _json({"messages": [], "status": 204, "token": token})
        try:
            messages = [frame if isinstance(frame, str) else frame.decode("utf-8") for frame in frames]
        except UnicodeDecodeError:
            # Phoenix (Jason) cannot put non-UTF-8 bytes in JSON: the poll fails with
            # HTTP 500 and the frames it took are lost (tests/golden/transcript_longpoll_v2.txt).
            logger.warning("long-poll conn %s: a binary frame is not valid UTF-8; answering 500", _id(transport))
            return _json(_SERVER_ERROR, 500)
        return _json({"messages": messages, "status": 200, "token": token})

    def _open(self, request: HttpRequest) -> HttpResponse | None:
        endpoint = self._endpoint
        connect_request = self._connect_request(request)
        fault = endpoint.faults.refusal_for("longpoll")
        if fault is not None:
            endpoint.refused(connect_request, fault, "refusing connections (fault)")
            # A fault stands for the infrastructure refusing: the HTTP status itself.
            return _json({"status": 403}) if fault == 403 else _empty(fault)
        decision = endpoint.authorize(connect_request)
        if isinstance(decision, Refuse):
            # Phoenix answers any connect refusal with a logical 403; a raising handler with 500.
            return _json(_SERVER_ERROR, 500) if decision.status == 500 else _json({"status": 403})
        key = secrets.token_urlsafe(16)
        transport = LongPollTransport(self, key)
        with self._lock:
            if self._stopping:
                return None
            self._sessions[key] = transport
        session = endpoint.open_session(decision, transport)
        transport.session = session
        self._schedule_expiry(transport, self.window * _EXPIRY_FACTOR)
        logger.debug("long-poll conn %d opened", session.id)
        return _json({"messages": [], "status": 410, "token": self._sign(key)})

    def _post(self, request: HttpRequest) -> HttpResponse:
        _, transport = self._resume(request)
        if transport is None:
            return _json({"status": 410})
        try:
            frames = _batch(request)
        except ValueError as exc:
            logger.info("long-poll conn %s: unreadable POST body (%s)", _id(transport), exc)
            return _empty(400)
        logger.debug("long-poll conn %s: POST of %d message(s)", _id(transport), len(frames))
        for text, data in frames:
            if not self._dispatch(transport, text, data):
                return _json({"status": 408})
        return _json({"status": 200})

    def _dispatch(self, transport: LongPollTransport, text: bool, data: bytes) -> bool:
        """Hand one frame to the session; ``False`` if it was not acknowledged."""
        with transport.dispatch_lock:
            session = transport.session
            if transport.ended or session is None:
                return False
            try:
                session.handle_frame(data.decode("utf-8") if text else data)
            except Exception as exc:  # noqa: BLE001 - any failure crashes the session
                # A frame that crashes a Phoenix socket process ends the session (§1.7).
                logger.warning("long-poll conn %d: frame crashed the session (%s); ending it", session.id, exc)
                self.end(transport, _CRASHED_CODE)
                return False
        return True

    # -- sessions and tokens ------------------------------------------------------------

    def _resume(self, request: HttpRequest) -> tuple[str | None, LongPollTransport | None]:
        """The presented token and its live session (header first, then ``token=``; §1.8)."""
        token = request.headers.get(_TOKEN_HEADER)
        if token is None:
            value = decode_query(request.query).get("token")
            token = value if isinstance(value, str) else None
        if not token:
            return token, None
        key = self._verify(token)
        if key is None:
            return token, None
        with self._lock:
            transport = self._sessions.get(key)
        if transport is None or transport.ended:
            return token, None
        return token, transport

    def _connect_request(self, request: HttpRequest) -> ConnectRequest:
        auth_token = request.headers.get(_AUTH_HEADER) if self._endpoint.settings.auth_token else None
        return ConnectRequest(
            params=decode_query(request.query),
            vsn="",
            auth_token=auth_token,
            headers=request.headers,
            path=request.path,
            remote_address=request.remote_address,
            transport="longpoll",
        )

    def _sign(self, key: str) -> str:
        payload = _b64(json.dumps({"k": key, "t": int(time.time())}, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def _verify(self, token: str) -> str | None:
        payload, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            key, issued = data["k"], data["t"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not isinstance(key, str) or not isinstance(issued, int) or time.time() - issued > TOKEN_MAX_AGE:
            return None
        return key

    def _schedule_expiry(self, transport: LongPollTransport, delay: float) -> None:
        self._endpoint.timer.call_later(delay, lambda: self._check_expiry(transport))

    def _check_expiry(self, transport: LongPollTransport) -> None:
        if transport.ended:
            return
        limit = self.window * _EXPIRY_FACTOR
        idle = transport.idle_for(time.monotonic())
        if idle >= limit:
            logger.info("long-poll conn %s: no poll for %.3g s; expiring the session", _id(transport), idle)
            self.end(transport, _EXPIRED_CODE)
        else:
            self._schedule_expiry(transport, limit - idle)


def _batch(request: HttpRequest) -> list[tuple[bool, bytes]]:
    """The frames of a POST body in order, at most :data:`MAX_BATCH`: ``(is_text, data)``.

    Text stays bytes here: invalid UTF-8 crashes the session when it is
    handled, as it crashes a Phoenix socket.

    Raises:
        ValueError: a line is neither JSON text nor base64.

    """
    body = request.body
    if request.headers.get("content-type") != NDJSON:
        # Older clients POST one message with any other content type.
        return [(True, body)]
    frames: list[tuple[bool, bytes]] = []
    for line in body.split(b"\n")[:MAX_BATCH]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line.startswith(b"["):
            frames.append((True, line))
        else:
            try:
                frames.append((False, base64.b64decode(line, validate=True)))
            except binascii.Error as exc:
                raise ValueError(f"line is not base64: {exc}") from None
    return frames


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _id(transport: LongPollTransport) -> str:
    return str(transport.session.id) if transport.session is not None else "?"
