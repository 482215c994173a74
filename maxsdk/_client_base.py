"""What every maxsdk client shares: state, fork safety, signals, diagnostics, lifecycle helpers.

:class:`~maxsdk.Client` (Phoenix) and :class:`~maxsdk.ProtocolClient`
(JSON-RPC, JSON feeds, custom handlers) both run on an
:class:`~maxsdk._runtime.engine.Engine`; this base holds the parts of their
public surface that do not depend on the protocol.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from blinker import Signal

from maxsdk.errors import ConfigurationError, ForkedClientError
from maxsdk.stats import Stats
from maxsdk.status import ConnectionState, Diagnostics

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine
    from maxsdk.config import ClientConfig

__all__ = ["ClientBase"]

R = TypeVar("R", bound=Callable[..., Any])

_live_clients: weakref.WeakSet[ClientBase] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Threads do not survive fork(): mark every client of the parent as unusable here."""
    for client in list(_live_clients):
        client._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ClientBase:
    """Shared behaviour of maxsdk clients (not instantiated directly)."""

    config: ClientConfig
    _engine: Engine

    def _init_base(self) -> None:
        """Call once the engine exists."""
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self._forked = False
        #: The process that created the client (it cannot be used after a fork).
        self.pid = os.getpid()
        _live_clients.add(self)

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection state (readable at any time, from any thread)."""
        return self._engine.state

    @property
    def connected(self) -> bool:
        """Whether the connection is open right now."""
        return self._engine.state is ConnectionState.CONNECTED

    @property
    def closed(self) -> bool:
        """Whether the client is closed: :meth:`close` was called, or it gave up reconnecting.

        A closed client can be connected again with ``connect()``.
        """
        return self._closed or self._engine.ended

    @property
    def forked(self) -> bool:
        """Whether this client was inherited through ``os.fork()`` (and is unusable here)."""
        return self._forked

    def _check_process(self) -> None:
        if self._forked:
            raise ForkedClientError(
                f"{self._engine.name} was created in process {self.pid} and cannot be used after a fork "
                f"(now in {os.getpid()}): create the client in the child process"
            )

    # -- lifecycle helpers ----------------------------------------------------------------------

    def disconnect(self, timeout: float | None = None) -> None:
        """Close the connection without forgetting channels/subscriptions; no automatic reconnect.

        They are joined/subscribed again on the next ``connect()``.
        """
        self._check_process()
        self._engine.disconnect(timeout)

    def connect(self, timeout: float | None = None) -> Any:
        """Connect and block until the client is usable (see the subclass)."""
        raise NotImplementedError

    def close(self, timeout: float | None = None) -> None:
        """Close for good (see the subclass)."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.connect()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- observability ----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint in use (redacted): with several endpoints, the one failed over to."""
        return self._engine.redacted_url

    def fail_back(self) -> bool:
        """Reconnect to the preferred (first) endpoint now.

        Returns:
            ``False`` if there is a single endpoint or the preferred one is in use.

        """
        self._check_process()
        endpoints = self._engine.endpoints
        return endpoints is not None and endpoints.fail_back()

    def diagnostics(self) -> Diagnostics:
        """A snapshot of the connection for logs and health checks (no secrets).

        Raises:
            ForkedClientError: in a child process after ``os.fork()`` (the
                engine's lock may have been held by a thread that did not survive).

        """
        self._check_process()
        return self._engine.diagnostics()

    def stats(self) -> Stats:
        """Counters, gauges, latency percentiles and rates (see :class:`~maxsdk.stats.Stats`).

        Rates cover the time since the previous ``stats()`` call.

        Raises:
            ForkedClientError: in a child process after ``os.fork()``.

        """
        self._check_process()
        return self._engine.stats(self._outbox_depth())

    def _outbox_depth(self) -> int | None:
        return None

    def on_signal(self, signal: Signal, receiver: R | None = None) -> Any:
        """Connect ``receiver(client, **kwargs)`` to a :mod:`maxsdk.signals` signal for this client.

        The receiver is held strongly (blinker's default is weak). Usable as a
        decorator. Receivers run on the dispatcher thread.
        """
        if not isinstance(signal, Signal):
            raise ConfigurationError("signal must be one of maxsdk.signals")

        def connect(fn: R) -> R:
            signal.connect(fn, sender=self, weak=False)
            return fn

        return connect if receiver is None else connect(receiver)

    def off_signal(self, signal: Signal, receiver: Callable[..., Any]) -> None:
        """Disconnect a receiver connected with :meth:`on_signal`."""
        signal.disconnect(receiver, sender=self)

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads this client started (for tests and diagnostics)."""
        return self._engine.threads

    def __repr__(self) -> str:
        return f"<maxsdk.{type(self).__name__} {self._engine.name} {self._engine.redacted_url} {self.state}>"
