"""Flask integration: the :class:`Maxsdk` extension (one client per process, handlers in an app context).

::

    from flask import Flask
    from maxsdk.integrations.flask import Maxsdk

    realtime = Maxsdk()

    def create_app():
        app = Flask(__name__)
        app.config["MAXSDK_URL"] = "wss://realtime.example.com/socket"
        app.config["MAXSDK_PARAMS"] = {"token": "..."}
        realtime.init_app(app)
        return app

    @app.post("/orders/<int:order_id>/ship")
    def ship(order_id):
        return realtime.push("orders:lobby", "shipped", {"id": order_id}).response

    @realtime.on("new_order", topic="orders:lobby")
    def store(payload):                     # runs inside app.app_context()
        current_app.logger.info("new order %s", payload["id"])

Configuration keys:

* ``MAXSDK_URL`` (required): the socket endpoint.
* ``MAXSDK_PARAMS``: connect params: a mapping, a zero-argument callable
  (called on every connection attempt) or its dotted import path.
* ``MAXSDK_OPTIONS``: other :class:`~maxsdk.Client` keyword arguments.
* ``MAXSDK_TOPICS``: extra topics :meth:`Maxsdk.listen` joins (a list, or a
  mapping of topic to join params); the topics of :meth:`Maxsdk.on` handlers
  are joined anyway.
* ``MAXSDK_EAGER``: connect in :meth:`Maxsdk.init_app` instead of on first
  use, so a wrong URL or token fails at startup.

Processes and threads: the client is created on first use in the process
that uses it, once even under concurrent requests, replaced after a fork
(gunicorn ``--preload``, uWSGI without ``lazy-apps``) and closed at exit:
see :class:`~maxsdk.integrations.ProcessClient`. Handlers registered with
:meth:`Maxsdk.on` run in the listening process (``flask maxsdk listen``) on
the client's dispatcher thread, where no app context exists: the extension
pushes ``app.app_context()`` around each call, so ``current_app``,
``flask.g`` and extensions such as Flask-SQLAlchemy work there. Use
:func:`with_app_context` for handlers you attach to a channel yourself.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple, TypeVar, cast

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from maxsdk.channel import Channel
from maxsdk.client import Client
from maxsdk.errors import ConfigurationError
from maxsdk.integrations import ListenResult, ProcessClient, stop_on_sigterm, topic_matches
from maxsdk.integrations import listen as _listen
from maxsdk.reply import Reply

__all__ = ["Maxsdk", "with_app_context"]

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION = "maxsdk"
_DEFAULTS: dict[str, Any] = {
    "MAXSDK_URL": None,
    "MAXSDK_PARAMS": None,
    "MAXSDK_OPTIONS": {},
    "MAXSDK_TOPICS": [],
    "MAXSDK_EAGER": False,
}


def with_app_context(fn: F, app: Flask | None = None) -> F:
    """Wrap ``fn`` so that each call runs inside ``app.app_context()``.

    Handlers run on the client's dispatcher thread, outside any request or
    app context; wrap those that use ``current_app``, ``g`` or an extension::

        room.on("new_msg", with_app_context(save_message, app))

    Args:
        fn: the handler.
        app: the application (default: ``current_app``, resolved now, so
            call this inside an app context, e.g. in your app factory).

    """
    target = app if app is not None else _current_app()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with target.app_context():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _current_app() -> Flask:
    """The real application behind the ``current_app`` proxy (RuntimeError outside an app context)."""
    return cast(Flask, cast(Any, current_app)._get_current_object())


class _Handler(NamedTuple):
    events: frozenset[str]
    topic: str
    fn: Callable[[Any], Any]


class _AppState:
    """What the extension keeps per application: its process client."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.holder = ProcessClient(functools.partial(_make_client, app))


