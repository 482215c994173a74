"""A small SOCKS5 proxy for tests (RFC 1928 CONNECT, RFC 1929 username/password), on 127.0.0.1.

It only connects to loopback (``localhost`` is resolved by the proxy itself) and
records every request: the address type the client sent, the host and the port.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

from .relay import TcpRelay

_IPV4, _DOMAIN, _IPV6 = 1, 3, 4
_NO_AUTH, _USER_PASS, _NO_METHOD = 0x00, 0x02, 0xFF
_SUCCEEDED, _NOT_ALLOWED, _UNSUPPORTED_COMMAND = 0x00, 0x02, 0x07


@dataclass(frozen=True)
class SocksRequest:
    """One CONNECT request: ``kind`` is ``"ipv4"``, ``"domain"`` or ``"ipv6"``."""

    kind: str
    host: str
    port: int
    username: str | None


class Socks5Proxy(TcpRelay):
    """A SOCKS5 proxy; with ``credentials`` it demands username/password authentication."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.requests: list[SocksRequest] = []
        self.refused_logins: list[tuple[str, str]] = []
        self._recorded = threading.Condition()
        super().__init__(upstream_port=0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[SocksRequest]:
        with self._recorded:
            assert self._recorded.wait_for(lambda: len(self.requests) >= count, timeout), self.requests
            return list(self.requests)

    def serve(self, conn: socket.socket) -> None:
        try:
            username = self._negotiate(conn)
            if username is False:
                return
            request = self._read_request(conn, username)
            if request is None:
                return
            with self._recorded:
                self.requests.append(request)
                self._recorded.notify_all()
            if request.host not in ("127.0.0.1", "localhost", "::1"):
                conn.sendall(_reply(_NOT_ALLOWED))
                return
            upstream = self.track(socket.create_connection(("127.0.0.1", request.port), timeout=5))
            upstream.settimeout(None)
            conn.sendall(_reply(_SUCCEEDED, upstream.getsockname()))
            self.pipe_both_ways(conn, upstream)
        except OSError:
            pass
        finally:
            conn.close()

    def _negotiate(self, conn: socket.socket) -> str | bool | None:
        """The method exchange (and the login): the username, ``None`` without auth, ``False`` if refused."""
        version, count = _recv_exactly(conn, 2)
        assert version == 5, version
        methods = set(_recv_exactly(conn, count))
        wanted = _NO_AUTH if self.credentials is None else _USER_PASS
        if wanted not in methods:
            conn.sendall(bytes([5, _NO_METHOD]))
            return False
        conn.sendall(bytes([5, wanted]))
        if self.credentials is None:
            return None
        _, length = _recv_exactly(conn, 2)  # RFC 1929: VER=1, ULEN, UNAME, PLEN, PASSWD
        username = _recv_exactly(conn, length).decode()
        password = _recv_exactly(conn, _recv_exactly(conn, 1)[0]).decode()
        if (username, password) != self.credentials:
            self.refused_logins.append((username, password))
            conn.sendall(bytes([1, 1]))
            return False
        conn.sendall(bytes([1, 0]))
        return username

    def _read_request(self, conn: socket.socket, username: str | None) -> SocksRequest | None:
        version, command, _, kind = _recv_exactly(conn, 4)
        assert version == 5, version
        if kind == _IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exactly(conn, 4))
        elif kind == _IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exactly(conn, 16))
        else:
            host = _recv_exactly(conn, _recv_exactly(conn, 1)[0]).decode()
        (port,) = struct.unpack("!H", _recv_exactly(conn, 2))
        if command != 1:  # CONNECT only
            conn.sendall(_reply(_UNSUPPORTED_COMMAND))
            return None
        names = {_IPV4: "ipv4", _DOMAIN: "domain", _IPV6: "ipv6"}
        return SocksRequest(names[kind], host, port, username)


def _reply(status: int, bound: tuple[str, int] = ("0.0.0.0", 0)) -> bytes:
    return bytes([5, status, 0, _IPV4]) + socket.inet_aton(bound[0]) + struct.pack("!H", bound[1])


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the client went away mid-handshake")
        data += chunk
    return data
