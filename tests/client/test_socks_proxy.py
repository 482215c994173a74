"""SOCKS proxies (``proxy="socks5://..."``, the ``socks`` extra) for both transports, through a SOCKS5
server written in tests/support."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

import maxsdk
from maxsdk import Client
from tests.client.helpers import fast_client
from tests.support.socks5 import Socks5Proxy, SocksRequest


@pytest.fixture
def socks() -> Iterator[Socks5Proxy]:
    proxy = Socks5Proxy()
    yield proxy
    proxy.stop()


@pytest.fixture
def socks_with_login() -> Iterator[Socks5Proxy]:
    proxy = Socks5Proxy(credentials=("alice", "p@ss:word"))
    yield proxy
    proxy.stop()


def test_websocket_through_a_socks5_proxy(phoenix_server: Any, socks: Socks5Proxy) -> None:
    with fast_client(phoenix_server.url, proxy=f"socks5://{socks.address}") as client:
        assert client.join("room:lobby").push("echo", {"via": "socks"}).response == {"via": "socks"}
    assert socks.requests == [SocksRequest("ipv4", "127.0.0.1", phoenix_server.port, None)]


def test_socks5h_lets_the_proxy_resolve_the_host_name(phoenix_server: Any, socks: Socks5Proxy) -> None:
    url = phoenix_server.url.replace("127.0.0.1", "localhost")
    with fast_client(url, proxy=f"socks5h://{socks.address}") as client:
        assert client.join("room:lobby").joined
    assert socks.requests == [SocksRequest("domain", "localhost", phoenix_server.port, None)]


def test_a_reconnect_goes_through_the_proxy_again(phoenix_server: Any, socks: Socks5Proxy) -> None:
    with fast_client(phoenix_server.url, proxy=f"socks5://{socks.address}") as client:
        room = client.join("room:lobby")
        phoenix_server.drop_connections()
        assert len(socks.wait_requests(2)) == 2
        assert room.push("echo", {"after": "reconnect"}).response == {"after": "reconnect"}


def test_socks5_login_with_percent_encoded_credentials(phoenix_server: Any, socks_with_login: Socks5Proxy) -> None:
    proxy = f"socks5://alice:p%40ss%3Aword@{socks_with_login.address}"
    with fast_client(phoenix_server.url, proxy=proxy) as client:
        assert client.join("room:lobby").joined
        assert "p%40ss" not in repr(client) and "p@ss" not in repr(client.diagnostics())
    assert [r.username for r in socks_with_login.requests] == ["alice"]


def test_a_refused_socks_login_is_a_typed_error_without_the_password(
    phoenix_server: Any, socks_with_login: Socks5Proxy
) -> None:
    client = fast_client(phoenix_server.url, proxy=f"socks5://alice:wrong-secret@{socks_with_login.address}")
    with pytest.raises(maxsdk.ConnectTimeoutError) as info:
        client.connect(timeout=0.5)
    client.close()
    cause = info.value.__cause__
    assert isinstance(cause, maxsdk.ConnectFailedError)
    assert "SOCKS proxy" in str(cause) and "authentication" in str(cause).lower(), str(cause)
    assert "wrong-secret" not in str(info.value) + str(cause)
    assert socks_with_login.refused_logins[0] == ("alice", "wrong-secret")
    assert socks_with_login.requests == []


def test_an_unreachable_socks_proxy_is_a_connect_failure_naming_the_proxy(phoenix_server: Any) -> None:
    idle = Socks5Proxy()
    address = idle.address
    idle.stop()  # nothing listens there now
    client = fast_client(phoenix_server.url, proxy=f"socks5://{address}")
    with pytest.raises(maxsdk.ConnectTimeoutError) as info:
        client.connect(timeout=0.5)
    client.close()
    assert isinstance(info.value.__cause__, maxsdk.ConnectFailedError)
    assert "SOCKS proxy" in str(info.value.__cause__), str(info.value.__cause__)


def test_long_poll_through_a_socks5_proxy(phoenix_server: Any, socks: Socks5Proxy) -> None:
    url = phoenix_server.url.replace("127.0.0.1", "localhost")
    with Client(url, transport="longpoll", proxy=f"socks5h://{socks.address}") as client:
        assert client.join("room:lobby").push("echo", {"via": "socks"}).response == {"via": "socks"}
    assert socks.requests and {r.kind for r in socks.requests} == {"domain"}
    assert {r.port for r in socks.requests} == {phoenix_server.port}


@pytest.mark.parametrize("proxy", ["ftp://proxy:21", "socks6://proxy:1080", "socks5://"])
def test_unusable_proxy_urls_are_refused_at_construction(proxy: str) -> None:
    with pytest.raises(maxsdk.ConfigurationError, match="proxy must look like"):
        Client("ws://127.0.0.1:1/socket", proxy=proxy)


@pytest.mark.parametrize(("transport", "missing"), [("websocket", "python_socks"), ("longpoll", "socks")])
def test_a_socks_proxy_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, transport: str, missing: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    with pytest.raises(maxsdk.ConfigurationError, match=r"pip install 'maxsdk\[socks\]'"):
        Client("ws://127.0.0.1:1/socket", transport=transport, proxy="socks5://127.0.0.1:1080")