def _make_client(app: Flask) -> Client:
    config = app.config
    url = config.get("MAXSDK_URL")
    if not url:
        raise ConfigurationError("set MAXSDK_URL in the Flask config")
    params = config.get("MAXSDK_PARAMS")
    if isinstance(params, str):
        from werkzeug.utils import import_string

        params = import_string(params)
    options = config.get("MAXSDK_OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError("MAXSDK_OPTIONS must be a dict of maxsdk.Client arguments")
    try:
        return Client(url, params=params, **options)
    except TypeError as exc:
        raise ConfigurationError(f"MAXSDK_OPTIONS: {exc}") from exc


class Maxsdk:
    """The Flask extension: ``Maxsdk(app)`` or ``realtime = Maxsdk()`` then ``realtime.init_app(app)``.

    One extension object may serve several apps (each gets its own client).
    Methods taking ``app=`` default to ``current_app``.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._handlers: list[_Handler] = []
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``: config defaults, the ``flask maxsdk`` commands.

        Connects at once when ``MAXSDK_EAGER`` is true.
        """
        for key, value in _DEFAULTS.items():
            app.config.setdefault(key, value)
        state = _AppState(app)
        app.extensions[EXTENSION] = state
        app.cli.add_command(self._cli())
        if app.config["MAXSDK_EAGER"]:
            state.holder.get()

    def _state(self, app: Flask | None) -> _AppState:
        target = app if app is not None else _current_app()
        state = target.extensions.get(EXTENSION)
        if not isinstance(state, _AppState):
            raise RuntimeError(f"maxsdk is not initialised on {target.name!r}: call init_app(app) first")
        return state

    # -- using the client -------------------------------------------------------------

    def process_client(self, app: Flask | None = None) -> ProcessClient:
        """The :class:`~maxsdk.integrations.ProcessClient` of ``app``."""
        return self._state(app).holder

    @property
    def client(self) -> Client:
        """The current app's client in this process, connected on first use."""
        return self._state(None).holder.get()

    def get_client(self, app: Flask | None = None) -> Client:
        """The app's client in this process, connected on first use."""
        return self._state(app).holder.get()

    def channel(
        self, topic: str, params: Any = None, *, timeout: float | None = None, app: Flask | None = None
    ) -> Channel:
        """The process's joined :class:`~maxsdk.Channel` for ``topic`` (joined on first use, then reused)."""
        return self._state(app).holder.join(topic, params, timeout=timeout)

    def push(
        self,
        topic: str,
        event: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        app: Flask | None = None,
    ) -> Reply:
        """Push ``event`` on ``topic`` (joining it first if needed) and block for the reply.

        Raises:
            ReplyError: the server replied ``error``.
            ReplyTimeoutError: no reply in time (``ReplyLostError`` if the
                connection dropped after sending: it may have been processed).
            JoinError: the topic could not be joined.

        """
        return self._state(app).holder.push(topic, event, payload, timeout=timeout)

    def close(self, app: Flask | None = None) -> None:
        """Close the app's client in this process; the next use creates a new one."""
        self._state(app).holder.close()

    # -- incoming events ------------------------------------------------------------------

    def on(self, *events: str, topic: str) -> Callable[[F], F]:
        """Register ``handler(payload)`` for ``events`` on ``topic``, run by :meth:`listen` in an app context.

        ``topic`` may be a ``"prefix*"`` pattern; the topics to join then come
        from ``MAXSDK_TOPICS``. With no ``events``, the handler sees every
        event of the topic.
        """
        if not topic:
            raise ConfigurationError("on() needs a topic")

        def decorator(fn: F) -> F:
            with self._lock:
                self._handlers.append(_Handler(frozenset(events), topic, fn))
            return fn

        return decorator

    def topics(self, app: Flask | None = None) -> dict[str, Any]:
        """What :meth:`listen` joins: ``MAXSDK_TOPICS`` plus every concrete handler topic (topic → params)."""
        configured = self._state(app).app.config.get("MAXSDK_TOPICS") or []
        topics: dict[str, Any] = (
            dict(configured) if isinstance(configured, Mapping) else {topic: None for topic in configured}
        )
        with self._lock:
            for handler in self._handlers:
                if not handler.topic.endswith("*"):
                    topics.setdefault(handler.topic, None)
        return topics

    def listen(
        self,
        app: Flask | None = None,
        *,
        topics: Sequence[str] | Mapping[str, Any] | None = None,
        events: Sequence[str] | None = None,
        stop: threading.Event | None = None,
        count: int | None = None,
        duration: float | None = None,
        joined: Callable[[Channel], Any] | None = None,
    ) -> ListenResult:
        """Join the topics and run the :meth:`on` handlers for each event until stopped (blocks).

        What ``flask maxsdk listen`` runs; see
        :func:`maxsdk.integrations.listen` for the arguments. A handler that
        raises is logged with ``app.logger`` and does not stop the others.
        """
        state = self._state(app)
        flask_app = state.app
        chosen = self.topics(flask_app) if topics is None else topics
        if not chosen:
            raise ConfigurationError("nothing to listen to: set MAXSDK_TOPICS or register handlers with on()")

        def dispatch(channel: Channel, event: str, payload: Any) -> None:
            with self._lock:
                handlers = [
                    h
                    for h in self._handlers
                    if (not h.events or event in h.events) and topic_matches(h.topic, channel.topic)
                ]
            if not handlers:
                return
            with flask_app.app_context():
                for handler in handlers:
                    try:
                        handler.fn(payload)
                    except Exception:
                        flask_app.logger.exception(
                            "maxsdk handler %r failed on %s %s", handler.fn, channel.topic, event
                        )

        return _listen(
            state.holder,
            chosen,
            dispatch,
            events=events,
            stop=stop,
            count=count,
            duration=duration,
            joined=joined,
        )

    # -- the command line -------------------------------------------------------------------

    def _cli(self) -> click.Group:
        group = AppGroup(EXTENSION, help="Realtime (maxsdk) commands.")

        @group.command("listen")
        @click.option("--topic", "topics", multiple=True, help="topic to join (default: MAXSDK_TOPICS and handlers)")
        @click.option("--event", "events", multiple=True, help="only handle these events")
        @click.option("--count", type=int, default=None, help="exit after N events")
        @click.option("--duration", type=float, default=None, help="exit after S seconds")
        def listen_command(
            topics: tuple[str, ...], events: tuple[str, ...], count: int | None, duration: float | None
        ) -> None:
            """Join realtime topics and run the registered handlers until Ctrl-C or SIGTERM."""
            stop = threading.Event()
            restore = stop_on_sigterm(stop)
            try:
                result = self.listen(
                    topics=list(topics) or None,
                    events=list(events) or None,
                    stop=stop,
                    count=count,
                    duration=duration,
                    joined=lambda channel: click.echo(f"listening to {channel.topic}"),
                )
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                return
            finally:
                restore()
            click.echo(f"stopped ({result.detail}); {result.handled} event(s) handled")
            if not result.ok:
                raise SystemExit(1)

        return group
