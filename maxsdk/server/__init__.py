"""An embedded, threaded Phoenix Channels server (WebSocket and LongPoll, serializers V1 and V2).

It speaks the server side of ``reference/phoenix-protocol.md`` faithfully and
runs the reference app of ``tests/golden`` by default, for tests, examples and
demos. It has its own codec; it never imports the client's ``maxsdk.protocol``.

Start one::

    from maxsdk.server import PhoenixServer, ServerSettings

    with PhoenixServer(token="secret") as server:        # 127.0.0.1, free port
        url = server.url + "?vsn=2.0.0&token=secret"      # ws://127.0.0.1:PORT/socket/websocket
        lp = server.longpoll_url                          # http://127.0.0.1:PORT/socket/longpoll
        ...

Both transports share one port: an HTTP front (``http_front.py``) peeks at
each request line and sends ``<path>/longpoll`` requests to the long-poll
endpoint (``longpoll.py``, reference §1.8: logical statuses in HTTP-200 JSON
bodies, NDJSON POST batches, sessions expiring after 1.5 x the window) and
everything else, untouched, to the WebSocket server.

``PhoenixServer(router=None, *, host="127.0.0.1", port=0, path="/socket",
settings=None, connect=None, token=None)``

* ``router``: a :class:`Router` or ``[(pattern, ChannelSubclass), ...]``;
  default: the reference app (``room:*``, ``echo:*``, ``ticker:*``, see
  :mod:`maxsdk.server.reference_app`).
* ``connect``: ``f(ConnectRequest) -> Accept(assigns, socket_id) | Refuse(status) | bool``;
  default: the reference handler (``token=`` required if set; ``user_id`` param
  → ``assigns["user_id"]`` (else ``"anon"``) and socket id ``user_socket:<user_id>``).
* ``settings``: :class:`ServerSettings` (frozen): ``join_ref_check`` (``"1.8.12"``
  default, ``"1.8.3"``, ``"none"``), ``crash_payload``, ``max_channels_per_transport``
  (100), ``idle_timeout`` (60.0 s), ``idle_close_code`` (1000),
  ``disconnect_close_code`` (1001), ``auth_token`` (False), ``allowed_origins``
  (None), ``channel_shutdown_timeout`` (5.0), ``close_timeout`` (2.0),
  ``handshake_timeout`` (5.0), ``max_frame_size``, ``longpoll_window`` (10.0),
  ``max_workers``, ``record_limit``.
  ``ServerSettings.phoenix_1_7(**overrides)`` mimics the Phoenix 1.7.23/Bandit
  server of the golden recordings.

Threads: one accept thread, two per WebSocket connection (``websockets``' reader
and our frame handler, which also runs ``join``), one per long-poll HTTP
connection (a held poll waits on it; a POST runs ``join`` on it), one timer, and
an elastic worker pool running channel mailboxes (no thread per channel).
``stop()`` joins them all.

Lifecycle: ``start()`` (returns self), ``stop(*, abrupt=False, code=1012, reason="")``
(abrupt = no close frames; long-poll sessions end either way), ``restart()``,
context manager, ``url``, ``longpoll_url``, ``port``
(kept across restarts, so a stopped server can come back on the same port),
``running``.

Faults (all thread-safe; switches stay on until turned off, across restarts):

* connections: ``drop_connections()``, ``close_connections(code=1000, reason="")``,
  ``disconnect(socket_id)``, ``refuse_connections(status=503, *, transport=None)``
  (``"websocket"`` only: a proxy blocking upgrades; ``"longpoll"`` only) /
  ``accept_connections()``, ``send_raw(frame: str | bytes, connection_id=None)``,
  ``expire_sessions(connection_id=None)`` (long-poll: as if the client stopped
  polling). Over long-poll, drop/close/disconnect/expire end the session: a held
  poll is answered at once and the next poll gets 410;
* heartbeats and replies: ``pause_heartbeats()`` / ``resume_heartbeats()``,
  ``delay_replies(seconds, *, heartbeats=False)``,
  ``withhold_replies(*, heartbeats=False)`` / ``release_replies(*, send=True)``;
* channels: ``refuse_joins(pattern="*", reason="join refused")`` /
  ``allow_joins(pattern=None)``, ``crash_channel(topic, connection_id=None)``;
* ``reset_faults()``.

Server-side actions: ``broadcast(topic, event, payload)``, ``presence(topic)``,
``state(topic)`` (the :class:`StateDocument` of a replicated state topic:
``snapshot()``, ``change(patch, fmt)``, ``reset(document)``; ``docs/state.md``).

Observability (blocking waits use a condition variable; they raise ``TimeoutError``):
``messages(since=0)`` → list of :class:`ReceivedMessage` (``index``,
``connection_id``, ``join_ref``, ``ref``, ``topic``, ``event``, ``payload``, ``at``),
``events(since=0)`` → list of :class:`ConnectionEvent` (``kind`` =
``"opened"``/``"closed"``/``"refused"``, ``connection_id``, ``params``, ``vsn``,
``socket_id``, ``status``, ``code``), ``connections``, ``message_count`` /
``event_count`` (cursors for ``since=``); events carry ``transport``
(``"websocket"`` or ``"longpoll"``),
``wait_for_message(predicate=None, timeout=5.0, *, since=0, topic=None, event=None)``,
``wait_for_event(predicate, timeout=5.0, *, since=0)``,
``wait_for_connections(count, timeout=5.0)`` (exactly ``count`` open), ``clear_records()``.

Writing channels (modelled on ``Phoenix.Channel``): subclass :class:`Channel`
and override ``join(topic, payload, socket)`` (return ``None``/``ok(r)``/``error(r)``;
raising → ``{"reason": "join crashed"}``), ``handle_in(event, payload, socket)``
(return ``ok(r)``/``error(r)``/``Reply(status, r)``, ``None`` for no reply,
``Stop(reason="normal", reply=None)``; raising → ``phx_error``),
``handle_info(message, socket)`` and ``terminate(reason, socket)``. The
:class:`ChannelSocket` offers ``push``, ``push_many``, ``broadcast``,
``broadcast_from``, ``reply(socket_ref(), ...)``, ``send_self(msg, delay=None)``,
``track``/``update``/``untrack``/``presence_state``, ``assigns``, ``params``,
``socket_id``, ``connection_id``, ``endpoint``. ``bytes`` payloads are sent as
binary frames (V2).

Other protocols: :class:`JsonRpcServer` (JSON-RPC 2.0, :mod:`maxsdk.server.jsonrpc`)
and :class:`JsonTopicServer` (JSON topic feeds, :mod:`maxsdk.server.jsontopics`)
share :class:`JsonServerBase` (:mod:`maxsdk.server.json_base`): the same
lifecycle and the same kinds of scripted faults (drop/close/refuse connections,
``send_raw`` malformed frames, ``delay_replies``, ``withhold_replies``,
``refuse_subscriptions``, ``stop_answering_pings``, restart on the same port).

Pytest fixtures: :mod:`maxsdk.testing` (``pytest_plugins = ["maxsdk.testing"]``).
Run it for local development: ``maxsdk serve --port 4000``.
"""

