"""``manage.py maxsdk_listen``: join topics and send ``event_received`` for every event.

Run it as one long-lived process next to the web workers (systemd,
supervisor, a container): each event is then handled once, not once per web
worker. It stops on Ctrl-C or SIGTERM, and exits with status 1 when a
channel is closed for good by the server or the client gives up reconnecting,
so the process manager can restart it.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maxsdk import signals
from maxsdk.channel import Channel
from maxsdk.client import Client
from maxsdk.integrations import stop_on_sigterm
from maxsdk.integrations.django import _config, get_client, listen


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    """Join ``settings.MAXSDK["TOPICS"]`` (or ``--topic``) and dispatch events to receivers."""

    help = "Join realtime topics and send maxsdk.integrations.django.event_received for every event."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--topic``, ``--event``, ``--count``, ``--duration``."""
        parser.add_argument(
            "--topic",
            action="append",
            default=[],
            metavar="TOPIC",
            help='topic to join (repeatable; default: settings.MAXSDK["TOPICS"])',
        )
        parser.add_argument(
            "--event", action="append", default=[], metavar="NAME", help="only dispatch these events (repeatable)"
        )
        parser.add_argument("--count", type=int, default=None, metavar="N", help="exit after N events")
        parser.add_argument("--duration", type=float, default=None, metavar="S", help="exit after S seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        """Listen until Ctrl-C, SIGTERM, ``--count`` or ``--duration``."""
        topics: Any = options["topic"] or _config().get("TOPICS")
        stop = threading.Event()
        restore = stop_on_sigterm(stop)
        client = get_client()
        client.on_signal(signals.state_changed, self._state_changed)

        def joined(channel: Channel) -> None:
            self.stdout.write(f"listening to {channel.topic}")
            self.stdout.flush()

        try:
            result = listen(
                topics,
                events=options["event"] or None,
                stop=stop,
                count=options["count"],
                duration=options["duration"],
                joined=joined,
            )
        except KeyboardInterrupt:
            self.stderr.write("interrupted")
            return
        finally:
            client.off_signal(signals.state_changed, self._state_changed)
            restore()
        self.stdout.write(f"stopped ({result.detail}); {result.handled} event(s) dispatched")
        if not result.ok:
            raise CommandError(result.detail, returncode=1)

    def _state_changed(self, _client: Client, **kwargs: Any) -> None:
        self.stderr.write(f"[{kwargs['new']}] {kwargs['reason']}")
