"""requests/urllib3 with maxsdk's TLS: our ``ssl.SSLContext`` decides, and pins are checked before a request.

Used by the long-poll transport and by the token endpoint, so both verify,
authenticate (client certificates) and pin exactly as the WebSocket does.
"""

from __future__ import annotations

import ssl
from typing import Any, ClassVar, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from maxsdk.errors import CertificatePinError
from maxsdk.tls import check_pins

__all__ = ["ContextAdapter", "PinnedHTTPSConnection", "find_cause", "pinned_https_pool"]

_CERT_REQS = {ssl.CERT_NONE: "CERT_NONE", ssl.CERT_OPTIONAL: "CERT_OPTIONAL", ssl.CERT_REQUIRED: "CERT_REQUIRED"}


class PinnedHTTPSConnection(HTTPSConnection):
    """An ``https://`` connection whose server key must match ``pins`` before a byte is sent."""

    pins: ClassVar[frozenset[bytes]] = frozenset()
    redacted: ClassVar[str] = ""

    def connect(self) -> None:
        """Connect (TLS included), then check the pins: a mismatch closes it and raises."""
        super().connect()
        if self.pins:
            try:
                check_pins(self.sock, self.pins, self.redacted)  # type: ignore[arg-type]
            except CertificatePinError:
                self.close()
                raise


def pinned_https_pool(
    pins: frozenset[bytes],
    redacted: str,
    bases: tuple[type, ...] = (),
    pool: type[HTTPConnectionPool] = HTTPSConnectionPool,
) -> type[HTTPConnectionPool]:
    """A pool class whose connections are :class:`PinnedHTTPSConnection` (plus ``bases``, first)."""
    connection = type("PinnedConnection", (*bases, PinnedHTTPSConnection), {"pins": pins, "redacted": redacted})
    return type("PinnedPool", (pool,), {"ConnectionCls": connection})


class ContextAdapter(HTTPAdapter):
    """An adapter where our ``ssl.SSLContext`` decides (CA, verification, TLS >= 1.2, client certificate).

    Subclasses may give their own pool classes (:meth:`pool_classes`); by
    default ``https`` connections are pinned when ``pins`` is not empty.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext | None, pins: frozenset[bytes] = frozenset(), redacted: str = ""
    ) -> None:
        self._ssl_context = ssl_context
        self._pins = pins
        self._redacted = redacted
        super().__init__(max_retries=0)

    def pool_classes(self, *, socks: bool = False) -> dict[str, type[HTTPConnectionPool]] | None:
        """The pool classes by scheme (``None``: urllib3's own)."""
        if not self._pins:
            return None
        if socks:
            from urllib3.contrib import socks as urllib3_socks  # needs PySocks (the socks extra)

            return {
                "http": urllib3_socks.SOCKSHTTPConnectionPool,
                "https": pinned_https_pool(
                    self._pins,
                    self._redacted,
                    bases=(urllib3_socks.SOCKSHTTPSConnection,),
                    pool=urllib3_socks.SOCKSHTTPSConnectionPool,
                ),
            }
        return {"http": HTTPConnectionPool, "https": pinned_https_pool(self._pins, self._redacted)}

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        if self._ssl_context is not None:
            pool_kwargs["ssl_context"] = self._ssl_context  # requests < 2.32.2 has no per-request hook below
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        classes = self.pool_classes()
        if classes is not None:
            self.poolmanager.pool_classes_by_scheme = classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if self._ssl_context is not None:
            proxy_kwargs["ssl_context"] = self._ssl_context
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        classes = self.pool_classes(socks=proxy.lower().startswith("socks"))
        if classes is not None:
            manager.pool_classes_by_scheme = classes
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host_params, kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs = cast("dict[str, Any]", kwargs)
        context = self._ssl_context
        if context is not None and host_params.get("scheme") == "https":
            # Our context decides; requests' verify/CA bundle do not.
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["ssl_context"] = context
            pool_kwargs["cert_reqs"] = _CERT_REQS[context.verify_mode]
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would set the pool's verification from ``verify`` (and load its CA
        # bundle into our context): with a context of ours, the context alone decides.
        context = self._ssl_context
        if context is None or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            return
        conn.cert_reqs = _CERT_REQS[context.verify_mode]
        conn.ca_certs = None
        conn.ca_cert_dir = None


def find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` among ``exc``, its causes, contexts and wrapped reasons."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen or len(seen) > 20:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return item
        stack.extend((item.__cause__, item.__context__, getattr(item, "reason", None), *item.args))
    return None
