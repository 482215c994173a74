"""Client settings: defaults, validation and coercion, in one place.

:class:`ClientConfig` is an immutable value built from :class:`~maxsdk.Client`'s
keyword arguments. Durations are float seconds; ``None`` disables a feature.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union
from urllib.parse import urlsplit

from maxsdk.endpoint import websocket_endpoint
from maxsdk.errors import ConfigurationError
from maxsdk.protocol.backoff import Backoff
from maxsdk.tls import TLSConfig

if TYPE_CHECKING:
    from maxsdk._runtime.deflate import Deflate

__all__ = [
    "DEFAULT_FATAL_STATUSES",
    "ClientConfig",
    "EndpointsLike",
    "ParamsLike",
    "check_seconds",
    "endpoint_list",
    "make_ssl_context",
]

#: Params: a mapping, or a zero-argument callable returning one (evaluated per attempt).
ParamsLike = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]], None]
#: A secret: a string, or a callable returning one (evaluated per attempt).
SecretLike = Union[str, Callable[[], str], None]

#: Endpoints: one URL, several (the preferred first), or a callable returning either (per attempt).
EndpointsLike = Union[str, Sequence[str], Callable[[], Union[str, Sequence[str]]]]

#: Upgrade statuses that retrying cannot fix (after one retry with fresh credentials for 401/403).
DEFAULT_FATAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410})
_OVERFLOW = ("drop_oldest", "drop_newest", "block")


@dataclass(frozen=True)
class ClientConfig:
    """Validated client settings (see :class:`maxsdk.Client` for each option)."""

    url: str
    params: ParamsLike = None
    headers: Any = None
    auth_token: SecretLike = None
    vsn: str = "2.0.0"
    timeout: float = 10.0
    connect_timeout: float = 10.0
    heartbeat_interval: float | None = 30.0
    heartbeat_timeout: float | None = None
    reconnect: Backoff = field(default_factory=Backoff.phoenix_reconnect)
    rejoin: Backoff = field(default_factory=Backoff.phoenix_rejoin)
    reconnect_on_normal_close: bool = False
    reconnect_on_going_away: bool = True
    fatal_statuses: frozenset[int] = DEFAULT_FATAL_STATUSES
    max_message_size: int | None = 8 * 1024 * 1024
    max_pending: int | None = 100_000
    dispatch_queue_size: int = 10_000
    dispatch_total_size: int = 50_000
    max_channels_per_socket: int | None = 100
    overflow: str = "block"
    offline: str = "wait"
    verify_tls: bool = True
    ca_file: str | None = None
    ssl_context: ssl.SSLContext | None = None
    tls: TLSConfig | None = None
    origin: str | None = None
    proxy: str | None = None
    close_timeout: float = 2.0
    transport: str = "websocket"
    longpoll_fallback_after: float | None = None
    name: str | None = None
    rng: Callable[[], float] | None = None
    #: Every endpoint, the preferred (``url``) first; more than one enables failover.
    endpoints: tuple[str, ...] = ()
    #: A callable giving the endpoints on every connection attempt (service discovery).
    endpoint_source: Callable[[], str | Sequence[str]] | None = None
    failback_after: float | None = 30.0
    #: permessage-deflate to offer (``None``: off); see :class:`maxsdk.Deflate`.
    compression: Deflate | None = None
    #: The most redirects followed on the opening request (``0``: refused).
    follow_redirects: int = 0

    @property
    def failover(self) -> bool:
        """Whether there is more than one endpoint to choose from."""
        return self.endpoint_source is not None or len(self.endpoints) > 1

    @classmethod
    def build(cls, url: EndpointsLike, **options: Any) -> ClientConfig:
        """Validate and coerce user options into a config.

        Raises:
            ConfigurationError: an option has a wrong type or value.

        """
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"unknown option(s): {', '.join(sorted(unknown))}")
        if "compression" in options:
            from maxsdk._runtime.deflate import Deflate as _Deflate

            options["compression"] = _Deflate.coerce(options["compression"])
        if callable(url):
            options["endpoint_source"] = url
        endpoints = endpoint_list(url() if callable(url) else url)
        url = endpoints[0]
        options["endpoints"] = tuple(endpoints)
        if "heartbeat_interval" in options:
            options["heartbeat_interval"] = interval_option("heartbeat_interval", options["heartbeat_interval"], 30.0)
        options["reconnect"] = Backoff.coerce(options.get("reconnect"), default=Backoff.phoenix_reconnect())
        options["rejoin"] = Backoff.coerce(options.get("rejoin"), default=Backoff.phoenix_rejoin())
        if "fatal_statuses" in options:
            options["fatal_statuses"] = _fatal_statuses(options["fatal_statuses"])
        config = cls(url=url, **options)
        config._validate()
        return config

    def _validate(self) -> None:
        for name in ("timeout", "connect_timeout", "close_timeout"):
            _positive(name, getattr(self, name))
        for name in ("heartbeat_interval", "heartbeat_timeout"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.vsn not in ("2.0.0", "1.0.0"):
            raise ConfigurationError(f"vsn must be '2.0.0' or '1.0.0', got {self.vsn!r}")
        if self.params is not None and not (isinstance(self.params, Mapping) or callable(self.params)):
            raise ConfigurationError("params must be a mapping or a callable returning one")
        if self.headers is not None and not (isinstance(self.headers, Mapping) or callable(self.headers)):
            raise ConfigurationError("headers must be a mapping or a callable returning one")
        if self.auth_token is not None and not (isinstance(self.auth_token, str) or callable(self.auth_token)):
            raise ConfigurationError("auth_token must be a string or a callable returning one")
        if self.transport not in ("websocket", "longpoll", "auto"):
            raise ConfigurationError("transport must be 'websocket', 'longpoll' or 'auto'")
        if self.failback_after is not None:
            _positive("failback_after", self.failback_after)
        if self.longpoll_fallback_after is not None:
            _positive("longpoll_fallback_after", self.longpoll_fallback_after)
        if self.offline not in ("wait", "raise"):
            raise ConfigurationError("offline must be 'wait' or 'raise'")
        if self.overflow not in _OVERFLOW:
            raise ConfigurationError(f"overflow must be one of {', '.join(_OVERFLOW)}")
        for name in ("dispatch_queue_size", "dispatch_total_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int")
        for name in ("max_message_size", "max_pending", "max_channels_per_socket"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigurationError(f"{name} must be a positive int or None")
        for name in ("verify_tls", "reconnect_on_normal_close", "reconnect_on_going_away"):
            _check_bool(name, getattr(self, name))
        for name in ("origin", "name"):
            _check_optional_str(name, getattr(self, name))
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigurationError(f"ssl_context must be an ssl.SSLContext, got {type(self.ssl_context).__name__}")
        if self.ca_file is not None:
            _check_ca_file(self.ca_file)
        if self.tls is not None:
            if not isinstance(self.tls, TLSConfig):
                raise ConfigurationError(f"tls must be a maxsdk.TLSConfig, got {type(self.tls).__name__}")
            if not self.verify_tls or self.ca_file is not None or self.ssl_context is not None:
                raise ConfigurationError(
                    "tls= replaces verify_tls, ca_file and ssl_context: give them inside the TLSConfig instead"
                )
        if self.proxy is not None:
            _check_proxy(self.proxy, self.transport)
        _check_follow_redirects(self.follow_redirects)
        self._validate_header_values()

    def _validate_header_values(self) -> None:
        """Refuse CR/LF in static header values (callables are checked on every connection attempt).

        ``auth_token`` needs no check: it travels base64-encoded in the subprotocol.
        """
        from maxsdk._runtime.handshake import check_header_value

        if isinstance(self.headers, Mapping):
            for name, value in self.headers.items():
                check_header_value(str(name), str(value))
        if self.origin is not None:
            check_header_value("Origin", self.origin)

    def __repr__(self) -> str:
        from maxsdk.endpoint import redact_url

        return f"ClientConfig(url={redact_url(self.url)!r}, vsn={self.vsn!r}, timeout={self.timeout:g})"


def interval_option(name: str, value: Any, default: float) -> float | None:
    """A public heartbeat/ping interval: ``None`` = the default, ``0`` or ``False`` = off (``None`` inside).

    Raises:
        ConfigurationError: not ``None``, ``False``, ``0`` or a positive number.

    """
    if value is None:
        return default
    if value is False or (type(value) in (int, float) and value == 0):
        return None
    _positive(name, value)
    return float(value)


def endpoint_list(value: Any) -> list[str]:
    """Validate one endpoint or a sequence of them; return them as a list (the preferred first).

    Raises:
        ConfigurationError: no endpoint, or one that is not a ws/wss/http/https URL.

    """
    urls = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not urls:
        raise ConfigurationError("url must be an endpoint URL, a non-empty list of them, or a callable returning one")
    for url in urls:
        websocket_endpoint(url)  # validates each URL early
    return urls


def check_seconds(name: str, value: Any) -> float:
    """``value`` as float seconds: a finite number above 0 (not a bool, not NaN, not infinity).

    Raises:
        ConfigurationError: anything else, naming ``name`` and the value.

    """
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not value > 0  # NaN fails too
        or not math.isfinite(value)  # threading waits overflow on inf; None means "no limit" where allowed
    ):
        raise ConfigurationError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _positive(name: str, value: Any) -> None:
    check_seconds(name, value)


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")


def _check_optional_str(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{name} must be a non-empty string or None, got {type(value).__name__}")


def _check_follow_redirects(value: Any) -> None:
    """A number of hops: ``True`` is refused (how many would it be?), like any non-int."""
    from maxsdk._runtime.redirects import MAX_REDIRECTS

    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_REDIRECTS:
        raise ConfigurationError(
            f"follow_redirects must be a number of redirects from 0 (refuse them) to {MAX_REDIRECTS}, got {value!r}"
        )


def _check_ca_file(value: Any) -> None:
    """The CA bundle must be a readable PEM file now, not a FileNotFoundError in the reader later."""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"ca_file must be a path to a PEM file, got {type(value).__name__}")
    if not os.path.isfile(value):
        raise ConfigurationError(f"ca_file {os.fspath(value)!r} is not a file")
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"ca_file {os.fspath(value)!r} cannot be loaded: {exc}") from None


def _fatal_statuses(value: Any) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        raise ConfigurationError("fatal_statuses must be a collection of HTTP status codes")
    if not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in value):
        raise ConfigurationError(
            f"fatal_statuses must hold HTTP status codes (100-599), got {sorted(value, key=str)!r}"
        )
    return frozenset(value)


def tls_verifies(config: ClientConfig) -> bool:
    """Whether the client verifies server certificates."""
    return config.tls.verify if config.tls is not None else config.verify_tls


def tls_pins(config: ClientConfig) -> frozenset[bytes]:
    """The SPKI pins the server's certificate must match (empty: none)."""
    return config.tls.pin_digests if config.tls is not None else frozenset()


