"""Hostile upgrade responses: redirects, cookies, huge or trickled heads, stalls, header injection."""

from __future__ import annotations

import threading
import time

import pytest

import maxsdk
from maxsdk import Backoff
from maxsdk._runtime.handshake import MAX_HEAD_BYTES, MAX_HEADERS
from maxsdk._runtime.transport import TransportOptions, open_websocket
from maxsdk.endpoint import redact_url
from tests.support.rawserver import RawConnection, RawServer

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-t0ken"


def counting_server() -> RawServer:
    """A server that only counts who connects to it (the redirect target)."""
    return RawServer(lambda conn: conn.read_request())


def open_raw(url: str, **options) -> object:
    return open_websocket(url, TransportOptions(**options), redacted_url=redact_url(url))


# -- redirects (no credential goes to another origin) -------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_handshake_error_and_is_not_followed(status: int) -> None:
    with counting_server() as target:
        location = f"{target.url}/socket/websocket?token={SECRET}"

        def redirect(conn: RawConnection) -> None:
            conn.read_request()
            conn.send_raw(f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

        with RawServer(redirect) as server:
            url = f"{server.url}/socket/websocket?token={SECRET}"
            with pytest.raises(maxsdk.HandshakeError) as caught:
                open_raw(url, headers=(("Authorization", f"Bearer {SECRET}"),), subprotocols=(SECRET,))
            error = caught.value
            assert error.status == status
            assert "redirect" in str(error) and f"127.0.0.1:{target.port}" in str(error)
            assert SECRET not in str(error) and SECRET not in repr(error)
        assert not target.wait_for_connections(1, timeout=0.3), "the redirect was followed"


def test_a_client_refused_by_redirect_never_reaches_the_other_origin() -> None:
    with counting_server() as target:

        def redirect(conn: RawConnection) -> None:
            conn.read_request()
            conn.send_raw(f"HTTP/1.1 307 Temporary\r\nLocation: {target.url}/socket/websocket\r\n\r\n".encode())

        with RawServer(redirect) as server:
            client = maxsdk.Client(
                server.url + "/socket", headers={"Authorization": f"Bearer {SECRET}"}, connect_timeout=2
            )
            try:
                with pytest.raises(maxsdk.MaxsdkError) as caught:
                    client.connect(timeout=1.0)
                assert isinstance(caught.value.__cause__ or caught.value, maxsdk.HandshakeError)
                assert server.wait_for_connections(1)
            finally:
                client.close()
        assert not target.connections, "credentials went to the redirect target"


# -- cookies: no jar at all ------------------------------------------------------------------------------


def test_no_cookie_set_by_one_server_is_sent_anywhere() -> None:
    seen_cookies: list[str | None] = []
    seen = threading.Condition()

    def set_cookie(conn: RawConnection) -> None:
        conn.read_request()
        with seen:
            seen_cookies.append(conn.header("Cookie"))
            seen.notify_all()
        conn.accept_upgrade(["Set-Cookie: session=abc123; Path=/", "Set-Cookie: other=1; Domain=127.0.0.1"])
        conn.drain()

    with RawServer(set_cookie) as a, RawServer(set_cookie) as b:
        first = open_raw(a.url + "/socket/websocket")
        second = open_raw(b.url + "/socket/websocket")
        again = open_raw(a.url + "/socket/websocket")
        for transport in (first, second, again):
            transport.abort()  # type: ignore[attr-defined]
        with seen:
            assert seen.wait_for(lambda: len(seen_cookies) == 3, 5)
    assert seen_cookies == [None, None, None]


# -- a bounded upgrade with one deadline -------------------------------------------------------------------


def test_a_huge_header_line_is_refused_without_buffering_it() -> None:
    def huge(conn: RawConnection) -> None:
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 101 Switching Protocols\r\nX-Big: ")
        try:
            for _ in range(32):  # 2 MiB, never ending the line
                conn.send_raw(b"a" * 65536)
        except OSError:
            pass
        conn.hold(5)

    with RawServer(huge) as server, pytest.raises(maxsdk.ConnectFailedError, match=f"larger than {MAX_HEAD_BYTES}"):
        open_raw(server.url + "/socket/websocket")


def test_too_many_header_lines_are_refused() -> None:
    def many(conn: RawConnection) -> None:
        conn.read_request()
        lines = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS + 1))
        conn.send_raw(f"HTTP/1.1 101 Switching Protocols\r\n{lines}\r\n".encode())
        conn.hold(5)

    with RawServer(many) as server, pytest.raises(maxsdk.ConnectFailedError, match="more than"):
        open_raw(server.url + "/socket/websocket")


