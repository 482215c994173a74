"""JsonClient: a blocking client for JSON topic feeds, configured rather than coded.

Exchange, market-data and IoT feeds that speak ``{"op": "subscribe", "args": [...]}``
and push ``{"topic": ..., "data": ...}`` work with a :class:`~maxsdk.JsonFormat`
naming their fields and operations::

    fmt = maxsdk.JsonFormat(id_field="req_id", topic_field="channel")
    with maxsdk.JsonClient("wss://feed.example/ws", format=fmt, auth={"key": k}) as feed:
        feed.subscribe("trades.BTC-USD", lambda data: print(data))
        print(feed.request("time"))

It is a :class:`~maxsdk.ProtocolClient` with the
:class:`~maxsdk.protocol.jsonfeed.JsonFeedProtocol` handler: request/reply
correlation by id, shared subscriptions resubscribed in batches after every
reconnect, application-level ping/pong (or WebSocket pings), login after
connecting, and "reconnect now" messages.
"""

from __future__ import annotations

from typing import Any

from maxsdk.protocol.jsonfeed import NO_CREDENTIALS, JsonFeedProtocol, JsonFormat
from maxsdk.protocol_client import ProtocolClient

__all__ = ["JsonClient"]


class JsonClient(ProtocolClient):
    """A client for a JSON topic feed described by a :class:`~maxsdk.JsonFormat`.

    Args:
        url: the ``ws://`` or ``wss://`` endpoint.
        format: the feed's field names and operations (default: ``JsonFormat()``).
        **options: every option of :class:`~maxsdk.ProtocolClient` (``auth``,
            ``timeout``, ``ping_interval``, ``reconnect``, ``resubscribe``,
            ``subscribe_batch_size``, ``max_pending_requests``, TLS, ``name``...).

    With ``format.handshake``, the ``auth_op`` message greets the server on
    every connection, with the ``auth`` credentials if any.

    Requests (:meth:`request`) need ``format.id_field``; server errors raise
    :class:`~maxsdk.RpcError` (``code`` and ``message`` read from an error
    object when it has them). A refused subscription raises
    :class:`~maxsdk.SubscriptionError`.

    """

    def __init__(self, url: str, *, format: JsonFormat | None = None, **options: Any) -> None:
        self.format = format or JsonFormat()
        if self.format.handshake:
            options["auth"] = _handshake_credentials(options.get("auth"))
        super().__init__(url, JsonFeedProtocol(self.format), **options)


def _handshake_credentials(auth: Any) -> Any:
    """Credentials that are never ``None``, so the handshake goes out on every connection."""
    if callable(auth):
        return lambda: _or_none_marker(auth())
    return _or_none_marker(auth)


def _or_none_marker(credentials: Any) -> Any:
    return NO_CREDENTIALS if credentials is None else credentials