from __future__ import annotations

import logging

from .channel import Channel
from .channel_socket import ChannelSocket, SocketRef
from .connect import Accept, ConnectDecision, ConnectHandler, ConnectRequest, Refuse
from .endpoint import Endpoint
from .json_base import JsonConnection, JsonRecord, JsonServerBase
from .jsonrpc import JsonRpcServer, RpcFault
from .jsontopics import FeedError, JsonTopicServer
from .message import Frame, Message, OutPayload, Ref
from .presence import PresenceState
from .recorder import ConnectionEvent, ReceivedMessage, Recorder
from .reference_app import EchoChannel, RoomChannel, TickerChannel, reference_connect, reference_router
from .result import Reply, Stop, error, ok
from .router import ChannelFactory, Router
from .serializer import MalformedFrameError
from .server import PhoenixServer
from .settings import CHANNEL_CRASH, LEGACY_CRASH, JoinRefCheck, ServerSettings
from .state import StateChannel, StateDocument

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CHANNEL_CRASH",
    "LEGACY_CRASH",
    "Accept",
    "Channel",
    "ChannelFactory",
    "ChannelSocket",
    "ConnectDecision",
    "ConnectHandler",
    "ConnectRequest",
    "ConnectionEvent",
    "EchoChannel",
    "Endpoint",
    "FeedError",
    "Frame",
    "JoinRefCheck",
    "JsonConnection",
    "JsonRecord",
    "JsonRpcServer",
    "JsonServerBase",
    "JsonTopicServer",
    "MalformedFrameError",
    "Message",
    "OutPayload",
    "PhoenixServer",
    "PresenceState",
    "ReceivedMessage",
    "Recorder",
    "Ref",
    "Refuse",
    "Reply",
    "RoomChannel",
    "Router",
    "RpcFault",
    "ServerSettings",
    "SocketRef",
    "StateChannel",
    "StateDocument",
    "Stop",
    "TickerChannel",
    "error",
    "ok",
    "reference_connect",
    "reference_router",
]