def test_a_trickled_response_cannot_outlast_the_connect_timeout() -> None:
    def trickle(conn: RawConnection) -> None:
        conn.read_request()
        for byte in b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: " + b"a" * 1000:
            if conn.server.stopping.wait(0.1):
                return
            conn.send_raw(bytes([byte]))

    with RawServer(trickle) as server:
        started = time.monotonic()
        with pytest.raises(maxsdk.ConnectFailedError, match="timed out"):
            open_raw(server.url + "/socket/websocket", connect_timeout=1.0)
        assert time.monotonic() - started < 2.0  # one deadline for the whole upgrade, not one per read


def stall(conn: RawConnection) -> None:
    """Read the request, never answer (until the test releases it)."""
    conn.read_request()
    conn.hold()


def test_connect_honours_its_timeout_against_a_stalled_upgrade() -> None:
    with RawServer(stall) as server:
        client = maxsdk.Client(server.url + "/socket", connect_timeout=10)
        try:
            started = time.monotonic()
            with pytest.raises(maxsdk.ConnectTimeoutError):
                client.connect(timeout=1.0)
            assert time.monotonic() - started < 1.6
        finally:
            started = time.monotonic()
            client.close()
            assert time.monotonic() - started < 1.5, "close() waited for the stalled upgrade"
        assert client.state is maxsdk.ConnectionState.CLOSED
        assert not [t for t in client.threads if t.is_alive()]


def test_close_aborts_a_slow_upgrade_and_a_late_101_changes_nothing() -> None:
    release = threading.Event()
    requested = threading.Event()
    peer_saw_eof = threading.Event()

    def slow_then_accept(conn: RawConnection) -> None:
        conn.read_request()
        requested.set()
        release.wait(10)
        try:
            conn.accept_upgrade()
            conn.sock.settimeout(5)
            if not conn.sock.recv(1):
                peer_saw_eof.set()
        except OSError:
            peer_saw_eof.set()

    with RawServer(slow_then_accept) as server:
        client = maxsdk.Client(server.url + "/socket", connect_timeout=30, close_timeout=1.0)
        client.connect_nowait()
        assert requested.wait(10), "the upgrade request never arrived"  # the attempt is waiting for the 101
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 1.5
        release.set()
        assert peer_saw_eof.wait(5), "the aborted attempt's socket stayed open"
        assert client.state is maxsdk.ConnectionState.CLOSED
        assert not [t for t in client.threads if t.is_alive()]


# -- header injection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"headers": {"X-Token": "a\r\nX-Injected: 1"}},
        {"headers": {"X-Token": "a\nb"}},
        {"origin": "https://a.example\r\nX-Injected: 1"},
    ],
)
def test_static_header_values_with_cr_or_lf_are_refused_at_construction(options: dict) -> None:
    with pytest.raises(maxsdk.ConfigurationError):
        maxsdk.Client("ws://127.0.0.1:1/socket", **options)


def test_callable_header_values_with_cr_or_lf_are_refused_at_connect() -> None:
    heads: list[bytes] = []

    def record(conn: RawConnection) -> None:
        heads.append(conn.read_request())
        conn.accept_upgrade()
        conn.drain()

    injected = "tok\r\nX-Injected: 1"
    with RawServer(record) as server:
        client = maxsdk.Client(
            server.url + "/socket",
            headers=lambda: {"Authorization": injected},
            reconnect=Backoff(steps=(0.05,), jitter="none"),
        )
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=2)
            chain = [caught.value, caught.value.__cause__]
            assert any(isinstance(e, maxsdk.ConfigurationError) for e in chain), chain
        finally:
            client.close()
    assert all(b"X-Injected" not in head for head in heads)


def test_a_token_provider_header_with_cr_or_lf_is_refused_at_connect() -> None:
    import responses

    heads: list[bytes] = []

    def record(conn: RawConnection) -> None:
        heads.append(conn.read_request())
        conn.accept_upgrade()
        conn.drain()

    with responses.RequestsMock() as mock, RawServer(record) as server:
        mock.add(responses.POST, "https://idp.example/token", json={"access_token": "t\r\nX-Injected: 1"})
        provider = maxsdk.TokenProvider("https://idp.example/token")
        client = maxsdk.Client(server.url + "/socket", headers=provider.header(), reconnect=False)
        try:
            with pytest.raises(maxsdk.MaxsdkError) as caught:
                client.connect(timeout=2)
            chain = [caught.value, caught.value.__cause__]
            assert any(isinstance(e, maxsdk.ConfigurationError) for e in chain), chain
        finally:
            client.close()
    assert all(b"X-Injected" not in head for head in heads)


def test_an_auth_token_with_cr_or_lf_travels_encoded_and_injects_nothing() -> None:
    heads: list[bytes] = []

    def record(conn: RawConnection) -> None:
        heads.append(conn.read_request())
        conn.send_raw(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    with RawServer(record) as server:
        client = maxsdk.Client(server.url + "/socket", auth_token=lambda: "tok\r\nX-Injected: 1", reconnect=False)
        try:
            with pytest.raises(maxsdk.MaxsdkError):
                client.connect(timeout=2)
        finally:
            client.close()
    assert heads and all(b"X-Injected" not in head for head in heads)
