"""Django integration: one client per process, configured in settings; events as Django signals.

Install the app and configure it::

    INSTALLED_APPS = [..., "maxsdk.integrations.django"]

    MAXSDK = {
        "URL": "wss://realtime.example.com/socket",
        "PARAMS": "myproject.realtime.connect_params",  # a mapping, a callable or its dotted path
        "OPTIONS": {"timeout": 5.0},                    # any other maxsdk.Client keyword argument
        "TOPICS": ["orders:lobby"],                     # joined by `manage.py maxsdk_listen`
    }

Push from a view (the first call in a process connects; later calls reuse
the connection and the joined channel)::

    from maxsdk.integrations.django import push

    def ship(request, order_id):
        reply = push("orders:lobby", "shipped", {"id": order_id})
        return JsonResponse(reply.response)

React to incoming events with signal receivers, run by the
``manage.py maxsdk_listen`` process (import the module in your
``AppConfig.ready()``)::

    from maxsdk.integrations.django import on_event

    @on_event("new_order", topic="orders:*")
    def store(sender, *, topic, event, payload, **kwargs):
        Order.objects.create(**payload)

Settings (``settings.MAXSDK``):

* ``URL`` (required): the socket endpoint.
* ``PARAMS``: connect params: a mapping, a zero-argument callable (called on
  every connection attempt: renew tokens there), or the dotted path of one.
* ``OPTIONS``: other :class:`~maxsdk.Client` keyword arguments
  (``timeout``, ``auth_token``, ``reconnect``, ``name``...).
* ``TOPICS``: what ``maxsdk_listen`` joins: a list of topics, or a mapping
  of topic to join params.
* ``EAGER``: connect when Django starts (``AppConfig.ready()``) instead of on
  first use, so a wrong URL or token fails at startup. Skipped in
  ``runserver``'s autoreloader parent and in other management commands.

Processes: the client is created lazily in the process that uses it, so
``runserver``'s autoreloader parent (which never serves requests) and
commands like ``migrate`` never connect. Under gunicorn or uWSGI each worker
gets its own client, also with ``--preload`` (uWSGI: without
``lazy-apps``), where a client created in the master before the fork is
replaced in each worker on first use. Changing ``settings.MAXSDK`` (for
example with ``override_settings`` in tests) closes the client; the next use
makes one with the new settings.

Threads: receivers of :data:`event_received` run on the client's dispatcher
thread, one event at a time, with Django's database connections handled as
for a request (``close_old_connections()`` before and after each event).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Callable, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from maxsdk.channel import Channel
from maxsdk.client import Client
from maxsdk.integrations import ListenResult, ProcessClient, topic_matches
from maxsdk.integrations import listen as _listen
from maxsdk.reply import Reply

__all__ = [
    "channel",
    "close",
    "event_received",
    "get_client",
    "is_reloader_parent",
    "is_serving_process",
    "listen",
    "on_event",
    "process_client",
    "push",
]

log = logging.getLogger("maxsdk.integrations.django")

F = TypeVar("F", bound=Callable[..., Any])

SETTING = "MAXSDK"
_KEYS = frozenset({"URL", "PARAMS", "OPTIONS", "TOPICS", "EAGER"})

#: Sent for every event a listening process receives (``manage.py maxsdk_listen``
#: or :func:`listen`). ``sender`` is the :class:`maxsdk.Channel` class; keyword
#: arguments: ``channel`` (the :class:`~maxsdk.Channel`), ``topic``, ``event``,
#: ``payload``. Receivers run on the client's dispatcher thread, in arrival order.
event_received = Signal()


def _config() -> Mapping[str, Any]:
    from django.conf import settings

    config = getattr(settings, SETTING, None)
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTING} must be a dict with at least a 'URL'")
    unknown = set(config) - _KEYS
    if unknown:
        raise ImproperlyConfigured(f"unknown key(s) in settings.{SETTING}: {', '.join(sorted(unknown))}")
    if not config.get("URL"):
        raise ImproperlyConfigured(f"settings.{SETTING}['URL'] is required")
    return config


def _make_client() -> Client:
    from django.utils.module_loading import import_string

    config = _config()
    params = config.get("PARAMS")
    if isinstance(params, str):
        params = import_string(params)
    options = config.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTING}['OPTIONS'] must be a dict of maxsdk.Client arguments")
    try:
        return Client(config["URL"], params=params, **options)
    except TypeError as exc:
        raise ImproperlyConfigured(f"settings.{SETTING}['OPTIONS']: {exc}") from exc


#: The :class:`~maxsdk.integrations.ProcessClient` behind this module's functions.
process_client = ProcessClient(_make_client)


def get_client() -> Client:
    """The process's :class:`~maxsdk.Client`, connected on first use (see :class:`ProcessClient.get`)."""
    return process_client.get()


