"""Redirects as an explicit opt-in (``follow_redirects=N``): same scheme only, bounded, and no credential
goes to another origin (issue 13, item 2).

Raw servers on different ports are different origins; each records the request
head it received, so the tests check what really went over the wire. Without
the option a redirect stays a ``HandshakeError`` (``test_upgrade_hostile.py``).
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

import maxsdk
from maxsdk._runtime.redirects import RedirectChain
from maxsdk._runtime.transport import TransportOptions, open_websocket
from maxsdk.endpoint import redact_url
from tests.security.rawlongpoll import RawLongPollServer
from tests.support.rawserver import RawConnection, RawServer
from tests.support.socks5 import Socks5Proxy
from tests.tls.conftest import TLSFront

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-t0ken"
SECRETS = (SECRET, base64.b64encode(SECRET.encode()).decode().rstrip("="))  # auth_token travels base64-encoded


class Recorder:
    """A raw server that records every request head; ``answer(conn, number)`` replies to the n-th (from 1)."""

    def __init__(self, answer: Callable[[RawConnection, int], None]) -> None:
        self.heads: list[str] = []
        self.cond = threading.Condition()
        self._answer = answer
        self.raw = RawServer(self._script)
        self.port = self.raw.port
        self.url = self.raw.url

    def _script(self, conn: RawConnection) -> None:
        head = conn.read_request().decode("latin-1")
        with self.cond:
            self.heads.append(head)
            number = len(self.heads)
            self.cond.notify_all()
        self._answer(conn, number)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.heads) >= count, timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.raw.close()


def redirect(location: str, status: int = 302) -> Callable[[RawConnection, int], None]:
    def answer(conn: RawConnection, number: int) -> None:
        conn.send_raw(f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    return answer


def accept(conn: RawConnection, number: int) -> None:
    """Accept the upgrade (echoing ``phoenix`` when offered) and keep the connection until the client leaves."""
    offered = conn.header("Sec-WebSocket-Protocol") or ""
    conn.accept_upgrade(["Sec-WebSocket-Protocol: phoenix"] if "phoenix" in offered else [])
    conn.drain()


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def request_target(head: str) -> str:
    return head.split("\r\n", 1)[0].split(" ")[1]


def with_credentials(url: str, **options: Any) -> maxsdk.Client:
    """A client carrying the secret everywhere a credential can go."""
    options.setdefault("reconnect", False)
    return maxsdk.Client(
        url + "/socket",
        params={"token": SECRET},
        headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}", "X-Api-Key": SECRET},
        auth_token=SECRET,
        origin="https://app.example",
        **options,
    )


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, text


@pytest.fixture
def maxsdk_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="maxsdk"):
        yield caplog


# -- the option ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 21, True, 1.5, "2", None])
def test_follow_redirects_must_be_a_number_of_hops(value: object) -> None:
    with pytest.raises(maxsdk.ConfigurationError, match="follow_redirects"):
        maxsdk.Client("ws://127.0.0.1:1/socket", follow_redirects=value)  # type: ignore[arg-type]


def test_follow_redirects_defaults_to_refusing_and_says_how_to_opt_in() -> None:
    assert maxsdk.Client("ws://127.0.0.1:1/socket").config.follow_redirects == 0
    with Recorder(accept) as target, Recorder(redirect(f"{target.url}/socket/websocket?token={SECRET}")) as server:
        client = with_credentials(server.url)
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=5)
        finally:
            client.close()
    error = caught.value if isinstance(caught.value, maxsdk.HandshakeError) else caught.value.__cause__
    assert isinstance(error, maxsdk.HandshakeError) and error.status == 302
    assert "follow_redirects is 0" in str(error) and f"127.0.0.1:{target.port}" in str(error)
    assert_no_secret(str(error))
    assert target.heads == []


# -- following ----------------------------------------------------------------------------------------------


def test_a_relative_redirect_on_the_same_origin_keeps_the_credentials(maxsdk_log) -> None:
    def moved_then_accept(conn: RawConnection, number: int) -> None:
        if number == 1:
            redirect("/moved/websocket?vsn=2.0.0&token=from-server", status=308)(conn, number)
        else:
            accept(conn, number)

    with Recorder(moved_then_accept) as server:
        client = with_credentials(server.url, follow_redirects=1)
        try:
            client.connect(timeout=5)
            diagnostics = client.diagnostics()
        finally:
            client.close()
    assert len(server.heads) == 2
    final = server.heads[1]
    assert request_target(final) == "/moved/websocket?vsn=2.0.0&token=from-server"  # the Location, as given
    assert header(final, "Authorization") == f"Bearer {SECRET}"
    assert header(final, "Cookie") == f"session={SECRET}"
    assert SECRETS[1] in (header(final, "Sec-WebSocket-Protocol") or "")
    assert diagnostics.url == f"{server.url}/socket"  # what was configured; connected_url is where it went
    assert diagnostics.connected_url == f"{server.url}/moved/websocket?vsn=2.0.0&token=***"
    assert_no_secret(maxsdk_log.text + repr(client) + repr(diagnostics))
    assert "following redirect 308" in maxsdk_log.text


def test_a_redirect_to_another_origin_sends_no_credential_and_the_servers_query(maxsdk_log) -> None:
    with Recorder(accept) as other:
        location = f"{other.url}/socket/websocket?vsn=2.0.0&ticket=given-by-the-server"
        with Recorder(redirect(location, status=307)) as first:
            client = with_credentials(first.url, follow_redirects=2, compression=True)
            connected: list[str] = []
            client.on_signal(maxsdk.signals.connected, lambda sender, url, **kw: connected.append(url))
            try:
                client.connect(timeout=5)
                diagnostics = client.diagnostics()
            finally:
                client.close()
    assert SECRET in first.heads[0]  # the first origin got them, as configured
    assert len(other.heads) == 1
    head = other.heads[0]
    assert_no_secret(head)
    assert header(head, "Authorization") is None and header(head, "Cookie") is None
    assert header(head, "X-Api-Key") is None
    assert header(head, "Sec-WebSocket-Protocol") == "phoenix"  # the token subprotocol stayed behind
    assert header(head, "Origin") == "https://app.example"  # not a credential
    assert header(head, "Sec-WebSocket-Extensions")  # the protocol's own headers go on
    assert request_target(head) == "/socket/websocket?vsn=2.0.0&ticket=given-by-the-server"
    assert diagnostics.connected_url == f"{other.url}/socket/websocket?vsn=2.0.0&ticket=***"
    assert connected and connected[0] == diagnostics.connected_url
    assert_no_secret(maxsdk_log.text + repr(diagnostics))
    assert "another origin: credentials not sent" in maxsdk_log.text


def test_credentials_stay_behind_when_the_chain_comes_back_to_the_first_origin() -> None:
    def first_origin(conn: RawConnection, number: int) -> None:
        if number == 1:
            redirect(f"{other.url}/bounce")(conn, number)
        else:
            accept(conn, number)

    with Recorder(first_origin) as first, Recorder(redirect(f"{first.url}/socket/websocket?vsn=2.0.0")) as other:
        client = with_credentials(first.url, follow_redirects=3)
        try:
            client.connect(timeout=5)
        finally:
            client.close()
    assert len(first.heads) == 2 and len(other.heads) == 1
    assert_no_secret(other.heads[0])
    assert_no_secret(first.heads[1])  # back at the first origin after a foreign hop: still none


# -- refusing ----------------------------------------------------------------------------------------------


def open_raw(url: str, **options: Any) -> object:
    return open_websocket(url, TransportOptions(**options), redacted_url=redact_url(url))


def test_at_most_n_hops_are_followed() -> None:
    def onwards(conn: RawConnection, number: int) -> None:
        redirect(f"/hop/{number}")(conn, number)

    with Recorder(onwards) as server:
        with pytest.raises(maxsdk.HandshakeError, match="more than 3 redirects") as caught:
            open_raw(f"{server.url}/socket/websocket", follow_redirects=3)
        assert len(server.heads) == 4  # the first request and three hops, not one more
    assert caught.value.status == 302


def test_a_redirect_loop_is_an_error_before_the_loop_is_requested() -> None:
    def ping_pong(conn: RawConnection, number: int) -> None:
        redirect("/b" if number == 1 else "/a")(conn, number)

    with Recorder(ping_pong) as server:
        with pytest.raises(maxsdk.HandshakeError, match="redirect loop"):
            open_raw(f"{server.url}/a", follow_redirects=10)
        assert [request_target(h) for h in server.heads] == ["/a", "/b"]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "without a Location"),
        ("ftp://127.0.0.1/x", "non-ws URL"),
        ("wss://127.0.0.1:1/socket/websocket", "changes the scheme"),
        ("https://127.0.0.1:1/socket/websocket", "changes the scheme"),
    ],
)
def test_a_redirect_elsewhere_than_a_same_scheme_url_is_refused(location: str, message: str) -> None:
    def answer(conn: RawConnection, number: int) -> None:
        where = f"Location: {location}\r\n" if location else ""
        conn.send_raw(f"HTTP/1.1 301 Moved\r\n{where}Content-Length: 0\r\n\r\n".encode())

    with Recorder(answer) as server:
        with pytest.raises(maxsdk.HandshakeError, match=message):
            open_raw(f"{server.url}/socket/websocket", follow_redirects=5)
        assert len(server.heads) == 1


def test_one_connect_timeout_covers_every_hop() -> None:
    def slowly_onwards(conn: RawConnection, number: int) -> None:
        if not conn.server.stopping.wait(0.3):  # each hop answers late, inside any per-hop budget
            redirect(f"/hop/{number}")(conn, number)

    with Recorder(slowly_onwards) as server:
        started = time.monotonic()
        with pytest.raises(maxsdk.ConnectFailedError, match="timed out"):
            open_raw(f"{server.url}/socket/websocket", follow_redirects=20, connect_timeout=1.0)
        elapsed = time.monotonic() - started
        assert 2 <= len(server.heads) <= 5
    assert elapsed < 1.8, f"{elapsed:.2f} s for a 1 s connect_timeout"


def test_every_hop_goes_through_the_proxy() -> None:
    proxy = Socks5Proxy()
    try:
        with Recorder(accept) as other, Recorder(redirect(f"{other.url}/socket/websocket")) as first:
            client = maxsdk.Client(first.url + "/socket", follow_redirects=1, proxy=f"socks5://{proxy.address}")
            try:
                client.connect(timeout=5)
            finally:
                client.close()
        assert [(r.host, r.port) for r in proxy.wait_requests(2)] == [
            ("127.0.0.1", first.port),
            ("127.0.0.1", other.port),
        ]
    finally:
        proxy.stop()


def test_close_aborts_an_attempt_that_is_following_redirects() -> None:
    peer_saw_eof = threading.Event()

    def stall(conn: RawConnection, number: int) -> None:
        conn.sock.settimeout(10)
        try:
            if not conn.sock.recv(1):
                peer_saw_eof.set()
        except OSError:
            peer_saw_eof.set()

    with Recorder(stall) as stalled, Recorder(redirect(f"{stalled.url}/socket/websocket")) as first:
        client = maxsdk.Client(first.url + "/socket", follow_redirects=3, connect_timeout=30, close_timeout=1.0)
        client.connect_nowait()
        assert stalled.wait_for_requests(1), "the redirect was not followed"
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 1.5
        assert peer_saw_eof.wait(5), "the second hop's socket stayed open"
    assert client.state is maxsdk.ConnectionState.CLOSED
    assert not [t for t in client.threads if t.is_alive()]


# -- TLS: wss stays wss ---------------------------------------------------------------------------------------


@pytest.fixture
def tls() -> Iterator[tuple[Callable[[int], str], ssl.SSLContext]]:
    """``(front(port) -> wss base URL, client context)``: TLS terminators in front of raw servers."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    fronts: list[TLSFront] = []

    def front(port: int) -> str:
        fronts.append(TLSFront(port, server_context))
        return f"wss://127.0.0.1:{fronts[-1].port}"

    yield front, client_context
    for f in fronts:
        f.stop()


