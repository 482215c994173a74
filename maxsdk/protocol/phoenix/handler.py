"""Phoenix Channels expressed as a :class:`~maxsdk.protocol.handler.ProtocolHandler`.

The mapping (section numbers refer to ``reference/phoenix-protocol.md``):

=====================  ==================================================================
interface              Phoenix
=====================  ==================================================================
request id             the message ``ref`` (decimal strings from one counter, §2.1)
request                a push ``[join_ref, ref, topic, event, payload]`` on a joined topic
                       (the scope's ``key`` is the channel's ``join_ref``)
reply                  ``phx_reply`` with ``{"status", "response"}``; an error unless
                       the status is ``"ok"`` (§3.4)
subscribe              ``phx_join`` of one topic, ``join_ref == ref`` (§2.3); its ``ok``
                       reply confirms it and the ``join_ref`` becomes the key
unsubscribe            ``phx_leave`` with the channel's ``join_ref`` (§3.6)
update                 a broadcast or push on a topic (``presence_state``/``presence_diff``
                       included)
control                ``phx_close`` and ``phx_error`` (§3.7, §5.4)
ping / pong            ``heartbeat`` on the ``phoenix`` topic and its reply (§4.1)
server ping            none: Phoenix servers never ping
binary frames          V2 binary kinds 0, 1 and 2 (§2.4)
=====================  ==================================================================

:class:`~maxsdk.protocol.phoenix.session.PhoenixSession` keeps its own channel
state machine (joins with params, rejoin schedules, push buffers, presence) and
uses this handler for the frames it builds. Its per-frame routing stays inline:
:meth:`PhoenixProtocol.classify` costs a call and a tuple per frame, which the
receive path of a broadcast-heavy socket cannot spare; it describes exactly
the decisions that routing makes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from maxsdk.endpoint import build_socket_url
from maxsdk.protocol.handler import (
    Frame,
    FrameKind,
    Incoming,
    ProtocolHandler,
    RequestId,
    SubscribeResult,
    TopicRef,
)
from maxsdk.protocol.phoenix.message import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_CLOSE,
    PHX_ERROR,
    PHX_JOIN,
    PHX_LEAVE,
    PHX_REPLY,
    Message,
)
from maxsdk.protocol.phoenix.serializer import EncodedPayload, Serializer, serializer_for

__all__ = ["PhoenixProtocol"]

_EMPTY = "{}"


class PhoenixProtocol(ProtocolHandler):
    """The Phoenix wire (serializer V2 or V1) behind the handler interface.

    Args:
        serializer: the serializer to use (default: one for ``vsn``).
        vsn: ``"2.0.0"`` (default) or ``"1.0.0"``.

    Attributes:
        serializer: the serializer.
        frame: ``frame(join_ref, ref, topic, event, encoded_payload)`` — the
            serializer's framing (the session's hot path calls it directly).

    """

    name = "phoenix"
    max_subscribe_batch = 1
    request_id_per_topic = True
    subscription_confirmation = "reply"
    string_ids = True

    def __init__(self, serializer: Serializer | None = None, *, vsn: str = "2.0.0") -> None:
        self.serializer = serializer = serializer or serializer_for(vsn)
        # Bound methods of the serializer: no extra call per frame.
        self.frame = serializer.encode
        self.decode_text = serializer.decode_text  # type: ignore[method-assign]
        self.decode_binary = serializer.decode_binary  # type: ignore[method-assign]

    def connect_url(self, url: str, params: Mapping[str, Any] | None) -> str:
        """``<endpoint>/websocket?<params>&vsn=...`` (§1.1-§1.3)."""
        return build_socket_url(url, params, self.serializer.vsn)

    # -- incoming --------------------------------------------------------------------------

    def classify(self, message: Message) -> Incoming:
        """Replies (heartbeat replies are pongs), phx_close/phx_error controls, everything else updates."""
        event = message.event
        if event == PHX_REPLY:
            payload = message.payload
            status = payload["status"]
            if message.topic == PHOENIX_TOPIC:
                return Incoming(FrameKind.PONG, message.ref, PHOENIX_TOPIC, payload.get("response"), None, message)
            error = None if status == "ok" else payload
            return Incoming(FrameKind.REPLY, message.ref, message.topic, payload.get("response"), error, message)
        if event in (PHX_CLOSE, PHX_ERROR):
            error = message.payload if event == PHX_ERROR else None
            return Incoming(FrameKind.CONTROL, None, message.topic, event, error, message)
        return Incoming(FrameKind.UPDATE, None, message.topic, message.payload, None, message)

    # -- outgoing --------------------------------------------------------------------------

    def request(self, request_id: RequestId, method: str, params: Any, *, scope: TopicRef | None = None) -> Frame:
        """A push of event ``method`` on ``scope``'s topic with its ``join_ref``."""
        if scope is None:
            raise ValueError("a Phoenix push needs the channel it is made on (scope)")
        payload = self.serializer.encode_payload(params)
        return self.frame(scope.key, str(request_id), scope.topic, method, payload)

    def subscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame:
        """``phx_join`` of one topic; ``args`` is the encoded join payload (§3.3)."""
        (ref,) = topics
        return self.join(str(request_ids[0]), ref.topic, ref.args if ref.args is not None else _EMPTY)

    def unsubscribe(self, request_ids: Sequence[RequestId], topics: Sequence[TopicRef]) -> Frame | None:
        """``phx_leave`` with the channel's ``join_ref`` (§3.6)."""
        (ref,) = topics
        return self.leave(ref.key, str(request_ids[0]), ref.topic)

    def subscribe_results(self, topics: Sequence[TopicRef], incoming: Incoming) -> Sequence[SubscribeResult]:
        """An ``ok`` join reply confirms the join; its ``join_ref`` becomes the key."""
        if incoming.error is not None:
            return [SubscribeResult(False, None, incoming.error)]
        return [SubscribeResult(True, str(incoming.request_id))]

    def ping(self, request_id: RequestId) -> Frame | None:
        """A ``heartbeat`` on the ``phoenix`` topic (§4.1)."""
        return self.heartbeat(str(request_id))

    # -- the frames behind the interface (typed for the session) -----------------------------

    def join(self, ref: str, topic: str, payload: EncodedPayload) -> Frame:
        """``[ref, ref, topic, "phx_join", payload]``: a join's ``join_ref`` is its own ref (§2.3)."""
        return self.frame(ref, ref, topic, PHX_JOIN, payload)

    def leave(self, join_ref: str | None, ref: str, topic: str) -> Frame:
        """``[join_ref, ref, topic, "phx_leave", {}]``."""
        return self.frame(join_ref, ref, topic, PHX_LEAVE, _EMPTY)

    def heartbeat(self, ref: str) -> Frame:
        """``[null, ref, "phoenix", "heartbeat", {}]``."""
        return self.frame(None, ref, PHOENIX_TOPIC, HEARTBEAT, _EMPTY)
