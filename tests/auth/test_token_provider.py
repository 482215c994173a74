"""TokenProvider: fetch, cache, refresh ahead of expiry, retries, thread safety and redaction.

Every HTTP exchange is mocked with ``responses``; no test touches the network.
Time is a fake monotonic clock the tests advance by hand.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import maxsdk
from maxsdk.auth import TokenProvider
from maxsdk.errors import AuthenticationError, ConnectFailedError, TokenFetchError, TokenRejectedError

URL = "https://auth.example.test/oauth/token"
SECRET = "s3cr3t-client-password"
TOKEN = "tok-AAAA-very-secret"
TOKEN2 = "tok-BBBB-very-secret"
NO_WAIT = maxsdk.Backoff.constant(0.0, max_attempts=3)


class FakeClock:
    """A monotonic clock advanced by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make(clock: FakeClock, **kwargs: Any) -> TokenProvider:
    kwargs.setdefault("retry", NO_WAIT)
    return TokenProvider(URL, clock=clock, **kwargs)


def req_kwargs(rsps: responses.RequestsMock, index: int) -> dict[str, Any]:
    """The keyword arguments ``requests`` sent the adapter (``responses`` records them)."""
    kwargs: dict[str, Any] = getattr(rsps.calls[index].request, "req_kwargs")  # noqa: B009
    return kwargs


def ok(rsps: responses.RequestsMock, token: str = TOKEN, **fields: Any) -> None:
    rsps.add(responses.POST, URL, json={"access_token": token, **fields}, status=200)


# -- success and caching ----------------------------------------------------------