def test_a_downgrade_from_wss_to_ws_is_refused_whatever_the_option(tls) -> None:
    front, context = tls
    with Recorder(accept) as plain, Recorder(redirect(f"{plain.url}/socket/websocket?token={SECRET}")) as secure:
        url = front(secure.port) + "/socket/websocket"
        with pytest.raises(maxsdk.HandshakeError, match="downgrade") as caught:
            open_raw(url, follow_redirects=20, ssl_context=context, headers=(("Authorization", SECRET),))
        assert len(secure.heads) == 1
    assert plain.heads == []
    assert_no_secret(str(caught.value))


def test_wss_to_wss_on_another_origin_is_followed_without_credentials(tls) -> None:
    front, context = tls
    with Recorder(accept) as target:
        target_url = front(target.port)
        with Recorder(redirect(f"{target_url}/socket/websocket?vsn=2.0.0")) as first:
            client = with_credentials(front(first.port), follow_redirects=1, ssl_context=context)
            try:
                client.connect(timeout=5)
                assert client.diagnostics().connected_url == f"{target_url}/socket/websocket?vsn=2.0.0"
            finally:
                client.close()
    assert len(target.heads) == 1
    assert_no_secret(target.heads[0])


# -- long-poll: the same option, the same rules ----------------------------------------------------------------


