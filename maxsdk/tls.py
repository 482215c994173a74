"""One TLS configuration for every connection a client makes: pins, client certificates, CAs.

A :class:`TLSConfig` is a value: give the same one to a :class:`~maxsdk.Client`
(``tls=``; it serves the WebSocket and the long-poll transports) and to a
:class:`~maxsdk.TokenProvider` (``tls=``; its token endpoint), and the three
sides verify, pin and authenticate alike::

    tls = maxsdk.TLSConfig(
        ca_file="internal-ca.pem",
        client_cert="client.pem", client_key="client.key", key_password=read_secret(),
        pins=["sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",   # the current key
              "sha256/Y9mvm0exBk1JoQ57f9Vm28jKo5lFm/woKcVxrYxu80o="],  # the next one
    )
    client = maxsdk.Client("wss://rt.example.com/socket", tls=tls)

**Pins** are SHA-256 digests of the server certificate's SubjectPublicKeyInfo
(the form HPKP used: ``openssl x509 -pubkey -noout -in cert.pem | openssl pkey
-pubin -outform der | openssl dgst -sha256 -binary | base64``), written
``sha256/<base64>``; :func:`certificate_pin` computes one from a certificate.
The **leaf** certificate is checked, after the normal verification (CA,
hostname, dates: pinning adds to it, it does not replace it), right after the
TLS handshake and **before any byte of the HTTP request is sent**, so no
credential reaches a server whose key does not match. Any one pin matching is
enough: list the current key and the next one to rotate without an outage. A
mismatch is a :class:`~maxsdk.CertificatePinError`, fatal like any failed
verification (the client does not retry it). Through an HTTP or SOCKS proxy
the pin concerns the origin server, never the proxy.

**Client certificates** (mutual TLS): ``client_cert`` (PEM, may hold the key
too), ``client_key`` and ``key_password``. The password is a secret: it is
never logged and never shown in a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from maxsdk.errors import CertificatePinError, ConfigurationError

__all__ = ["TLSConfig", "certificate_pin", "check_pins", "spki_sha256"]

_PREFIX = "sha256/"


@dataclass(frozen=True, repr=False)
class TLSConfig:
    """TLS settings shared by the WebSocket, long-poll and token-endpoint connections.

    Attributes:
        ca_file: a PEM bundle of CAs to verify the server against (default: the system's).
        verify: verify the server's certificate and hostname (default ``True``;
            turning it off is for local experiments and logs a warning).
        client_cert: a PEM client certificate for mutual TLS (may also hold its key).
        client_key: the client certificate's private key (PEM), if not in ``client_cert``.
        key_password: the password of an encrypted ``client_key`` (never logged or shown).
        pins: ``"sha256/<base64>"`` SPKI pins of the server's certificate; any
            one matching is enough. Empty: no pinning.
        ssl_context: a ready ``ssl.SSLContext`` used as it is instead of
            ``ca_file``/``verify``/client certificate (pins still apply).

    Every value is checked when the object is made: files must load, pins
    must be well formed (:class:`~maxsdk.ConfigurationError` otherwise).

    """

    ca_file: str | None = None
    verify: bool = True
    client_cert: str | None = None
    client_key: str | None = None
    key_password: str | None = field(default=None, compare=False)
    pins: tuple[str, ...] = ()
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    _digests: frozenset[bytes] = field(default=frozenset(), init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.verify, bool):
            raise ConfigurationError(f"verify must be True or False, got {type(self.verify).__name__}")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigurationError(f"ssl_context must be an ssl.SSLContext, got {type(self.ssl_context).__name__}")
        for name in ("ca_file", "client_cert", "client_key"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (str, os.PathLike)) and os.path.isfile(value)):
                raise ConfigurationError(f"{name} must be the path of a PEM file, got {_show(value)}")
        if self.key_password is not None and not isinstance(self.key_password, (str, bytes)):
            raise ConfigurationError(f"key_password must be a string, got {type(self.key_password).__name__}")
        if self.client_key is not None and self.client_cert is None:
            raise ConfigurationError("client_key needs client_cert (the certificate it belongs to)")
        if self.ssl_context is not None and (self.ca_file or self.client_cert or not self.verify):
            raise ConfigurationError(
                "ssl_context replaces ca_file, verify and client_cert: give either the context or those options"
            )
        pins = (self.pins,) if isinstance(self.pins, str) else self.pins
        if not isinstance(pins, Iterable):
            raise ConfigurationError(f"pins must be a list of 'sha256/<base64>' strings, got {_show(self.pins)}")
        pins = tuple(pins)
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "_digests", frozenset(_parse_pin(pin) for pin in pins))
        self.context()  # the CA bundle and the client certificate load now, not in the reader later

    def __repr__(self) -> str:
        shown = [f"verify={self.verify}"]
        for name in ("ca_file", "client_cert", "client_key"):
            if getattr(self, name) is not None:
                shown.append(f"{name}={getattr(self, name)!r}")
        if self.key_password is not None:
            shown.append("key_password='***'")
        if self.pins:
            shown.append(f"pins={list(self.pins)!r}")
        if self.ssl_context is not None:
            shown.append("ssl_context=<SSLContext>")
        return f"TLSConfig({', '.join(shown)})"

    @property
    def pin_digests(self) -> frozenset[bytes]:
        """The pins as raw 32-byte SHA-256 digests (empty: no pinning)."""
        return self._digests

    def context(self) -> ssl.SSLContext:
        """A new ``ssl.SSLContext`` with these settings (TLS 1.2 or newer), or the one given."""
        if self.ssl_context is not None:
            return self.ssl_context
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigurationError(f"ca_file {os.fspath(self.ca_file or '')!r} cannot be loaded: {exc}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert is not None:
            try:
                context.load_cert_chain(self.client_cert, self.client_key, self.key_password)
            except (OSError, ssl.SSLError, ValueError) as exc:
                # The message names the files, never the password.
                reason = getattr(exc, "reason", None) or type(exc).__name__
                raise ConfigurationError(
                    f"the client certificate {os.fspath(self.client_cert)!r} cannot be loaded"
                    f"{' with its key ' + repr(os.fspath(self.client_key)) if self.client_key else ''}: {reason}"
                    " (a wrong key_password, a key that does not match, or not PEM)"
                ) from None
        return context


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, (str, os.PathLike)) else type(value).__name__


def _parse_pin(pin: Any) -> bytes:
    if not isinstance(pin, str) or not pin.startswith(_PREFIX):
        raise ConfigurationError(f"a pin must be a 'sha256/<base64 of 32 bytes>' string, got {_show(pin)}")
    try:
        digest = base64.b64decode(pin[len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise ConfigurationError(f"a pin must be a 'sha256/<base64 of 32 bytes>' string, got {pin!r}")
    return digest


# -- SubjectPublicKeyInfo out of a DER certificate ----------------------------------------


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """The tag, the start of the content and the end of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER element")
    tag, length = der[pos], der[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or start + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError("truncated DER element")
    return tag, start, end


def spki_sha256(der: bytes) -> bytes:
    """SHA-256 of the SubjectPublicKeyInfo of a DER (X.509) certificate.

    Certificate = SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    serialNumber, signature, issuer, validity, subject,
    subjectPublicKeyInfo, ... }, ... } (RFC 5280 §4.1).
    """
    tag, start, _ = _tlv(der, 0)
    if tag != 0x30:
        raise ValueError("not a DER certificate")
    tag, pos, tbs_end = _tlv(der, start)
    if tag != 0x30:
        raise ValueError("not a DER certificate")
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:  # explicit version
        pos = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, pos = _tlv(der, pos)
    tag, _, end = _tlv(der, pos)
    if tag != 0x30 or end > tbs_end:
        raise ValueError("no SubjectPublicKeyInfo in the certificate")
    return hashlib.sha256(der[pos:end]).digest()


def certificate_pin(certificate: bytes | str) -> str:
    """The ``"sha256/<base64>"`` pin of a certificate, given as DER bytes or PEM text."""
    if isinstance(certificate, str):
        certificate = ssl.PEM_cert_to_DER_cert(certificate)
    return _PREFIX + base64.b64encode(spki_sha256(certificate)).decode()


def check_pins(sock: ssl.SSLSocket | ssl.SSLObject, digests: frozenset[bytes], url: str) -> None:
    """Raise :class:`~maxsdk.CertificatePinError` unless the peer's leaf key matches a pin.

    ``url`` must be redacted already. Called after the handshake, before any request byte.
    """
    if not digests:
        return
    der = sock.getpeercert(binary_form=True)
    seen = None
    if der:
        try:
            seen = spki_sha256(der)
        except ValueError:
            seen = None
    if seen is not None and seen in digests:
        return
    expected = sorted(_PREFIX + base64.b64encode(d).decode() for d in digests)
    shown = _PREFIX + base64.b64encode(seen).decode() if seen is not None else "no readable certificate"
    raise CertificatePinError(
        f"the server certificate of {url} matches none of the pins: it has {shown}, expected one of "
        f"{', '.join(expected)}",
        url=url,
        seen=shown,
        expected=tuple(expected),
    )
