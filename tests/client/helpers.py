"""Test helpers: record signals and handler calls, and wait on them (no sleep-polling)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from maxsdk import Client, signals

ALL_SIGNALS = [
    signals.connected,
    signals.disconnected,
    signals.state_changed,
    signals.reconnecting,
    signals.reconnect_failed,
    signals.channel_joined,
    signals.channel_errored,
    signals.channel_rejoin_failed,
    signals.channel_closed,
    signals.heartbeat,
    signals.protocol_error,
    signals.handler_failed,
    signals.messages_dropped,
]


class SignalLog:
    """Every signal a client sends, with the time and thread it arrived on."""

    def __init__(self, client: Client, extra: list[Any] | None = None) -> None:
        self._cond = threading.Condition()
        self.records: list[tuple[str, dict[str, Any], float, str]] = []
        for signal in ALL_SIGNALS + (extra or []):
            client.on_signal(signal, self._receiver(signal.name))

    def _receiver(self, name: str) -> Callable[..., None]:
        def receive(_sender: Any, **kwargs: Any) -> None:
            with self._cond:
                self.records.append((name, kwargs, time.monotonic(), threading.current_thread().name))
                self._cond.notify_all()

        return receive

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [kw for n, kw, _, _ in self.records if n == name]

    def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda kw: True,
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> dict[str, Any]:
        """Wait until ``count`` records of ``name`` match ``predicate``; return the last."""

        def matches() -> list[dict[str, Any]]:
            return [kw for n, kw, _, _ in self.records if n == name and predicate(kw)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matches()) >= count, timeout):
                seen = [(n, kw) for n, kw, _, _ in self.records]
                raise AssertionError(f"no {count} x {name} within {timeout} s; saw {seen[-20:]}")
            return matches()[count - 1]


class Inbox:
    """A handler that records what it is called with."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[Any] = []
        self.threads: set[str] = set()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"condition not met within {timeout} s; items: {self.items[-20:]}")
            return list(self.items)

    def wait_count(self, count: int, timeout: float = 5.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"expected {count} items within {timeout} s, got {len(self.items)}")
            return list(self.items)


def fast_client(url: str, **options: Any) -> Client:
    """A client with short, deterministic schedules for tests."""
    from maxsdk import Backoff

    options.setdefault("reconnect", Backoff(steps=(0.01, 0.05, 0.1), jitter="none"))
    options.setdefault("rejoin", Backoff(steps=(0.05, 0.1, 0.2), jitter="none"))
    options.setdefault("timeout", 3.0)
    options.setdefault("connect_timeout", 3.0)
    return Client(url, **options)
