"""Redirects on the connection's opening request: which ones may be followed, and what a hop leaves behind.

Off by default (``follow_redirects=0``): a 301/302/303/307/308 answer is a
:class:`~maxsdk.errors.HandshakeError` naming the status and the redacted
``Location``. With ``follow_redirects=N`` (the WebSocket upgrade, and the
long-poll session's opening ``GET``), a :class:`RedirectChain` decides each hop:

* **at most N hops**, all within the one ``connect_timeout`` of the attempt;
  a URL seen twice in one attempt is a loop;
* **the scheme never changes**: ``wss`` → ``wss`` and ``ws`` → ``ws`` only
  (``https``/``http`` in a ``Location`` count as ``wss``/``ws``, and the other
  way round for long-poll). ``wss`` → ``ws`` is a downgrade and always refused;
  ``ws`` → ``wss`` is refused too, with a hint to connect to the ``wss://`` URL
  (the first, clear-text request has already carried the credentials);
* a relative ``Location`` is resolved against the current URL; user info and
  fragments in it are dropped;
* the ``Location`` is used **as given**: its query string is the server's,
  our ``params`` are not added again;
* when the **origin** (scheme, host, port) changes, the credentials stay
  behind for the rest of the chain: every user-supplied header (we cannot
  tell which ones carry secrets: ``Authorization``, ``Cookie``, an API key
  header are all dropped) and the ``base64url.bearer.*`` subprotocol (Phoenix's
  ``authToken``). The ``Origin`` header, the permessage-deflate offer and the
  other subprotocols go on.

Everything here is pure (no I/O): the transports call it between attempts.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

from maxsdk.endpoint import redact_url
from maxsdk.errors import HandshakeError

__all__ = [
    "MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "RedirectChain",
    "origin_of",
    "public_headers",
    "public_subprotocols",
]

#: The statuses that redirect (all of them re-issue the GET of the upgrade).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The most hops ``follow_redirects`` may allow.
MAX_REDIRECTS = 20
#: Subprotocols carrying a bearer token (Phoenix's ``base64url.bearer.phx.<token>``).
_SECRET_SUBPROTOCOL = "base64url.bearer."
#: Headers of the protocol itself, kept across origins (lower case): they carry no credentials.
_PROTOCOL_HEADERS = frozenset({"sec-websocket-extensions"})
_SECURE = {"ws": False, "wss": True, "http": False, "https": True}
_DEFAULT_PORT = {False: 80, True: 443}


def origin_of(url: str) -> tuple[bool, str, int]:
    """``(secure, host, port)``: ``ws``/``http`` and ``wss``/``https`` name the same origins."""
    parts = urlsplit(url)
    secure = _SECURE.get(parts.scheme.lower(), False)
    return secure, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORT[secure]


def public_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers that may go to another origin: the protocol's own, none of the user's."""
    return [(name, value) for name, value in headers if name.lower() in _PROTOCOL_HEADERS]


def public_subprotocols(subprotocols: Iterable[str]) -> tuple[str, ...]:
    """The subprotocols that may go to another origin: all but bearer tokens."""
    return tuple(p for p in subprotocols if not p.lower().startswith(_SECRET_SUBPROTOCOL))


class RedirectChain:
    """The redirects of one connection attempt: call :meth:`follow` for each 3xx answer.

    Args:
        url: the URL of the first request.
        limit: the most hops to follow (``0``: refuse every redirect).
        schemes: the URL schemes of the transport, plain then secure
            (``("ws", "wss")`` or ``("http", "https")``).

    Attributes:
        url: the URL to request now (the last hop's target).
        hops: how many redirects were followed.
        cross_origin: the chain has left the first URL's origin (credentials
            must stay behind from then on).

    """

    def __init__(self, url: str, limit: int, *, schemes: tuple[str, str] = ("ws", "wss")) -> None:
        self.url = url
        self.limit = limit
        self.hops = 0
        self.cross_origin = False
        self._schemes = schemes
        self._seen = {_key(url)}

    def follow(self, status: int, location: str | None) -> str:
        """The next URL after a ``status`` answer with ``location``; raise if it must not be followed.

        Raises:
            HandshakeError: redirects are off, the ``Location`` is missing or
                not a URL of this transport, changes the scheme, loops, or is
                one hop too many. The message names the redacted URLs only.

        """
        here = redact_url(self.url)
        if not location:
            raise HandshakeError(status, url=here, body="redirect without a Location header")
        target = self._resolve(status, location)
        shown = redact_url(target)
        if self.limit == 0:
            raise HandshakeError(status, url=here, body=f"redirect to {shown} (not followed: follow_redirects is 0)")
        secure_here, secure_there = origin_of(self.url)[0], origin_of(target)[0]
        if secure_here and not secure_there:
            raise HandshakeError(status, url=here, body=f"redirect to {shown} refused: a downgrade to clear text")
        if secure_there and not secure_here:
            raise HandshakeError(
                status, url=here, body=f"redirect to {shown} not followed: it changes the scheme (use that URL)"
            )
        if self.hops >= self.limit:
            raise HandshakeError(status, url=here, body=f"more than {self.limit} redirects (the last to {shown})")
        key = _key(target)
        if key in self._seen:
            raise HandshakeError(status, url=here, body=f"redirect loop (back to {shown})")
        self._seen.add(key)
        self.hops += 1
        if origin_of(target) != origin_of(self.url):
            self.cross_origin = True
        self.url = target
        return target

    def _resolve(self, status: int, location: str) -> str:
        """``location`` as an absolute URL of this transport's schemes, without user info or fragment."""
        plain, secure = self._schemes
        base = urlsplit(self.url)
        # urljoin resolves against http(s) bases everywhere: join on the web form, then map back.
        web_base = urlunsplit(("https" if _SECURE.get(base.scheme.lower()) else "http", *base[1:]))
        try:
            joined = urlsplit(urljoin(web_base, location.strip()))
            port = joined.port
        except ValueError:
            raise HandshakeError(status, url=redact_url(self.url), body="redirect to an invalid Location") from None
        scheme = joined.scheme.lower()
        if scheme not in _SECURE or not joined.hostname:
            raise HandshakeError(
                status, url=redact_url(self.url), body=f"redirect to a non-{plain} URL ({scheme or 'no scheme'})"
            )
        host = joined.hostname
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        return urlunsplit((secure if _SECURE[scheme] else plain, netloc, joined.path or "/", joined.query, ""))


def _key(url: str) -> str:
    """What makes two URLs of a chain the same request (for loop detection)."""
    parts = urlsplit(url)
    secure, host, port = origin_of(url)
    return f"{secure}|{host}|{port}|{parts.path or '/'}|{parts.query}"
