"""Token provider: fetch a token over HTTP, cache it, refresh it ahead of its expiry.

Phoenix reads credentials from the connect params, the ``authToken`` or the
upgrade headers (reference §1.3-§1.4), and a token captured once is replayed
after it expired on every reconnect (reference §7, "token captured once").
The client evaluates its ``params``, ``auth_token`` and ``headers`` callables
on every connection attempt, so a provider plugs in directly::

    provider = TokenProvider("https://auth.example.com/token", data={"grant_type": "client_credentials"},
                             basic_auth=("client-id", secret))
    client = maxsdk.Client(url, params=provider.params("token"))   # or auth_token=provider,
                                                                    # or headers=provider.header()

Behaviour:

* the token is cached and fetched again when less than the refresh margin of
  its lifetime is left (``max(refresh_margin, refresh_fraction * lifetime)``,
  never more than half the lifetime); while such an early refresh runs, other
  callers keep using the still-valid token, and if it fails they keep it until
  it really expires;
* one fetch at a time: callers that need a token while none is valid wait for
  the fetch in progress and share its outcome;
* connection errors, timeouts and 5xx statuses are retried on a
  :class:`~maxsdk.protocol.backoff.Backoff` schedule; 4xx statuses, TLS
  failures, redirects and unusable bodies are not;
* every failure raises :class:`~maxsdk.errors.TokenFetchError` (a 4xx raises
  its subclass :class:`~maxsdk.errors.TokenRejectedError`, also an
  :class:`~maxsdk.errors.AuthenticationError`, so the client gives up on a
  401/403 instead of retrying forever);
* :meth:`TokenProvider.invalidate` drops the cached token after the server
  refused it (HTTP 401/403 on the upgrade);
* the token, the request body, the basic-auth secret and the response body
  never reach a log line, a repr or an exception message; URLs are redacted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Callable, Union

import requests

from maxsdk._runtime.threads import wait_slice
from maxsdk.endpoint import redact_url
from maxsdk.errors import CertificatePinError, ConfigurationError, TokenFetchError, TokenRejectedError
from maxsdk.protocol.backoff import Backoff, BackoffLike
from maxsdk.tls import TLSConfig

__all__ = ["BodyLike", "TokenProvider"]

log = logging.getLogger("maxsdk.auth")

#: A request body or header set: a mapping, or a zero-argument callable returning one (called per fetch).
BodyLike = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]], None]

#: Retries of one fetch: 0.2, 0.4, 0.8 s... (full jitter), at most 3 retries.
DEFAULT_RETRY = Backoff.exponential(0.2, cap=5.0, jitter="full", max_attempts=3)
#: An OAuth-style ``error`` code is shown in messages only when it looks like one.
_OAUTH_ERRORS = frozenset(
    {  # RFC 6749 §5.2 and §4.1.2.1, RFC 6750 §3.1, RFC 8628 §3.5, RFC 8707, RFC 9449, OpenID Connect
        "access_denied",
        "authorization_pending",
        "consent_required",
        "expired_token",
        "insufficient_scope",
        "interaction_required",
        "invalid_client",
        "invalid_dpop_proof",
        "invalid_grant",
        "invalid_request",
        "invalid_scope",
        "invalid_target",
        "invalid_token",
        "login_required",
        "server_error",
        "slow_down",
        "temporarily_unavailable",
        "unauthorized_client",
        "unsupported_grant_type",
        "unsupported_response_type",
        "use_dpop_nonce",
    }
)
"""OAuth ``error`` codes copied into a :class:`TokenFetchError`: a provider may reflect anything
(even the client secret) in ``error``, so only registered codes are shown; never ``error_description``."""
#: Epoch values above this are milliseconds (year 5138 in seconds).
_EPOCH_MS_THRESHOLD = 1e11


class _RetryableError(Exception):
    """One failed request that the retry schedule may try again."""

    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class TokenProvider:
    """Fetches a token from an HTTP endpoint, caches it and refreshes it before it expires.

    Calling the provider returns the current token string, fetching one first
    if needed; it is safe to call from any number of threads.

    Args:
        url: the token endpoint (``https://...``).
        method: the HTTP method (default ``POST``).
        json: a JSON body (mapping or callable returning one, called per fetch).
        data: a form body (mapping or callable), e.g. an OAuth client-credentials grant.
        headers: extra request headers (mapping or callable).
        basic_auth: ``(user, password)`` for HTTP basic authentication.
        token_field: dotted path of the token in the JSON response
            (``"access_token"``, ``"data.token"``; list indexes are numbers).
        expires_in_field: dotted path of a lifetime in seconds (``None`` = not used).
        expires_at_field: dotted path of an absolute expiry: epoch seconds (or
            milliseconds) or an ISO 8601 time (``None`` = not used). Tried
            after ``expires_in_field``.
        default_ttl: lifetime in seconds when the response carries no expiry;
            ``None`` = the token never expires (refreshed only after :meth:`invalidate`).
        refresh_margin: refresh when fewer than this many seconds are left...
        refresh_fraction: ... or less than this fraction of the lifetime,
            whichever is larger (never more than half the lifetime).
        refresh_retry_interval: after an early refresh failed, seconds before
            the next try while the current token is still valid.
        timeout: seconds, or ``(connect, read)`` seconds, for one request.
        retry: retry schedule for connection errors, timeouts and 5xx (a
            :class:`~maxsdk.Backoff`, ``False`` for none, or an int of retries).
        verify: verify TLS certificates (default ``True``), or a CA bundle path.
        tls: a :class:`~maxsdk.TLSConfig` instead of ``verify``: CA, verification,
            client certificate and pins, the same value a client is given, so
            the token endpoint is reached exactly as the WebSocket is. Pins are
            checked before any byte of the request (the credentials) is sent.
        session: a ``requests.Session`` to use (default: one of its own, closed by :meth:`close`).
        clock: monotonic clock (injectable for tests).
        wall_clock: epoch clock used to read ``expires_at`` values.
        rng: random source for the retry jitter.

    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        json: BodyLike = None,
        data: BodyLike = None,
        headers: BodyLike = None,
        basic_auth: tuple[str, str] | None = None,
        token_field: str = "access_token",
        expires_in_field: str | None = "expires_in",
        expires_at_field: str | None = None,
        default_ttl: float | None = None,
        refresh_margin: float = 30.0,
        refresh_fraction: float = 0.1,
        refresh_retry_interval: float = 5.0,
        timeout: float | tuple[float, float] = (5.0, 10.0),
        retry: BackoffLike = None,
        verify: bool | str = True,
        tls: TLSConfig | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        _check_config(url, json, data, token_field, refresh_fraction, (refresh_margin, refresh_retry_interval))
        if default_ttl is not None and default_ttl <= 0:
            raise ConfigurationError("default_ttl must be a positive number of seconds or None")
        self.url = url
        self.method = method.upper()
        self._json = json
        self._data = data
        self._headers = headers
        self._basic_auth = basic_auth
        self.token_field = token_field
        self.expires_in_field = expires_in_field
        self.expires_at_field = expires_at_field
        self.default_ttl = default_ttl
        self.refresh_margin = refresh_margin
        self.refresh_fraction = refresh_fraction
        self.refresh_retry_interval = refresh_retry_interval
        self.timeout = timeout
        self.retry = Backoff.coerce(retry, default=DEFAULT_RETRY)
        if tls is not None:
            if not isinstance(tls, TLSConfig):
                raise ConfigurationError(f"tls must be a maxsdk.TLSConfig, got {type(tls).__name__}")
            if verify is not True:
                raise ConfigurationError("tls= replaces verify: give the CA and verification inside the TLSConfig")
            verify = tls.verify
        self.verify = verify
        self.tls = tls
        if verify is False:
            log.warning("TLS verification is off for the token endpoint %s", redact_url(url))
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        if tls is not None:
            from maxsdk._runtime.tls_http import ContextAdapter

            self._session.mount("https://", ContextAdapter(tls.context(), tls.pin_digests, redact_url(url)))
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._redacted = redact_url(url)
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._token: str | None = None
        self._expires_at: float | None = None  # monotonic; None = never
        self._refresh_at: float | None = None  # monotonic; None = never
        self._retry_not_before = float("-inf")
        self._fetching = False
        self._waiting = 0
        self._generation = 0
        self._last_error: TokenFetchError | None = None
        self.requests_sent = 0

    # -- the token ------------------------------------------------------------------

    def __call__(self) -> str:
        """Return a valid token, fetching one first if none is cached or it is due for refresh.

        Raises:
            TokenFetchError: no valid token is cached and the fetch failed
                (:class:`~maxsdk.errors.TokenRejectedError` for a 4xx).

        """
        with self._cond:
            while True:
                if self._closed.is_set():
                    raise TokenFetchError(
                        "the token provider is closed", url=self._redacted, reason="closed", attempts=0
                    )
                now = self._clock()
                current = self._valid_token(now)
                if current is not None and (self._refresh_at is None or now < self._refresh_at):
                    return current
                if current is not None and (self._fetching or now < self._retry_not_before):
                    return current  # an early refresh is running or failed recently: keep the valid token
                if not self._fetching:
                    self._fetching = True
                    break
                self._wait_for_fetch()
        return self._fetch_and_store(current)

    def refresh(self) -> str:
        """Drop the cached token and fetch a new one now (see :meth:`invalidate`)."""
        self.invalidate()
        return self()

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token so that the next call fetches a new one.

        Call it when the server refused the token (HTTP 401/403 on the upgrade).

        Args:
            token: only forget the cached token if it is this one. Many
                connections sharing a provider may all report the same refused
                token; only the first report forces a fetch.

        """
        with self._cond:
            if self._token is None or (token is not None and token != self._token):
                return
            self._token = None
            self._expires_at = self._refresh_at = None
            self._retry_not_before = float("-inf")
        log.info("token from %s invalidated; the next use fetches a new one", self._redacted)

    @property
    def expires_in(self) -> float | None:
        """Seconds until the cached token expires; ``None`` if none is cached or it never expires."""
        with self._cond:
            if self._token is None or self._expires_at is None:
                return None
            return max(0.0, self._expires_at - self._clock())

    @property
    def has_token(self) -> bool:
        """Whether a token that has not expired is cached."""
        with self._cond:
            return self._valid_token(self._clock()) is not None

    # -- adapters for Client(params=..., headers=...) -------------------------------------

    def params(self, name: str = "token", extra: Mapping[str, Any] | None = None) -> Callable[[], dict[str, Any]]:
        """A callable for ``Client(params=...)``: ``{name: token, **extra}`` on every call."""
        fixed = dict(extra or {})

        def connect_params() -> dict[str, Any]:
            return {**fixed, name: self()}

        # The client calls this after a 401/403 to force a fresh token before its retry.
        connect_params.invalidate = self.invalidate  # type: ignore[attr-defined]
        return connect_params

    def header(self, name: str = "Authorization", scheme: str | None = "Bearer") -> Callable[[], dict[str, str]]:
        """A callable for ``Client(headers=...)``: ``{name: "<scheme> <token>"}`` on every call."""

        def connect_headers() -> dict[str, str]:
            token = self()
            return {name: f"{scheme} {token}" if scheme else token}

        connect_headers.invalidate = self.invalidate  # type: ignore[attr-defined]
        return connect_headers

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop: a retry wait in progress ends, later calls raise, and an owned session is closed."""
        self._closed.set()
        with self._cond:
            self._token = None
            self._cond.notify_all()
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> TokenProvider:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._cond:
            if self._token is None:
                state = "no token"
            elif self._expires_at is None:
                state = "token cached, no expiry"
            else:
                state = f"token cached, expires in {self._expires_at - self._clock():.0f} s"
        return f"<TokenProvider {self.method} {self._redacted} ({state})>"

    # -- internals ----------------------------------------------------------------------------

    def _valid_token(self, now: float) -> str | None:
        if self._token is None or (self._expires_at is not None and now >= self._expires_at):
            return None
        return self._token

    def _wait_for_fetch(self) -> None:
        """Wait (holding the condition) for the running fetch; raise its error if it failed."""
        generation = self._generation
        self._waiting += 1
        self._cond.notify_all()  # lets an observer (a test) see the waiter count; waiters re-check and wait on
        try:
            while self._generation == generation and not self._closed.is_set():
                self._cond.wait(wait_slice(None))
        finally:
            self._waiting -= 1
        error = self._last_error
        if error is not None and self._generation == generation + 1 and self._valid_token(self._clock()) is None:
            raise _copy_error(error) from error

    def _fetch_and_store(self, previous: str | None) -> str:
        """Fetch (the lock released), then publish the outcome to every waiter."""
        started = self._clock()
        try:
            token, lifetime = self._fetch()
        except BaseException as exc:
            error = exc if isinstance(exc, TokenFetchError) else None
            with self._cond:
                self._fetching = False
                self._generation += 1
                self._last_error = error or self._error(f"internal error ({type(exc).__name__})", None, 1)
                self._cond.notify_all()
                still_valid = self._valid_token(self._clock())
                if still_valid is not None:
                    self._retry_not_before = self._clock() + self.refresh_retry_interval
            if error is None or still_valid is None or still_valid != previous:
                raise
            log.warning("early token refresh failed (%s); using the current token until it expires", error)
            return still_valid
        with self._cond:
            self._store(token, lifetime, started)
            self._fetching = False
            self._generation += 1
            self._last_error = None
            self._cond.notify_all()
        return token

    def _store(self, token: str, lifetime: float | None, started: float) -> None:
        self._token = token
        self._retry_not_before = float("-inf")
        if lifetime is None:
            self._expires_at = self._refresh_at = None
            log.info("token fetched from %s (no expiry)", self._redacted)
            return
        if lifetime <= 0:
            log.warning("the token from %s is already expired on arrival (clock skew?)", self._redacted)
        margin = min(max(self.refresh_margin, self.refresh_fraction * lifetime), lifetime / 2)
        # Deadlines count from the request's start: the token may have been issued any time after it.
        self._expires_at = started + lifetime
        self._refresh_at = started + lifetime - max(margin, 0.0)
        log.info(
            "token fetched from %s; expires in %.0f s, refreshed after %.0f s",
            self._redacted,
            lifetime,
            lifetime - margin,
        )

    def _fetch(self) -> tuple[str, float | None]:
        """Request a token, retrying on the schedule; return ``(token, lifetime)``."""
        attempt = 0
        while True:
            attempt += 1
            self.requests_sent += 1
            try:
                response = self._request(attempt)
                return self._parse(response, attempt)
            except _RetryableError as failure:
                delay = self.retry.delay(attempt, self._rng)
                if delay is None or self._closed.is_set():
                    raise self._error(failure.reason, failure.status, attempt) from None
                log.warning("token endpoint %s: %s; retry %d in %.2f s", self._redacted, failure.reason, attempt, delay)
                if self._closed.wait(delay):
                    raise self._error(f"{failure.reason}; the provider was closed", failure.status, attempt) from None

    def _request(self, attempt: int) -> requests.Response:
        log.debug("fetching a token: %s %s (attempt %d)", self.method, self._redacted, attempt)
        try:
            json, data, headers = _evaluate(self._json), _evaluate(self._data), _evaluate(self._headers)
        except Exception as exc:  # noqa: BLE001 - a user callable; its text may quote a secret: only its type is shown
            raise self._error(f"building the request failed ({type(exc).__name__})", None, attempt) from None
        try:
            return self._session.request(
                self.method,
                self.url,
                json=json,
                data=data,
                headers=headers,
                auth=self._basic_auth,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,  # a redirect must not carry the credentials elsewhere
            )
        except requests.exceptions.RequestException as exc:
            from maxsdk._runtime.tls_http import find_cause

            pin = find_cause(exc, CertificatePinError)
            if pin is not None:  # fatal like any failed verification: never retried
                raise self._error(f"TLS: {pin}", None, attempt) from None
            if isinstance(exc, requests.exceptions.SSLError):
                raise self._error("TLS verification of the token endpoint failed", None, attempt) from None
            if isinstance(exc, requests.exceptions.Timeout):
                raise _RetryableError(f"timed out ({type(exc).__name__})", None) from None
            if isinstance(exc, requests.exceptions.ConnectionError):
                raise _RetryableError(f"connection failed ({type(exc).__name__})", None) from None
            raise self._error(f"request failed ({type(exc).__name__})", None, attempt) from None

    def _parse(self, response: requests.Response, attempt: int) -> tuple[str, float | None]:
        status = response.status_code
        if status >= 500:
            raise _RetryableError(f"HTTP {status}", status)
        if 400 <= status < 500:
            code = _error_code(response)
            raise self._error(f"refused with HTTP {status}{code}", status, attempt, rejected=True)
        if not 200 <= status < 300:
            raise self._error(f"unexpected HTTP {status}", status, attempt)
        try:
            body = response.json()
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise self._error("the response is not JSON", status, attempt) from None
        token = _lookup(body, self.token_field)
        if not isinstance(token, str) or not token:
            what = "has no" if token is None else "has a non-string or empty"
            raise self._error(f"the response {what} {self.token_field!r} field", status, attempt)
        try:
            lifetime = self._lifetime(body)
        except (TypeError, ValueError, OverflowError):
            raise self._error("the response's expiry field is not a number or a time", status, attempt) from None
        return token, lifetime

    def _lifetime(self, body: Any) -> float | None:
        """Seconds the token lives from now: ``expires_in``, else ``expires_at``, else ``default_ttl``."""
        if self.expires_in_field is not None:
            value = _lookup(body, self.expires_in_field)
            if value is not None:
                return _number(value)
        if self.expires_at_field is not None:
            value = _lookup(body, self.expires_at_field)
            if value is not None:
                return _epoch(value) - self._wall_clock()
        return self.default_ttl

    def _error(self, reason: str, status: int | None, attempts: int, *, rejected: bool = False) -> TokenFetchError:
        message = f"cannot fetch a token from {self.method} {self._redacted}: {reason}"
        if attempts > 1:
            message += f" (after {attempts} attempts)"
        cls = TokenRejectedError if rejected else TokenFetchError
        return cls(message, status=status, url=self._redacted, reason=reason, attempts=attempts)


def _check_config(
    url: str, json: BodyLike, data: BodyLike, token_field: str, fraction: float, durations: tuple[float, ...]
) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError("the token URL must be an http:// or https:// URL")
    if json is not None and data is not None:
        raise ConfigurationError("pass a JSON body or a form body, not both")
    if not token_field:
        raise ConfigurationError("token_field must name a field")
    if not 0 <= fraction < 1:
        raise ConfigurationError("refresh_fraction must be between 0 and 1")
    if any(value < 0 for value in durations):
        raise ConfigurationError("refresh_margin and refresh_retry_interval must be >= 0")


def _evaluate(value: BodyLike) -> dict[str, Any] | None:
    if value is None:
        return None
    mapping = value() if callable(value) else value
    return dict(mapping)


def _lookup(body: Any, path: str) -> Any:
    """``body["data"]["token"]`` for ``"data.token"``; numbers index lists; ``None`` when absent."""
    value = body
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a duration")
    result = float(value)
    if result != result:  # NaN
        raise ValueError("NaN")
    return result


def _epoch(value: Any) -> float:
    """Epoch seconds from a number (seconds or milliseconds) or an ISO 8601 string."""
    if isinstance(value, str) and not value.strip().replace(".", "", 1).isdigit():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    seconds = _number(value)
    return seconds / 1000.0 if seconds > _EPOCH_MS_THRESHOLD else seconds


def _error_code(response: requests.Response) -> str:
    """`` (invalid_client)`` when the body carries a registered OAuth error code; else ``""``."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    code = body.get("error") if isinstance(body, Mapping) else None
    return f" ({code})" if isinstance(code, str) and code in _OAUTH_ERRORS else ""


def _copy_error(error: TokenFetchError) -> TokenFetchError:
    """A fresh exception for each waiter (one object raised in many threads mixes their tracebacks)."""
    return type(error)(str(error), status=error.status, url=error.url, reason=error.reason, attempts=error.attempts)
