"""Topic routes: ``channel "room:*", RoomChannel`` (reference §3.2).

A pattern is an exact topic or a prefix ending in ``*``; the first matching
route in definition order wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .channel import Channel

ChannelFactory = Callable[[], Channel]
"""Makes one handler per join: usually a :class:`~maxsdk.server.Channel` subclass."""


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches an exact or ``prefix*`` pattern."""
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    return topic == pattern


class Router:
    """An ordered list of ``(pattern, factory)`` channel routes."""

    def __init__(self, routes: Iterable[tuple[str, ChannelFactory]] = ()) -> None:
        """Create a router, optionally with initial routes."""
        self._routes: list[tuple[str, ChannelFactory]] = []
        for pattern, factory in routes:
            self.channel(pattern, factory)

    def channel(self, pattern: str, factory: ChannelFactory) -> Router:
        """Add a route; returns the router so calls can be chained.

        Raises:
            ValueError: if ``*`` appears anywhere but at the end.

        """
        if "*" in pattern[:-1]:
            raise ValueError(f"'*' is only allowed at the end of a pattern: {pattern!r}")
        self._routes.append((pattern, factory))
        return self

    def match(self, topic: str) -> ChannelFactory | None:
        """The factory of the first route matching ``topic``, or ``None``."""
        for pattern, factory in self._routes:
            if topic_matches(pattern, topic):
                return factory
        return None

    @property
    def patterns(self) -> list[str]:
        """The route patterns, in order."""
        return [pattern for pattern, _ in self._routes]

    def __repr__(self) -> str:
        return f"Router({self.patterns!r})"
