"""Opening a WebSocket: TCP (through an HTTP or SOCKS proxy when asked), TLS, and the HTTP upgrade.

Owned here rather than left to websocket-client, because a client that talks
to servers it does not control needs every step bounded and its own:

* **one deadline** (``connect_timeout``) for the whole attempt, TCP to the
  last header byte: a server trickling its response cannot keep it alive;
* **bounded response**: the head is read in chunks (not one byte per call)
  up to :data:`MAX_HEAD_BYTES` and :data:`MAX_HEADERS`; bytes after it (frames
  a server sends at once) are handed to the transport;
* **no redirects** unless asked: a 3xx answer is a :class:`~maxsdk.errors.HandshakeError`
  naming the status and the redacted ``Location``; with ``follow_redirects``
  same-scheme hops are followed within the same deadline, and credentials
  stay behind when the origin changes (rules in :mod:`maxsdk._runtime.redirects`);
* **no cookies**: nothing a server set is ever sent to another (websocket-client
  keeps one jar for the whole process, without domain matching);
* **no header injection**: a CR or LF in a header value is refused;
* **abortable**: :class:`ConnectAttempt` lets ``close()`` end an attempt in
  progress from another thread.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from maxsdk._runtime.redirects import REDIRECT_STATUSES, RedirectChain, public_headers, public_subprotocols
from maxsdk.endpoint import redact_url
from maxsdk.errors import (
    AuthenticationError,
    CertificatePinError,
    ConfigurationError,
    ConnectFailedError,
    HandshakeError,
    TLSVerificationError,
)
from maxsdk.tls import check_pins

__all__ = ["MAX_HEADERS", "MAX_HEAD_BYTES", "ConnectAttempt", "Upgraded", "check_header_value", "open_upgraded"]

log = logging.getLogger("maxsdk.transport")

#: The largest upgrade response head accepted, in bytes.
MAX_HEAD_BYTES = 64 * 1024
#: The most header lines accepted in an upgrade response.
MAX_HEADERS = 100
#: The most bytes of an error response body read (for the error message).
_MAX_BODY = 4096
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_QUERY_VALUE = re.compile(r"([?&][^=&\s#]+=)[^&\s#\"']*")


def check_header_value(name: str, value: str) -> None:
    """Refuse a header name or value that would inject lines into the request.

    Raises:
        ConfigurationError: a CR, LF or NUL in it (the value is never shown).

    """
    if any(c in name for c in "\r\n\0:") or not name.strip():
        raise ConfigurationError(f"invalid header name {name[:40]!r}")
    if any(c in value for c in "\r\n\0"):
        raise ConfigurationError(f"header {name!r} has a CR, LF or NUL in its value (refused: header injection)")


class ConnectAttempt:
    """A connection attempt in progress that another thread can abort."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.aborted = False

    def attach(self, sock: socket.socket) -> None:
        """Track ``sock``; if the attempt was aborted already, close it and raise."""
        with self._lock:
            if not self.aborted:
                self._sock = sock
                return
        _close(sock)
        raise ConnectFailedError("connection attempt aborted")

    def finish(self) -> bool:
        """The attempt succeeded: stop tracking its socket (a later :meth:`abort` leaves it open).

        Returns ``False`` if it was aborted first (the caller then closes the socket).
        """
        with self._lock:
            self._sock = None
            return not self.aborted

    def abort(self) -> None:
        """End the attempt: the thread blocked in it gets an error at once."""
        with self._lock:
            self.aborted = True
            sock, self._sock = self._sock, None
        if sock is not None:
            _close(sock)


class Upgraded:
    """The result of a successful upgrade: the socket, the chosen subprotocol, and early bytes.

    ``url`` is the URL that answered 101 (after any followed redirects) and
    ``redirects`` how many were followed.
    """

    __slots__ = ("headers", "leftover", "redirects", "sock", "subprotocol", "url")

    def __init__(
        self,
        sock: socket.socket,
        subprotocol: str | None,
        headers: dict[str, str],
        leftover: bytes,
        *,
        url: str = "",
        redirects: int = 0,
    ) -> None:
        self.sock = sock
        self.subprotocol = subprotocol
        self.headers = headers
        self.leftover = leftover
        self.url = url
        self.redirects = redirects


