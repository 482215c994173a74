"""One WebSocket connection: the ``websockets`` connection subclass and our transport.

:class:`PhoenixConnection` adds what Phoenix semantics need on top of
``websockets``: the time of the last received frame (idle timeout, §1.6),
dropping instead of closing when the server stops abruptly, one ``sendall``
per batch of frames, and a close reply without the client's reason (as
Cowboy and Bandit answer). :class:`WebSocketTransport` is the
:class:`~.transport.Transport` a session writes through.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import Event, State
from websockets.server import ServerProtocol
from websockets.sync.server import ServerConnection

from .connect import Accepted
from .message import Frame


class _PhoenixProtocol(ServerProtocol):
    """Answers a client's close frame with its code only, as Cowboy and Bandit do.

    ``websockets`` echoes the whole close payload (code and reason); the
    recorded Phoenix servers answer ``close 1000 'bye'`` with ``03 e8``.
    """

    def send_frame(self, frame: WsFrame) -> None:
        if (
            frame.opcode is Opcode.CLOSE
            and self.state is State.OPEN
            and self.close_rcvd is not None
            and len(frame.data) > 2
        ):
            frame = WsFrame(Opcode.CLOSE, frame.data[:2])
        super().send_frame(frame)


class PhoenixConnection(ServerConnection):
    """A ``websockets`` connection that remembers its handshake and last activity."""

    def __init__(self, sock: socket.socket, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        """Same arguments as :class:`websockets.sync.server.ServerConnection`."""
        self.last_activity = time.monotonic()
        self.accepted: Accepted | None = None
        self.abort_on_close = False
        # serve() builds the protocol itself; specialise it before any frame flows.
        protocol.__class__ = _PhoenixProtocol
        super().__init__(sock, protocol, *args, **kwargs)

    def process_event(self, event: Event) -> None:
        """Note the time of every incoming frame (pings included) for the idle timeout."""
        self.last_activity = time.monotonic()
        super().process_event(event)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close gracefully, or drop the TCP connection when the server stops abruptly."""
        if self.abort_on_close:
            self.close_socket()
            return
        super().close(code, reason)

    def send_data(self) -> None:
        """Write pending data, coalescing consecutive frames into one ``sendall``."""
        assert self.protocol_mutex.locked()
        pending: list[bytes] = []
        for data in self.protocol.data_to_send():
            if data:
                pending.append(data)
                continue
            self._flush(pending)
            pending = []
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:  # already closed
                pass
        self._flush(pending)

    def _flush(self, pending: list[bytes]) -> None:
        if not pending:
            return
        if self.close_deadline is not None:
            self.socket.settimeout(self.close_deadline.timeout())
        self.socket.sendall(pending[0] if len(pending) == 1 else b"".join(pending))


class WebSocketTransport:
    """The :class:`~.transport.Transport` of one WebSocket connection."""

    name = "websocket"

    def __init__(self, connection: PhoenixConnection) -> None:
        """Wrap an open connection."""
        self.connection = connection

    def write(self, frames: Sequence[Frame]) -> bool:
        """Queue ``frames`` on the protocol and write them in one go."""
        conn = self.connection
        if conn.protocol.state is not State.OPEN:
            # Writing during the closing handshake would block until it completes.
            return False
        protocol = conn.protocol
        try:
            with conn.send_context():
                for frame in frames:
                    if isinstance(frame, str):
                        protocol.send_text(frame.encode("utf-8"))
                    else:
                        protocol.send_binary(frame)
        except (ConnectionClosed, OSError):
            return False
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame and wait (up to the close timeout) for the client's."""
        self.connection.close(code, reason)

    def abort(self) -> None:
        """Close the TCP connection without a close frame."""
        self.connection.close_socket()


def close_code(connection: PhoenixConnection) -> int:
    """The close code that ended the connection: ours if we closed first, else the client's."""
    protocol = connection.protocol
    sent, rcvd = protocol.close_sent, protocol.close_rcvd
    if sent is not None and (rcvd is None or protocol.close_rcvd_then_sent is False):
        return sent.code
    if rcvd is not None:
        return rcvd.code
    return 1006
