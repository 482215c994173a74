"""maxsdk: a blocking, thread-based client for Phoenix Channels and other WebSocket protocols.

Quick start::

    import maxsdk

    with maxsdk.Client("ws://localhost:4000/socket", params={"token": "..."}) as client:
        room = client.join("room:lobby")
        room.on("new_msg", lambda payload: print(payload))
        print(room.push("new_msg", {"body": "hello"}).response)

The public surface is what this module exports; everything under
``maxsdk._runtime`` is private.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from maxsdk import signals
from maxsdk._runtime.deflate import Deflate
from maxsdk._version import __version__
from maxsdk.channel import Channel
from maxsdk.client import Client
from maxsdk.errors import (
    AuthenticationError,
    AuthRefusedError,
    CapacityError,
    CertificatePinError,
    ChannelClosedError,
    ChannelError,
    ClientClosedError,
    ConfigurationError,
    ConnectFailedError,
    ConnectionLostError,
    ConnectTimeoutError,
    ForkedClientError,
    HandshakeError,
    JoinError,
    JoinTimeoutError,
    LocalProtocolError,
    MaxsdkError,
    MaxsdkTimeoutError,
    MessageTooLargeError,
    NotConnectedError,
    OutboxClosedError,
    OutboxCorruptError,
    OutboxError,
    OutboxFullError,
    OutboxLockedError,
    OutboxStorageError,
    PatchError,
    ProtocolError,
    RemoteProtocolError,
    ReplyError,
    ReplyLostError,
    ReplyTimeoutError,
    RpcError,
    StateConflictError,
    SubscriptionError,
    TLSVerificationError,
    TokenFetchError,
    TokenRejectedError,
    TransportError,
    WrongThreadError,
)
from maxsdk.models import ModelError
from maxsdk.protocol.backoff import Backoff
from maxsdk.protocol.phoenix.channel import ChannelState
from maxsdk.protocol.phoenix.message import Message
from maxsdk.recovery import Discontinuity, Position, Recovery, StreamEvent
from maxsdk.reply import PendingReply, Reply
from maxsdk.state_view import PendingUpdate, StateChange, StateConflict, StateView
from maxsdk.stats import ChannelStats, Stats
from maxsdk.status import ChannelSnapshot, ConnectionState, Diagnostics
from maxsdk.tls import TLSConfig, certificate_pin

if TYPE_CHECKING:
    from maxsdk.auth import TokenProvider
    from maxsdk.call import BatchResult, PendingCall
    from maxsdk.jsonclient import JsonClient
    from maxsdk.jsonrpc import Batch, JsonRpcClient
    from maxsdk.outbox import Outbox, OutboxConfig
    from maxsdk.protocol.handler import ProtocolHandler
    from maxsdk.protocol.jsonfeed import JsonFeedProtocol, JsonFormat
    from maxsdk.protocol.jsonrpc import JsonRpcProtocol
    from maxsdk.protocol_client import ProtocolClient
    from maxsdk.subscription import Subscription

logging.getLogger("maxsdk").addHandler(logging.NullHandler())

# Loaded on first use: they pull in requests, persist-queue/sqlite3 and the
# handler machinery, which a plain Phoenix client never needs (import time and memory).
_LAZY = {
    "Batch": "maxsdk.jsonrpc",
    "BatchResult": "maxsdk.call",
    "JsonClient": "maxsdk.jsonclient",
    "JsonFeedProtocol": "maxsdk.protocol.jsonfeed",
    "JsonFormat": "maxsdk.protocol.jsonfeed",
    "JsonRpcClient": "maxsdk.jsonrpc",
    "JsonRpcProtocol": "maxsdk.protocol.jsonrpc",
    "Outbox": "maxsdk.outbox",
    "OutboxConfig": "maxsdk.outbox",
    "PendingCall": "maxsdk.call",
    "ProtocolClient": "maxsdk.protocol_client",
    "ProtocolHandler": "maxsdk.protocol.handler",
    "Subscription": "maxsdk.subscription",
    "TokenProvider": "maxsdk.auth",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'maxsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuthRefusedError",
    "AuthenticationError",
    "Backoff",
    "Batch",
    "BatchResult",
    "CapacityError",
    "CertificatePinError",
    "Channel",
    "ChannelClosedError",
    "ChannelError",
    "ChannelSnapshot",
    "ChannelState",
    "ChannelStats",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ConnectionState",
    "Deflate",
    "Diagnostics",
    "Discontinuity",
    "ForkedClientError",
    "HandshakeError",
    "JoinError",
    "JoinTimeoutError",
    "JsonClient",
    "JsonFeedProtocol",
    "JsonFormat",
    "JsonRpcClient",
    "JsonRpcProtocol",
    "LocalProtocolError",
    "MaxsdkError",
    "MaxsdkTimeoutError",
    "Message",
    "MessageTooLargeError",
    "ModelError",
    "NotConnectedError",
    "Outbox",
    "OutboxClosedError",
    "OutboxConfig",
    "OutboxCorruptError",
    "OutboxError",
    "OutboxFullError",
    "OutboxLockedError",
    "OutboxStorageError",
    "PatchError",
    "PendingCall",
    "PendingReply",
    "PendingUpdate",
    "Position",
    "ProtocolClient",
    "ProtocolError",
    "ProtocolHandler",
    "Recovery",
    "RemoteProtocolError",
    "Reply",
    "ReplyError",
    "ReplyLostError",
    "ReplyTimeoutError",
    "RpcError",
    "StateChange",
    "StateConflict",
    "StateConflictError",
    "StateView",
    "Stats",
    "StreamEvent",
    "Subscription",
    "SubscriptionError",
    "TLSConfig",
    "TLSVerificationError",
    "TokenFetchError",
    "TokenProvider",
    "TokenRejectedError",
    "TransportError",
    "WrongThreadError",
    "__version__",
    "certificate_pin",
    "signals",
]
