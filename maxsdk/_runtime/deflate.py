"""permessage-deflate (RFC 7692): the offer, the server's answer, and the per-message codec.

Off by default; ``Client(compression=True)`` (or a :class:`Deflate` value)
offers it in the upgrade and uses it only if the server accepts (Phoenix does
with ``compress: true``; our embedded server does not, so nothing changes).

Bounded decompression: a compressed message is inflated with a cap of
``max_message_size + 1`` output bytes (``zlib``'s ``max_length``), so one that
would inflate past the limit is refused after at most that much work and
memory, whatever its ratio: a "zip bomb" costs nothing. With the server's
context takeover the refused message leaves the shared window unusable, so
the connection is then closed with 1009 (message too big); without it
(``server_no_context_takeover``) the message is skipped, reported, and the
connection carries on.

Context takeover (RFC 7692 §7.1.1): by default both sides keep their LZ77
window between messages (better ratio); ``client_no_context_takeover`` makes
us reset ours after each message (less memory held per connection, as many
servers ask), ``server_no_context_takeover`` asks the server to do the same;
``client_max_window_bits`` / ``server_max_window_bits`` (8-15) bound the
windows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from maxsdk.errors import ConfigurationError, MessageTooLargeError, RemoteProtocolError

__all__ = ["Deflate", "DeflateSession", "negotiate"]

EXTENSION = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.1: removed after compressing, put back before inflating


@dataclass(frozen=True)
class Deflate:
    """permessage-deflate settings (what the client offers).

    Attributes:
        client_no_context_takeover: reset our compressor after every message.
        server_no_context_takeover: ask the server to reset its compressor after every message.
        client_max_window_bits: our LZ77 window (9-15; ``None``: 15, and the server may lower it).
        server_max_window_bits: ask the server for at most this window (8-15; ``None``: its choice).
        min_size: messages shorter than this many bytes are sent uncompressed.
        level: zlib compression level (1 fastest ... 9 smallest; default 6).

    """

    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    client_max_window_bits: int | None = None
    server_max_window_bits: int | None = None
    min_size: int = 64
    level: int = 6

    def __post_init__(self) -> None:
        # zlib cannot compress with an 8-bit raw window, so ours is at least 9 bits.
        for name, lowest in (("client_max_window_bits", 9), ("server_max_window_bits", 8)):
            bits = getattr(self, name)
            if bits is not None and (type(bits) is not int or not lowest <= bits <= 15):
                raise ConfigurationError(f"{name} must be an int from {lowest} to 15, or None")
        if type(self.min_size) is not int or self.min_size < 0:
            raise ConfigurationError("min_size must be an int >= 0")
        if type(self.level) is not int or not 0 <= self.level <= 9:
            raise ConfigurationError("level must be an int from 0 to 9")

    @classmethod
    def coerce(cls, value: object) -> Deflate | None:
        """``False``/``None`` (off), ``True`` (the defaults) or a :class:`Deflate`."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        raise ConfigurationError("compression must be True, False or a maxsdk.Deflate")

    def offer(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value of the upgrade request."""
        params = [EXTENSION]
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        # A bare client_max_window_bits tells the server it may lower our window (§7.1.2.2).
        params.append(
            "client_max_window_bits"
            if self.client_max_window_bits is None
            else f"client_max_window_bits={self.client_max_window_bits}"
        )
        if self.server_max_window_bits is not None:
            params.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(params)


def negotiate(settings: Deflate, response: str | None) -> DeflateSession | None:
    """The codec for what the server answered (``None``: it declined).

    Raises:
        RemoteProtocolError: the server answered with an extension or a
            parameter we did not offer, or an invalid value (RFC 7692 §5-§7).

    """
    if not response:
        return None
    offers = [item.strip() for item in response.split(",") if item.strip()]
    if len(offers) != 1:
        raise RemoteProtocolError(f"unexpected Sec-WebSocket-Extensions: {response[:200]!r}")
    parts = [part.strip() for part in offers[0].split(";")]
    if parts[0].lower() != EXTENSION:
        raise RemoteProtocolError(f"the server accepted an extension we did not offer: {parts[0][:100]!r}")
    client_no_takeover = settings.client_no_context_takeover
    server_no_takeover = False
    client_bits = settings.client_max_window_bits or 15
    server_bits = 15
    seen: set[str] = set()
    for part in parts[1:]:
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if name in seen:
            raise RemoteProtocolError(f"duplicate permessage-deflate parameter {name!r}")
        seen.add(name)
        if name == "server_no_context_takeover" and not value:
            server_no_takeover = True
        elif name == "client_no_context_takeover" and not value:
            client_no_takeover = True
        elif name == "server_max_window_bits":
            server_bits = _window_bits(value, settings.server_max_window_bits)
        elif name == "client_max_window_bits":
            client_bits = min(client_bits, _window_bits(value, None))
            if client_bits < 9:
                raise RemoteProtocolError("the server asked for an 8-bit client window, which zlib cannot produce")
        else:
            raise RemoteProtocolError(f"invalid permessage-deflate parameter {part[:100]!r}")
    if settings.server_no_context_takeover and not server_no_takeover:
        raise RemoteProtocolError("the server ignored server_no_context_takeover")
    return DeflateSession(
        client_no_context_takeover=client_no_takeover,
        server_no_context_takeover=server_no_takeover,
        client_max_window_bits=client_bits,
        server_max_window_bits=server_bits,
        min_size=settings.min_size,
        level=settings.level,
    )


def _window_bits(value: str, at_most: int | None) -> int:
    if not value.isdigit() or not 8 <= int(value) <= 15:
        raise RemoteProtocolError(f"invalid window bits {value[:20]!r}")
    bits = int(value)
    if at_most is not None and bits > at_most:
        raise RemoteProtocolError(f"the server chose a window of {bits} bits, above the {at_most} we asked for")
    return bits


class DeflateSession:
    """The negotiated codec of one connection (compress on senders, inflate on the reader)."""

    def __init__(
        self,
        *,
        client_no_context_takeover: bool,
        server_no_context_takeover: bool,
        client_max_window_bits: int,
        server_max_window_bits: int,
        min_size: int,
        level: int,
    ) -> None:
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self._client_bits = client_max_window_bits
        self._server_bits = server_max_window_bits
        self.min_size = min_size
        self._level = level
        self._compressor = self._new_compressor()
        self._decompressor = zlib.decompressobj(-self._server_bits)
        #: Bytes before and after compression, for stats and benchmarks.
        self.raw_out = self.compressed_out = 0

    def _new_compressor(self) -> zlib._Compress:
        return zlib.compressobj(self._level, zlib.DEFLATED, -self._client_bits)

    def compress(self, data: bytes) -> bytes:
        """One message's compressed payload (sent with RSV1 set). Callers serialize sends."""
        compressed = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if compressed.endswith(_TAIL):
            compressed = compressed[:-4]
        if self.client_no_context_takeover:
            self._compressor = self._new_compressor()
        self.raw_out += len(data)
        self.compressed_out += len(compressed)
        return compressed

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        """Inflate one message, producing at most ``limit`` bytes.

        Raises:
            MessageTooLargeError: it inflates past ``limit`` (after at most
                ``limit + 1`` bytes of work); :attr:`usable` says whether the
                connection can go on.
            RemoteProtocolError: not a valid deflate stream.

        """
        decompressor = self._decompressor
        try:
            if limit is None:
                message = decompressor.decompress(data + _TAIL)
            else:
                message = decompressor.decompress(data + _TAIL, limit + 1)
                if len(message) > limit or decompressor.unconsumed_tail:
                    self._after_refusal()
                    raise MessageTooLargeError(max(len(message), limit + 1), limit)
        except zlib.error as exc:
            self.usable = False
            raise RemoteProtocolError(f"invalid compressed message: {exc}") from None
        if self.server_no_context_takeover:
            self._decompressor = zlib.decompressobj(-self._server_bits)
        return message

    #: False once the shared window is lost (the connection must close with 1009).
    usable = True

    def _after_refusal(self) -> None:
        if self.server_no_context_takeover:
            self._decompressor = zlib.decompressobj(-self._server_bits)  # the next message starts afresh
        else:
            self.usable = False