class _RedirectedError(Exception):
    """A 3xx answer to one request of the chain (handled by :func:`open_upgraded`)."""

    def __init__(self, status: int, location: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.location = location


def open_upgraded(
    url: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    subprotocols: tuple[str, ...] = (),
    origin: str | None = None,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    proxy: tuple[str, int, tuple[str, str] | None] | None = None,
    proxy_scheme: str = "http",
    attempt: ConnectAttempt | None = None,
    redacted_url: str | None = None,
    follow_redirects: int = 0,
    pins: frozenset[bytes] = frozenset(),
) -> Upgraded:
    """Connect to ``url`` and perform the WebSocket upgrade within ``timeout`` seconds in all.

    With ``follow_redirects``, up to that many redirects are followed (see
    :mod:`maxsdk._runtime.redirects`), every hop within the same ``timeout``.

    Raises:
        AuthenticationError: the upgrade was refused with 401 or 403.
        HandshakeError: another status (a redirect not followed included), or an invalid 101.
        TLSVerificationError: the certificate did not verify.
        ConnectFailedError: anything else (refused, DNS, reset, deadline, limits).
        ConfigurationError: a header value with CR/LF.

    """
    redacted = redacted_url or redact_url(url)
    deadline = time.monotonic() + timeout
    extra = [(str(name), str(value)) for name, value in headers]
    for name, value in extra:
        check_header_value(name, value)
    if origin is not None:
        check_header_value("Origin", origin)
    for value in subprotocols:
        check_header_value("Sec-WebSocket-Protocol", value)
    attempt = attempt or ConnectAttempt()
    chain = RedirectChain(url, follow_redirects)
    while True:
        try:
            upgraded = _upgrade(
                chain.url,
                extra,
                subprotocols,
                origin,
                deadline,
                ssl_context,
                proxy,
                proxy_scheme,
                attempt,
                redacted,
                pins,
            )
        except _RedirectedError as redirect:
            was = redacted
            target = chain.follow(redirect.status, redirect.location)
            redacted = redact_url(target)
            if chain.cross_origin:
                extra, subprotocols = public_headers(extra), public_subprotocols(subprotocols)
            log.info(
                "following redirect %d from %s to %s (%d of at most %d%s)",
                redirect.status,
                was,
                redacted,
                chain.hops,
                follow_redirects,
                "; another origin: credentials not sent" if chain.cross_origin else "",
            )
            continue
        upgraded.url, upgraded.redirects = chain.url, chain.hops
        return upgraded


def _upgrade(
    url: str,
    extra: list[tuple[str, str]],
    subprotocols: tuple[str, ...],
    origin: str | None,
    deadline: float,
    ssl_context: ssl.SSLContext | None,
    proxy: tuple[str, int, tuple[str, str] | None] | None,
    proxy_scheme: str,
    attempt: ConnectAttempt,
    redacted: str,
    pins: frozenset[bytes] = frozenset(),
) -> Upgraded:
    """One request of the chain: connect, upgrade; raise :class:`_RedirectedError` on a 3xx."""
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock: socket.socket | None = None
    try:
        sock = _tcp(host, port, proxy, proxy_scheme, deadline, attempt)
        if secure:
            sock = _tls(sock, host, ssl_context, deadline, attempt, pins, redacted)
        key = base64.b64encode(os.urandom(16)).decode()
        request = _request(host, port, secure, resource, key, extra, subprotocols, origin)
        sock.settimeout(_remaining(deadline))
        sock.sendall(request)
        status, reason, response, leftover = _read_head(sock, deadline)
        if status in REDIRECT_STATUSES:
            raise _RedirectedError(status, response.get("location"))
        if status != 101:
            raise _refusal(status, reason, response, leftover, sock, deadline, redacted)
        subprotocol = _validate(response, key, subprotocols, redacted)
        if not attempt.finish():
            raise ConnectFailedError(f"connection attempt to {redacted} aborted", url=redacted)
        return Upgraded(sock, subprotocol, response, leftover)
    except _RedirectedError:
        _close(sock)
        raise
    except ssl.SSLCertVerificationError as exc:
        _close(sock)
        raise TLSVerificationError(
            f"TLS certificate verification failed for {redacted}: {exc.verify_message}", url=redacted
        ) from None
    except ConfigurationError:
        _close(sock)
        raise
    except ConnectFailedError as exc:
        _close(sock)
        if exc.url is not None:
            raise
        raise ConnectFailedError(f"cannot connect to {redacted}: {exc}", url=redacted) from None
    except (OSError, ValueError) as exc:
        _close(sock)
        if attempt.aborted:
            raise ConnectFailedError(f"connection attempt to {redacted} aborted", url=redacted) from None
        raise ConnectFailedError(f"cannot connect to {redacted}: {describe_network_error(exc)}", url=redacted) from None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _tcp(
    host: str,
    port: int,
    proxy: tuple[str, int, tuple[str, str] | None] | None,
    scheme: str,
    deadline: float,
    attempt: ConnectAttempt,
) -> socket.socket:
    if proxy is None:
        sock = socket.create_connection((host, port), timeout=_remaining(deadline))
        attempt.attach(sock)
    elif scheme.startswith("socks"):
        sock = _socks(host, port, proxy, scheme, deadline)
        attempt.attach(sock)
    else:
        sock = socket.create_connection((proxy[0], proxy[1]), timeout=_remaining(deadline))
        attempt.attach(sock)
        _http_tunnel(sock, host, port, proxy[2], deadline)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _http_tunnel(sock: socket.socket, host: str, port: int, auth: tuple[str, str] | None, deadline: float) -> None:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    sock.settimeout(_remaining(deadline))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, reason, _, _ = _read_head(sock, deadline)
    if status != 200:
        raise ConnectFailedError(f"the proxy refused the tunnel: HTTP {status} {reason}"[:200])


def _socks(
    host: str, port: int, proxy: tuple[str, int, tuple[str, str] | None], scheme: str, deadline: float
) -> socket.socket:
    try:
        from python_socks.sync import Proxy  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigurationError("SOCKS proxies need the python-socks package (pip install 'maxsdk[socks]')") from None
    from python_socks import ProxyType  # type: ignore[import-not-found, unused-ignore]

    user, password = proxy[2] if proxy[2] is not None else (None, None)
    kind = ProxyType.SOCKS4 if scheme.startswith("socks4") else ProxyType.SOCKS5
    try:
        client = Proxy.create(
            kind, proxy[0], proxy[1], username=user, password=password, rdns=scheme in ("socks5h", "socks4a")
        )
        sock: socket.socket = client.connect(dest_host=host, dest_port=port, timeout=_remaining(deadline))
    except TimeoutError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-socks' errors: ProxyError, ProxyConnectionError (an OSError)...
        text = str(exc).replace(password, "***") if password else str(exc)
        raise ConnectFailedError(f"SOCKS proxy: {text}"[:200]) from None
    return sock


def _tls(
    sock: socket.socket,
    host: str,
    context: ssl.SSLContext | None,
    deadline: float,
    attempt: ConnectAttempt,
    pins: frozenset[bytes],
    redacted: str,
) -> socket.socket:
    context = context or ssl.create_default_context()
    sock.settimeout(_remaining(deadline))
    wrapped = context.wrap_socket(sock, server_hostname=host)
    attempt.attach(wrapped)
    try:
        check_pins(wrapped, pins, redacted)  # before any byte of the request: no credential leaves
    except CertificatePinError:
        _close(wrapped)
        raise
    return wrapped


def _request(
    host: str,
    port: int,
    secure: bool,
    resource: str,
    key: str,
    extra: list[tuple[str, str]],
    subprotocols: tuple[str, ...],
    origin: str | None,
) -> bytes:
    default_port = 443 if secure else 80
    name = f"[{host}]" if ":" in host else host
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {name}" if port == default_port else f"Host: {name}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")


def _read_head(sock: socket.socket, deadline: float) -> tuple[int, str, dict[str, str], bytes]:
    """Read an HTTP response head within the deadline and the size limits."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buffer) > MAX_HEAD_BYTES:
            raise ConnectFailedError(f"the upgrade response head is larger than {MAX_HEAD_BYTES} bytes")
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(min(16384, MAX_HEAD_BYTES + 4 - len(buffer)))
        if not chunk:
            raise ConnectFailedError("the server closed the connection during the upgrade")
        buffer += chunk
    head, leftover = buffer[:end], buffer[end + 4 :]
    if len(head) > MAX_HEAD_BYTES:
        raise ConnectFailedError(f"the upgrade response head is larger than {MAX_HEAD_BYTES} bytes")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise ConnectFailedError(f"not an HTTP response: {lines[0][:60]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise ConnectFailedError(f"the upgrade response has more than {MAX_HEADERS} headers")
    response: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ConnectFailedError("a malformed header line in the upgrade response")
        name = name.strip().lower()
        value = value.strip()
        response[name] = f"{response[name]}, {value}" if name in response else value
    return int(status_line[1]), status_line[2] if len(status_line) > 2 else "", response, leftover


def _refusal(
    status: int,
    reason: str,
    response: dict[str, str],
    leftover: bytes,
    sock: socket.socket,
    deadline: float,
    redacted: str,
) -> HandshakeError:
    body = _redact_body(_read_body(sock, response, leftover, deadline))
    error_class = AuthenticationError if status in (401, 403) else HandshakeError
    return error_class(status, url=redacted, body=body or reason)


def _read_body(sock: socket.socket, response: dict[str, str], leftover: bytes, deadline: float) -> str:
    """The start of an error response's body, read within the deadline (best effort)."""
    try:
        wanted = min(int(response.get("content-length", "0")), _MAX_BODY)
    except ValueError:
        wanted = 0
    body = leftover[:_MAX_BODY]
    try:
        while len(body) < wanted:
            sock.settimeout(min(_remaining(deadline), 1.0))
            chunk = sock.recv(wanted - len(body))
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    text = body.decode("utf-8", "replace")
    return " ".join(text.split())[:200]  # one line: an HTML page is not dumped as it is


def _redact_body(text: str) -> str:
    """Mask query values a server echoes back (a request line with a token in it)."""
    return _QUERY_VALUE.sub(r"\1***", text)


def _validate(response: dict[str, str], key: str, subprotocols: tuple[str, ...], redacted: str) -> str | None:
    if "websocket" not in response.get("upgrade", "").lower():
        raise HandshakeError(101, url=redacted, body="invalid upgrade response (no Upgrade: websocket)")
    if "upgrade" not in [part.strip().lower() for part in response.get("connection", "").split(",")]:
        raise HandshakeError(101, url=redacted, body="invalid upgrade response (no Connection: Upgrade)")
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    if response.get("sec-websocket-accept", "").strip() != expected:
        raise HandshakeError(101, url=redacted, body="invalid upgrade response (wrong Sec-WebSocket-Accept)")
    if not subprotocols:
        return None
    chosen = response.get("sec-websocket-protocol")
    if chosen is None or chosen.strip().lower() not in [p.lower() for p in subprotocols]:
        raise HandshakeError(101, url=redacted, body="the server did not accept any offered subprotocol")
    return chosen.strip()


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def describe_network_error(exc: BaseException) -> str:
    """A short description of a network exception, without URLs (they may hold secrets)."""
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    text = str(exc) or type(exc).__name__
    if "?" in text or "://" in text:  # never echo a URL that might carry a token
        return type(exc).__name__
    return text
