"""The runtime side of endpoint failover: the engine's hooks around :class:`~maxsdk.protocol.failover.Failover`.

The pure policy chooses; this module evaluates an endpoint callable, keeps the
policy behind a lock (the reader, the timer and the dispatch pool all report
to it), and probes the preferred endpoint for the way back: a TCP connect on a
short-lived thread (``maxsdk-N-probe``), so that the client leaves a working
endpoint only for one that answers. ``close()`` joins the probe.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from maxsdk._runtime.threads import call_user_code, start_thread
from maxsdk.config import ClientConfig, endpoint_list
from maxsdk.endpoint import redact_url
from maxsdk.errors import ConnectFailedError, MaxsdkError
from maxsdk.protocol.failover import Failover

if TYPE_CHECKING:
    from maxsdk._runtime.engine import Engine

__all__ = ["EndpointChooser"]

log = logging.getLogger("maxsdk.client")
_monotonic = time.monotonic


class EndpointChooser:
    """Chooses each attempt's endpoint for one engine, and finds the way back to the preferred one."""

    def __init__(self, config: ClientConfig, engine: Engine) -> None:
        self._config = config
        self._engine = engine
        self._lock = threading.Lock()
        self.policy = Failover(list(config.endpoints), failback_after=config.failback_after)
        self.url = config.url
        self._probe: threading.Thread | None = None

    def next_config(self) -> ClientConfig:
        """The config of the next attempt: the chosen endpoint as its ``url``."""
        source = self._config.endpoint_source
        urls = None
        if source is not None:
            try:
                urls = endpoint_list(call_user_code(source))
            except MaxsdkError:
                raise
            except Exception as exc:
                raise ConnectFailedError(
                    f"the endpoint callable failed: {exc!r}", url=self._engine.redacted_url
                ) from exc
        with self._lock:
            if urls is not None:
                self.policy.update(urls)
            self.url = self.policy.choose(_monotonic())
        return dataclasses.replace(self._config, url=self.url)

    def succeeded(self) -> None:
        """The attempt connected."""
        with self._lock:
            self.policy.succeeded(self.url, _monotonic())

    def failed(self) -> bool:
        """The attempt failed; ``True`` if another endpoint should be tried at once (no backoff)."""
        with self._lock:
            self.policy.failed(self.url, _monotonic())
            if self.policy.retry_now():
                return True
            self.policy.backed_off()
            return False

    def observe_rtt(self, rtt: float) -> None:
        """A heartbeat round trip on the current endpoint."""
        with self._lock:
            self.policy.observe_rtt(self.url, rtt)

    def fail_back(self) -> bool:
        """Reconnect to the preferred endpoint now; ``False`` if already there."""
        with self._lock:
            if self.url == self.policy.preferred.url:
                return False
            self.policy.prefer()
        self._engine.drop_connection("failing back to the preferred endpoint")
        return True

    def tick(self, now: float) -> float | None:
        """On the timer: start a probe of the preferred endpoint when due; return the next deadline."""
        with self._lock:
            due = self.policy.failback_due(now) and self._config.proxy is None  # no direct probe via a proxy
            if due and (self._probe is None or not self._probe.is_alive()):
                self.policy.failback_checked(now)
                self._probe = threading.Thread(
                    target=self._run_probe, args=(self.policy.preferred.url,), name=f"{self._engine.name}-probe"
                )
                self._probe.daemon = True
                start_thread(self._probe)
            return self.policy.next_deadline()

    def _run_probe(self, url: str) -> None:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=self._config.connect_timeout):
                pass
        except OSError as exc:
            log.debug("%s: preferred endpoint %s still away (%s)", self._engine.name, redact_url(url), exc)
            return
        log.info("%s: preferred endpoint %s answers again; reconnecting there", self._engine.name, redact_url(url))
        self.fail_back()

    @property
    def threads(self) -> list[threading.Thread]:
        """The probe thread, if one was started."""
        return [self._probe] if self._probe is not None else []

    def describe(self) -> dict[str, Any]:
        """Per endpoint (redacted): consecutive failures and smoothed RTT."""
        with self._lock:
            return {
                redact_url(h.url): {"failures": h.failures, "rtt": h.rtt, "current": h.url == self.url}
                for h in self.policy.health
            }