class RedirectingHTTP:
    """An HTTP origin that answers every GET with ``status`` and ``Location: location``, recording headers."""

    def __init__(self, location: str, status: int = 302) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers.items())))
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"ws://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="redirecting-http", daemon=True)
        self._thread.start()

    def __enter__(self) -> RedirectingHTTP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


def test_long_poll_refuses_a_redirect_by_default_naming_the_redacted_location() -> None:
    with RawLongPollServer() as target, RedirectingHTTP(target.url.replace("ws:", "http:") + "/longpoll?t=1") as first:
        client = with_credentials(first.url, transport="longpoll")
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=5)
        finally:
            client.close()
        assert target.requests == []
    error = caught.value if isinstance(caught.value, maxsdk.HandshakeError) else caught.value.__cause__
    assert isinstance(error, maxsdk.HandshakeError) and error.status == 302
    assert "long-poll" in str(error) and "follow_redirects is 0" in str(error) and "t=***" in str(error)
    assert_no_secret(str(error))


def test_long_poll_follows_to_another_origin_without_credentials_and_the_session_works() -> None:
    with RawLongPollServer() as target:
        location = target.url.replace("ws:", "http:") + "/longpoll?vsn=2.0.0&ticket=given"
        with RedirectingHTTP(location, status=307) as first:
            client = with_credentials(first.url, transport="longpoll", follow_redirects=1)
            try:
                client.connect(timeout=5)
                room = client.join("room:moved", timeout=5)
                assert room.push("echo", {"n": 1}, timeout=5).response == {"n": 1}
                diagnostics = client.diagnostics()
            finally:
                client.close()
        assert SECRET in str(first.requests[0])  # the first origin got them, as configured
        assert target.requests
        for _method, path, headers, _ in target.requests:
            assert_no_secret(path + repr(headers))
            assert "authorization" not in {k.lower() for k in headers}
            assert path.startswith("/socket/longpoll?vsn=2.0.0&ticket=given")
    assert (
        diagnostics.connected_url is not None and "/socket/longpoll?vsn=2.0.0&ticket=***" in diagnostics.connected_url
    )