def test_fetches_with_the_configured_request_and_verifies_tls(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(
        responses.POST,
        URL,
        json={"access_token": TOKEN, "expires_in": 3600},
        match=[
            matchers.urlencoded_params_matcher({"grant_type": "client_credentials", "scope": "socket"}),
            matchers.header_matcher({"X-Tenant": "acme"}),
        ],
    )
    provider = make(
        clock,
        data={"grant_type": "client_credentials", "scope": "socket"},
        headers={"X-Tenant": "acme"},
        timeout=(1.5, 4.0),
    )
    assert provider() == TOKEN
    kwargs = req_kwargs(mocked, 0)
    # True, or the CA bundle named by REQUESTS_CA_BUNDLE: verification is on either way.
    assert kwargs["verify"] is True or isinstance(kwargs["verify"], str)
    assert kwargs["timeout"] == (1.5, 4.0)
    assert provider.expires_in == pytest.approx(3600)


def test_json_body_get_method_and_dotted_fields(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(
        responses.GET,
        URL,
        json={"data": {"credentials": [{"token": TOKEN, "ttl": "120"}]}},
        match=[matchers.json_params_matcher({"user": "bot"})],
    )
    provider = make(
        clock,
        method="get",
        json={"user": "bot"},
        token_field="data.credentials.0.token",
        expires_in_field="data.credentials.0.ttl",
    )
    assert provider() == TOKEN
    assert provider.expires_in == pytest.approx(120)


def test_caches_the_token(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, expires_in=3600)
    provider = make(clock)
    assert [provider() for _ in range(5)] == [TOKEN] * 5
    assert len(mocked.calls) == 1


def test_basic_auth_and_callable_body_evaluated_per_fetch(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, expires_in=100)
    counter = iter(range(100))
    provider = make(clock, json=lambda: {"n": next(counter)}, basic_auth=("client", SECRET))
    provider()
    clock.advance(200)
    provider()
    bodies = [call.request.body for call in mocked.calls]
    assert bodies == [b'{"n": 0}', b'{"n": 1}']
    assert mocked.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_no_expiry_field_uses_default_ttl_or_never_expires(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked)
    forever = make(clock)
    assert forever() == TOKEN
    assert forever.expires_in is None
    clock.advance(10**6)
    assert forever() == TOKEN
    assert len(mocked.calls) == 1

    limited = make(clock, default_ttl=60)
    limited()
    assert limited.expires_in == pytest.approx(60)


# -- refresh ahead of expiry ---------------------------------------------------------


def test_refreshes_ahead_of_expiry_by_the_margin(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, TOKEN, expires_in=100)
    provider = make(clock, refresh_margin=30)
    assert provider() == TOKEN
    clock.advance(69)
    assert provider() == TOKEN
    assert len(mocked.calls) == 1
    mocked.replace(responses.POST, URL, json={"access_token": TOKEN2, "expires_in": 100})
    clock.advance(2)  # 29 s left: inside the margin
    assert provider() == TOKEN2
    assert len(mocked.calls) == 2


def test_refresh_fraction_of_a_long_lifetime(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, expires_in=1000)
    provider = make(clock, refresh_margin=30, refresh_fraction=0.1)
    provider()
    clock.advance(899)
    provider()
    assert len(mocked.calls) == 1
    clock.advance(2)  # 99 s left < 10 % of 1000 s
    provider()
    assert len(mocked.calls) == 2


def test_margin_never_exceeds_half_a_short_lifetime(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, expires_in=20)
    provider = make(clock, refresh_margin=30)
    provider()
    clock.advance(9)
    provider()
    assert len(mocked.calls) == 1, "a 30 s margin must not refetch a 20 s token on every call"
    clock.advance(2)
    provider()
    assert len(mocked.calls) == 2


def test_expires_at_epoch_and_iso(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    wall = 1_700_000_000.0
    mocked.add(responses.POST, URL, json={"access_token": TOKEN, "exp": wall + 500})
    mocked.add(responses.POST, URL, json={"access_token": TOKEN, "exp": (wall + 400) * 1000})
    mocked.add(responses.POST, URL, json={"access_token": TOKEN, "exp": "2023-11-14T22:18:20Z"})  # wall + 300
    provider = make(clock, expires_in_field=None, expires_at_field="exp", wall_clock=lambda: wall)
    for expected in (500, 400, 300):
        provider.invalidate()
        provider()
        assert provider.expires_in == pytest.approx(expected)


def test_failed_early_refresh_keeps_the_valid_token_until_it_expires(
    mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    ok(mocked, expires_in=100)
    provider = make(clock, refresh_margin=30, refresh_retry_interval=5, retry=False)
    provider()
    mocked.replace(responses.POST, URL, status=503)
    clock.advance(80)
    assert provider() == TOKEN  # refresh failed, the old token is still good
    assert len(mocked.calls) == 2
    assert provider() == TOKEN  # no new attempt within refresh_retry_interval
    assert len(mocked.calls) == 2
    clock.advance(6)
    assert provider() == TOKEN
    assert len(mocked.calls) == 3
    clock.advance(20)  # expired now
    with pytest.raises(TokenFetchError) as info:
        provider()
    assert info.value.status == 503


# -- invalidate ---------------------------------------------------------------------


def test_invalidate_forces_a_fetch(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, TOKEN, expires_in=3600)
    provider = make(clock)
    assert provider() == TOKEN
    mocked.replace(responses.POST, URL, json={"access_token": TOKEN2, "expires_in": 3600})
    provider.invalidate(token="some-other-token")  # not the cached one: ignored
    assert provider() == TOKEN
    provider.invalidate(token=TOKEN)
    assert not provider.has_token
    assert provider() == TOKEN2
    assert provider.refresh() == TOKEN2
    assert len(mocked.calls) == 3


# -- retries --------------------------------------------------------------------------


def test_retries_5xx_then_succeeds(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, status=503)
    mocked.add(responses.POST, URL, status=500)
    ok(mocked)
    provider = make(clock)
    assert provider() == TOKEN
    assert len(mocked.calls) == 3


def test_retries_connection_errors_and_timeouts(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, body=requests.exceptions.ConnectionError("refused"))
    mocked.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("slow"))
    ok(mocked)
    provider = make(clock)
    assert provider() == TOKEN
    assert len(mocked.calls) == 3


def test_gives_up_after_the_retries_with_the_last_status(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, status=502)
    provider = make(clock, retry=maxsdk.Backoff.constant(0.0, max_attempts=2))
    with pytest.raises(TokenFetchError) as info:
        provider()
    error = info.value
    assert len(mocked.calls) == 3
    assert error.status == 502 and error.attempts == 3
    assert not isinstance(error, AuthenticationError)
    assert isinstance(error, ConnectFailedError)
    assert "HTTP 502" in str(error) and "3 attempts" in str(error)


def test_timeout_gives_up_with_no_status(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, body=requests.exceptions.ConnectTimeout("no answer"))
    provider = make(clock, retry=maxsdk.Backoff.constant(0.0, max_attempts=1), timeout=0.5)
    with pytest.raises(TokenFetchError) as info:
        provider()
    assert info.value.status is None
    assert "timed out" in str(info.value)
    assert len(mocked.calls) == 2
    assert req_kwargs(mocked, 0)["timeout"] == 0.5


def test_retry_delays_follow_the_backoff(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, status=503)
    ok(mocked)
    delays: list[int] = []

    def no_delay(attempt: int) -> float:
        delays.append(attempt)
        return 0.0

    schedule = maxsdk.Backoff(function=no_delay, jitter="none")
    provider = make(clock, retry=schedule)
    assert provider() == TOKEN
    assert delays == [1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
def test_no_retry_on_4xx(mocked: responses.RequestsMock, clock: FakeClock, status: int) -> None:
    mocked.add(responses.POST, URL, status=status, json={"error": "invalid_client"})
    provider = make(clock)
    with pytest.raises(TokenRejectedError) as info:
        provider()
    assert len(mocked.calls) == 1
    error = info.value
    assert error.status == status
    assert isinstance(error, TokenFetchError) and isinstance(error, AuthenticationError)
    assert f"HTTP {status} (invalid_client)" in str(error)


def test_no_retry_on_tls_failure_or_redirect(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    mocked.add(responses.POST, URL, body=requests.exceptions.SSLError("certificate verify failed"))
    provider = make(clock)
    with pytest.raises(TokenFetchError, match="TLS verification"):
        provider()
    assert len(mocked.calls) == 1
    mocked.replace(responses.POST, URL, status=302, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(TokenFetchError, match="unexpected HTTP 302") as info:
        provider()
    assert info.value.status == 302
    assert len(mocked.calls) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>oops</html>", "not JSON"),
        ({"token": "x"}, "has no 'access_token' field"),
        ({"access_token": 12}, "non-string or empty 'access_token'"),
        ({"access_token": ""}, "non-string or empty"),
        ({"access_token": TOKEN, "expires_in": "soon"}, "expiry field"),
    ],
)
def test_unusable_bodies(mocked: responses.RequestsMock, clock: FakeClock, body: Any, reason: str) -> None:
    if isinstance(body, str):
        mocked.add(responses.POST, URL, body=body, status=200)
    else:
        mocked.add(responses.POST, URL, json=body, status=200)
    provider = make(clock)
    with pytest.raises(TokenFetchError, match=reason) as info:
        provider()
    assert info.value.status == 200
    assert type(info.value) is TokenFetchError
    assert len(mocked.calls) == 1
    assert TOKEN not in str(info.value)


# -- threads -----------------------------------------------------------------------------


def test_twenty_threads_one_http_call(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    provider = make(clock)
    release = threading.Event()

    def slow_token(request: Any) -> tuple[int, dict[str, str], str]:
        # Hold the fetch until the 19 other callers are waiting for it.
        with provider._cond:
            provider._cond.wait_for(lambda: provider._waiting == 19, timeout=10)
        release.set()
        return 200, {}, json.dumps({"access_token": TOKEN, "expires_in": 3600})

    mocked.add_callback(responses.POST, URL, callback=slow_token)
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        token = provider()
        with lock:
            results.append(token)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert release.is_set()
    assert results == [TOKEN] * 20
    assert len(mocked.calls) == 1


def test_waiters_share_a_failed_fetch(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    provider = make(clock, retry=False)

    def refuse(request: Any) -> tuple[int, dict[str, str], str]:
        with provider._cond:
            provider._cond.wait_for(lambda: provider._waiting == 4, timeout=10)
        return 401, {}, ""

    mocked.add_callback(responses.POST, URL, callback=refuse)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            provider()
        except TokenFetchError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5
    assert all(isinstance(e, TokenRejectedError) and e.status == 401 for e in errors)
    assert len({id(e) for e in errors}) == 5, "each thread gets its own exception object"
    assert len(mocked.calls) == 1


def test_a_failing_body_callable_does_not_wedge_the_provider(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked)
    calls = iter([RuntimeError(f"cannot read {SECRET}"), None])

    def body() -> dict[str, str]:
        failure = next(calls)
        if failure is not None:
            raise failure
        return {"grant_type": "x"}

    provider = make(clock, data=body)
    with pytest.raises(TokenFetchError, match=r"building the request failed \(RuntimeError\)") as info:
        provider()
    assert SECRET not in str(info.value)
    assert provider() == TOKEN


def test_close_ends_a_retry_wait_and_refuses_later_calls(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    first_failure = threading.Event()

    def fail(request: Any) -> tuple[int, dict[str, str], str]:
        first_failure.set()
        return 503, {}, ""

    mocked.add_callback(responses.POST, URL, callback=fail)
    provider = make(clock, retry=maxsdk.Backoff.constant(60.0))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            provider()
        except TokenFetchError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert first_failure.wait(10)
    provider.close()
    thread.join(10)
    assert not thread.is_alive()
    assert "closed" in str(errors[0])
    with pytest.raises(TokenFetchError, match="closed"):
        provider()


# -- adapters -------------------------------------------------------------------------------


def test_params_and_header_helpers(mocked: responses.RequestsMock, clock: FakeClock) -> None:
    ok(mocked, expires_in=3600)
    provider = make(clock)
    assert provider.params()() == {"token": TOKEN}
    assert provider.params("access", extra={"v": "2"})() == {"v": "2", "access": TOKEN}
    assert provider.header()() == {"Authorization": f"Bearer {TOKEN}"}
    assert provider.header("X-Token", scheme=None)() == {"X-Token": TOKEN}
    assert len(mocked.calls) == 1


def test_plugs_into_the_client(mocked: responses.RequestsMock, clock: FakeClock, phoenix_server_factory: Any) -> None:
    server = phoenix_server_factory(token=TOKEN)
    ok(mocked, expires_in=3600)
    provider = make(clock)
    with maxsdk.Client(server.url, params=provider.params()) as client:
        assert client.connected


def test_a_refused_token_request_stops_the_client(
    mocked: responses.RequestsMock, clock: FakeClock, phoenix_server_factory: Any
) -> None:
    server = phoenix_server_factory(token=TOKEN)
    mocked.add(responses.POST, URL, status=401)
    provider = make(clock)
    client = maxsdk.Client(server.url, params=provider.params(), reconnect=maxsdk.Backoff.constant(0.0))
    try:
        with pytest.raises(TokenRejectedError):
            client.connect(timeout=10)
    finally:
        client.close()
    assert len(mocked.calls) == 2  # one retry with freshly evaluated credentials, then fatal


# -- secrets never leak ----------------------------------------------------------------------


def test_secrets_never_reach_logs_reprs_or_errors(
    mocked: responses.RequestsMock, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_url = URL + "?client_secret=" + SECRET
    echo = {"error": "bad " + SECRET, "access_token": TOKEN}
    mocked.add(responses.POST, secret_url, status=503, json=echo)
    mocked.add(responses.POST, secret_url, status=200, json={"access_token": TOKEN, "expires_in": 100})
    mocked.add(responses.POST, secret_url, status=200, json={"access_token": TOKEN2, "expires_in": "x"})
    mocked.add(responses.POST, secret_url, status=401, json=echo)
    mocked.add(responses.POST, secret_url, body=requests.exceptions.ConnectionError(f"failed {secret_url}"))
    provider = TokenProvider(
        secret_url,
        data={"grant_type": "password", "password": SECRET},
        basic_auth=("client", SECRET),
        clock=clock,
        retry=maxsdk.Backoff.constant(0.0, max_attempts=1),
    )
    texts: list[str] = []
    assert provider() == TOKEN  # a retried 503, then the token
    texts.append(repr(provider))
    for _ in range(3):  # unusable expiry, 401, connection error
        provider.invalidate()
        with pytest.raises(TokenFetchError) as info:
            provider()
        texts.extend([str(info.value), repr(info.value), repr(provider), str(info.value.url)])
    texts.append(caplog.text)
    joined = "\n".join(texts)
    for secret in (SECRET, TOKEN, TOKEN2):
        assert secret not in joined
    assert "client_secret=***" in joined
    assert len(mocked.calls) == 6  # the connection error is retried once
