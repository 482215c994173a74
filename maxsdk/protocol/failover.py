"""Endpoint failover: which of several endpoints the next connection attempt uses (pure, takes ``now``).

Rules, in order:

1. **Stickiness**: once connected to an endpoint, keep using it for every
   reconnect until an attempt to it fails (a drop alone does not move the
   client: the same server usually takes it back at once).
2. **Health-aware choice** after a failure: prefer endpoints without a recent
   failure (within ``cooldown`` seconds), then fewer consecutive failures, then
   the lower measured round trip (heartbeat RTT), then the order given (the
   first endpoint is the *preferred* one).
3. **Every endpoint once before backing off**: an attempt that fails on one
   endpoint moves to the next at once (:meth:`Failover.retry_now`); only when
   each has failed since the last success does the reconnect schedule wait.
4. **A way back**: while connected to another endpoint, :meth:`Failover.failback_due`
   says when to check whether the preferred one is back (every
   ``failback_after`` seconds); the runtime probes it and, if it answers,
   reconnects there (:meth:`Failover.prefer`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EndpointHealth", "Failover"]


@dataclass
class EndpointHealth:
    """What the client knows about one endpoint."""

    url: str
    last_failure: float | None = None
    failures: int = 0
    rtt: float | None = None
    connected_at: float | None = None


class Failover:
    """Chooses the endpoint of each connection attempt.

    Args:
        urls: the endpoints, the preferred one first.
        cooldown: seconds a failed endpoint ranks behind healthy ones.
        failback_after: seconds on a non-preferred endpoint between checks
            of the preferred one (``None``: never go back on our own).

    """

    def __init__(self, urls: list[str], *, cooldown: float = 30.0, failback_after: float | None = 30.0) -> None:
        if not urls:
            raise ValueError("at least one endpoint is needed")
        self.health = [EndpointHealth(url) for url in urls]
        self.cooldown = cooldown
        self.failback_after = failback_after
        self.current: EndpointHealth | None = None
        self._tried: set[str] = set()
        self._next_failback: float | None = None
        self._forced: EndpointHealth | None = None

    def update(self, urls: list[str]) -> None:
        """Take a new list of endpoints (from a callable), keeping what is known of the ones kept."""
        known = {h.url: h for h in self.health}
        self.health = [known.get(url) or EndpointHealth(url) for url in urls] or self.health
        if self.current is not None and self.current.url not in {h.url for h in self.health}:
            self.current = None

    @property
    def preferred(self) -> EndpointHealth:
        """The first endpoint."""
        return self.health[0]

    def choose(self, now: float) -> str:
        """The endpoint for the next attempt."""
        if self._forced is not None:
            chosen, self._forced = self._forced, None
        elif self.current is not None and self.current.url not in self._tried:
            chosen = self.current  # sticky
        else:
            candidates = [h for h in self.health if h.url not in self._tried] or self.health
            chosen = min(candidates, key=lambda h: self._rank(h, now))
        self._tried.add(chosen.url)
        self.current = chosen
        return chosen.url

    def _rank(self, health: EndpointHealth, now: float) -> tuple[bool, int, float, int]:
        recent = health.last_failure is not None and now - health.last_failure < self.cooldown
        rtt = health.rtt if health.rtt is not None else float("inf")
        return (recent, health.failures, rtt, self.health.index(health))

    def succeeded(self, url: str, now: float) -> None:
        """An attempt to ``url`` connected."""
        health = self._find(url)
        health.failures = 0
        health.connected_at = now
        self.current = health
        self._tried.clear()
        self._next_failback = (
            None if health is self.preferred or self.failback_after is None else now + self.failback_after
        )

    def failed(self, url: str, now: float) -> None:
        """An attempt to ``url`` failed."""
        health = self._find(url)
        health.failures += 1
        health.last_failure = now
        if health is self.current:
            self.current = None  # stickiness ends with a failed attempt

    def retry_now(self) -> bool:
        """Whether another endpoint is still untried since the last success (no backoff wait then)."""
        return any(h.url not in self._tried for h in self.health)

    def backed_off(self) -> None:
        """The reconnect schedule waited: every endpoint may be tried again."""
        self._tried.clear()

    def observe_rtt(self, url: str, rtt: float) -> None:
        """A heartbeat round trip measured on ``url``."""
        health = self._find(url)
        health.rtt = rtt if health.rtt is None else 0.8 * health.rtt + 0.2 * rtt

    def failback_due(self, now: float) -> bool:
        """Whether to check now if the preferred endpoint is back (then call :meth:`failback_checked`)."""
        return self._next_failback is not None and now >= self._next_failback

    def failback_checked(self, now: float) -> None:
        """The preferred endpoint was checked and is still away: check again later."""
        if self.failback_after is not None:
            self._next_failback = now + self.failback_after

    def prefer(self) -> None:
        """Make the next attempt go to the preferred endpoint (the way back)."""
        self._forced = self.preferred
        self._next_failback = None
        self._tried.clear()

    def next_deadline(self) -> float | None:
        """When :meth:`failback_due` next turns true."""
        return self._next_failback

    def _find(self, url: str) -> EndpointHealth:
        for health in self.health:
            if health.url == url:
                return health
        health = EndpointHealth(url)
        self.health.append(health)
        return health