def test_long_poll_counts_its_hops_like_the_websocket() -> None:
    with RedirectingHTTP("/socket/longpoll/again") as loop:
        client = maxsdk.Client(loop.url + "/socket", transport="longpoll", follow_redirects=3, reconnect=False)
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=5)
        finally:
            client.close()
    error = caught.value if isinstance(caught.value, maxsdk.HandshakeError) else caught.value.__cause__
    assert isinstance(error, maxsdk.HandshakeError)
    assert "redirect loop" in str(error)
    assert len(loop.requests) == 2


# -- the rules, without sockets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("here", "location", "there", "cross_origin"),
    [
        ("ws://a.example/s/websocket", "/t/websocket", "ws://a.example/t/websocket", False),
        ("ws://a.example/s/websocket", "t", "ws://a.example/s/t", False),
        ("ws://a.example/s", "http://A.example:80/t", "ws://a.example:80/t", False),
        ("wss://a.example/s", "https://b.example/t?x=1#frag", "wss://b.example/t?x=1", True),
        ("wss://a.example/s", "//a.example:8443/t", "wss://a.example:8443/t", True),
        ("wss://a.example/s", "wss://user:pw@c.example/t", "wss://c.example/t", True),
    ],
)
def test_where_a_redirect_goes_and_whether_it_leaves_the_origin(
    here: str, location: str, there: str, cross_origin: bool
) -> None:
    chain = RedirectChain(here, 1)
    assert chain.follow(301, location) == there
    assert chain.cross_origin is cross_origin