def channel(topic: str, params: Any = None, *, timeout: float | None = None) -> Channel:
    """The process's joined :class:`~maxsdk.Channel` for ``topic`` (joined on first use, then reused)."""
    return process_client.join(topic, params, timeout=timeout)


def push(topic: str, event: str, payload: Any = None, *, timeout: float | None = None) -> Reply:
    """Push ``event`` on ``topic`` (joining it first if needed) and block for the reply.

    Raises:
        ReplyError: the server replied ``error``.
        ReplyTimeoutError: no reply in time (``ReplyLostError`` if the
            connection dropped after the push was sent: it may or may not
            have been processed).
        JoinError: the topic could not be joined.

    """
    return process_client.push(topic, event, payload, timeout=timeout)


def close(timeout: float | None = None) -> None:
    """Close the process's client; the next use creates a new one."""
    process_client.close(timeout)


def on_event(*events: str, topic: str | None = None) -> Callable[[F], F]:
    """Connect a receiver to :data:`event_received` for some events and topics only.

    ::

        @on_event("new_msg", "edited", topic="room:*")
        def handle(sender, *, topic, event, payload, channel, **kwargs): ...

    The receiver is held strongly and connected once per function, even if
    its module is imported twice.

    Args:
        events: event names (none: every event).
        topic: a topic, or a ``"prefix*"`` pattern (none: every topic).

    """

    def decorator(fn: F) -> F:
        def receiver(sender: Any, **kwargs: Any) -> Any:
            if events and kwargs.get("event") not in events:
                return None
            if topic is not None and not topic_matches(topic, str(kwargs.get("topic"))):
                return None
            return fn(sender, **kwargs)

        event_received.connect(receiver, weak=False, dispatch_uid=f"{fn.__module__}.{fn.__qualname__}")
        return fn

    return decorator


def _send_event(channel: Channel, event: str, payload: Any) -> None:
    """Dispatch one event to the receivers, with request-like database connection handling."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        responses = event_received.send_robust(
            sender=Channel, channel=channel, topic=channel.topic, event=event, payload=payload
        )
    finally:
        close_old_connections()
    for receiver, response in responses:
        if isinstance(response, Exception):
            log.error(
                "receiver %r failed on %s %s",
                receiver,
                channel.topic,
                event,
                exc_info=(type(response), response, response.__traceback__),
            )


def listen(
    topics: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    events: Sequence[str] | None = None,
    stop: threading.Event | None = None,
    count: int | None = None,
    duration: float | None = None,
    joined: Callable[[Channel], Any] | None = None,
) -> ListenResult:
    """Join topics and send :data:`event_received` for each event until stopped (blocks).

    What ``manage.py maxsdk_listen`` runs; see :func:`maxsdk.integrations.listen`
    for the arguments. ``topics`` defaults to ``settings.MAXSDK["TOPICS"]``.

    Raises:
        ImproperlyConfigured: no topics to join.

    """
    if topics is None:
        topics = _config().get("TOPICS") or []
    if not topics:
        raise ImproperlyConfigured(f"nothing to listen to: set settings.{SETTING}['TOPICS'] or pass topics")
    return _listen(
        process_client,
        topics,
        _send_event,
        events=events,
        stop=stop,
        count=count,
        duration=duration,
        joined=joined,
    )


def is_reloader_parent(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this is ``runserver``'s autoreloader parent: a process that watches files and never serves.

    With autoreload (the default), ``manage.py runserver`` starts a child
    with ``RUN_MAIN=true`` that serves requests, and restarts it when code
    changes; both processes run ``AppConfig.ready()``.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    return len(argv) > 1 and argv[1] == "runserver" and "--noreload" not in argv and environ.get("RUN_MAIN") != "true"


def is_serving_process(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process serves requests: not runserver's reloader parent nor another manage.py command.

    WSGI/ASGI servers (gunicorn, uWSGI, daphne...) count as serving.
    """
    argv = sys.argv if argv is None else argv
    if is_reloader_parent(argv, environ):
        return False
    program = os.path.basename(argv[0]) if argv else ""
    if program in ("manage.py", "django-admin", "django-admin.py", "__main__.py") and len(argv) > 1:
        return argv[1] == "runserver"
    return True


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        process_client.close()


def _ready() -> None:
    """Called by the app config when Django starts."""
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="maxsdk.integrations.django.setting_changed")
    from django.conf import settings

    config = getattr(settings, SETTING, None)
    if isinstance(config, Mapping) and config.get("EAGER") and is_serving_process():
        log.info("connecting at startup (settings.%s['EAGER'])", SETTING)
        get_client()