def make_ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """The TLS context for ``wss://``: verified, TLS 1.2 or newer, unless the user opted out."""
    if config.tls is not None:
        return config.tls.context()
    if config.ssl_context is not None:
        return config.ssl_context
    context = ssl.create_default_context(cafile=config.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


#: Proxy URL schemes: an HTTP CONNECT proxy, or SOCKS (``socks5h``/``socks4a``: the proxy resolves the host name).
PROXY_SCHEMES = ("http", "socks5", "socks5h", "socks4", "socks4a")


def _check_proxy(proxy: str, transport: str) -> None:
    """Refuse a proxy URL we cannot use, and a SOCKS proxy whose libraries are missing, at construction."""
    parts = urlsplit(proxy)
    if parts.scheme not in (*PROXY_SCHEMES, "") or not parts.hostname:
        raise ConfigurationError("proxy must look like http://host:port or socks5://host:port")
    if not parts.scheme.startswith("socks"):
        return
    import importlib.util

    # websocket-client speaks SOCKS through python-socks; requests (long-poll) through PySocks.
    needed = {"websocket": ["python_socks"], "longpoll": ["socks"]}.get(transport, ["python_socks", "socks"])
    if any(importlib.util.find_spec(module) is None for module in needed):
        raise ConfigurationError("SOCKS proxies need the socks extra: pip install 'maxsdk[socks]'")
