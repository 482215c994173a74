"""The Django integration: settings, pushing, receivers, the maxsdk_listen command, process detection."""

from __future__ import annotations

import io
import threading

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

import maxsdk  # noqa: E402
from maxsdk.integrations import django as maxsdk_django  # noqa: E402

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["maxsdk.integrations.django"],
        DATABASES={},
        MAXSDK={"URL": "ws://127.0.0.1:9/socket"},
    )
    django.setup()

FAST = {
    "timeout": 3.0,
    "connect_timeout": 3.0,
    "reconnect": maxsdk.Backoff(steps=(0.01, 0.05), jitter="none"),
    "rejoin": maxsdk.Backoff(steps=(0.05,), jitter="none"),
}

PARAMS_CALLS: list[int] = []


def connect_params():
    """Referenced by dotted path from the settings below."""
    PARAMS_CALLS.append(1)
    return {"user_id": "from-dotted-path"}


@pytest.fixture
def configured(phoenix_server):
    with override_settings(MAXSDK={"URL": phoenix_server.url, "OPTIONS": FAST, "TOPICS": ["room:lobby"]}):
        yield phoenix_server
    maxsdk_django.close()


@pytest.fixture
def receivers():
    """Connect receivers for one test only."""
    connected = []

    def connect(fn, **kwargs):
        maxsdk_django.event_received.connect(fn, weak=False, **kwargs)
        connected.append((fn, kwargs.get("dispatch_uid")))
        return fn

    yield connect
    for fn, uid in connected:
        maxsdk_django.event_received.disconnect(fn, dispatch_uid=uid)


def test_push_from_anywhere_joins_once_and_reuses_the_connection(configured):
    assert maxsdk_django.push("room:lobby", "echo", {"n": 1}).response == {"n": 1}
    assert maxsdk_django.push("room:lobby", "echo", {"n": 2}).response == {"n": 2}
    assert maxsdk_django.channel("room:lobby") is maxsdk_django.channel("room:lobby")
    assert len([e for e in configured.events() if e.kind == "opened"]) == 1
    assert len([m for m in configured.messages() if m.event == "phx_join"]) == 1


def test_error_replies_raise(configured):
    with pytest.raises(maxsdk.ReplyError) as info:
        maxsdk_django.push("room:lobby", "echo_error", {"why": "test"})
    assert info.value.response == {"why": "test"}


def test_params_may_be_a_dotted_path_evaluated_per_connection(phoenix_server):
    PARAMS_CALLS.clear()
    config = {"URL": phoenix_server.url, "PARAMS": f"{__name__}.connect_params", "OPTIONS": FAST}
    with override_settings(MAXSDK=config):
        maxsdk_django.get_client()
        opened = phoenix_server.wait_for_event(lambda e: e.kind == "opened")
        assert opened.params["user_id"] == "from-dotted-path"
        assert PARAMS_CALLS == [1]
    maxsdk_django.close()


def test_changing_the_settings_replaces_the_client(configured, phoenix_server_factory):
    first = maxsdk_django.get_client()
    other = phoenix_server_factory()
    with override_settings(MAXSDK={"URL": other.url, "OPTIONS": FAST}):
        second = maxsdk_django.get_client()
        assert second is not first and first.closed
        other.wait_for_connections(1)
    assert maxsdk_django.get_client() not in (first, second)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "must be a dict"),
        ({"PARAMS": {}}, "URL.* is required"),
        ({"URL": "ws://x/socket", "TOPCIS": []}, "unknown key"),
        ({"URL": "ws://x/socket", "OPTIONS": {"no_such_option": 1}}, "no_such_option"),
    ],
)
def test_bad_settings_are_reported_as_improperly_configured(config, message):
    with override_settings(MAXSDK=config), pytest.raises(ImproperlyConfigured, match=message):
        maxsdk_django.get_client()


def test_on_event_filters_by_event_and_topic_pattern(configured, receivers):
    got = []
    done = threading.Event()

    @maxsdk_django.on_event("shout", topic="room:*")
    def on_shout(sender, *, topic, event, payload, channel, **kwargs):
        got.append((sender, topic, event, payload, channel.topic, threading.current_thread().name))
        done.set()

    receivers(on_shout, dispatch_uid=f"{on_shout.__module__}.{on_shout.__qualname__}")
    joined = threading.Event()
    results = []
    thread = threading.Thread(
        target=lambda: results.append(
            maxsdk_django.listen(
                ["room:lobby", "echo:1"], events=["shout", "other"], count=3, joined=_when("echo:1", joined)
            )
        )
    )
    thread.start()
    assert joined.wait(5)
    configured.broadcast("echo:1", "shout", {"wrong": "topic"})
    configured.broadcast("room:lobby", "other", {"wrong": "event"})
    configured.broadcast("room:lobby", "shout", {"right": True})
    thread.join(10)
    assert results and results[0].reason == "count"
    assert len(got) == 1
    sender, topic, event, payload, channel_topic, thread_name = got[0]
    assert (sender, topic, event, payload, channel_topic) == (
        maxsdk.Channel,
        "room:lobby",
        "shout",
        {"right": True},
        "room:lobby",
    )
    assert thread_name.endswith("-dispatch")  # the client's dispatcher thread


def _when(topic, event):
    return lambda channel: event.set() if channel.topic == topic else None


def test_a_failing_receiver_is_logged_and_does_not_stop_the_others(configured, receivers, caplog):
    got = []

    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    receivers(broken)
    receivers(lambda sender, **kwargs: got.append(kwargs["payload"]))
    joined = threading.Event()
    thread = threading.Thread(
        target=lambda: maxsdk_django.listen(events=["shout"], count=1, joined=_when("room:lobby", joined))
    )
    thread.start()
    assert joined.wait(5)
    configured.broadcast("room:lobby", "shout", {"n": 1})
    thread.join(10)
    assert got == [{"n": 1}]
    assert "receiver bug" in caplog.text


class Output(io.StringIO):
    """A command's stdout that tells when the command is listening."""

    def __init__(self):
        super().__init__()
        self.listening = threading.Event()

    def write(self, text):
        if "listening to" in text:
            self.listening.set()
        return super().write(text)


def run_command(*args, **options):
    """Run maxsdk_listen in a thread; return (thread, stdout, errors)."""
    out, errors = Output(), []

    def run():
        try:
            call_command("maxsdk_listen", *args, stdout=out, stderr=io.StringIO(), **options)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out, errors


def test_the_maxsdk_listen_command_dispatches_until_count(configured, receivers):
    got = []
    receivers(lambda sender, **kwargs: got.append((kwargs["topic"], kwargs["event"], kwargs["payload"])))
    thread, out, errors = run_command(event=["shout"], count=1)
    assert out.listening.wait(5)
    configured.broadcast("room:lobby", "shout", {"n": 1})
    thread.join(10)
    assert errors == []
    assert got == [("room:lobby", "shout", {"n": 1})]
    assert "listening to room:lobby" in out.getvalue()
    assert "1 event(s) dispatched" in out.getvalue()


def test_the_command_fails_when_the_server_closes_the_channel(configured):
    thread, out, errors = run_command(topic=["room:lobby"])
    assert out.listening.wait(5)
    maxsdk_django.process_client.channel("room:lobby").push_nowait("close_channel")
    thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], CommandError)
    assert "room:lobby closed" in str(errors[0]) and errors[0].returncode == 1


def test_listen_without_topics_is_improperly_configured(phoenix_server):
    with override_settings(MAXSDK={"URL": phoenix_server.url}), pytest.raises(ImproperlyConfigured, match="TOPICS"):
        maxsdk_django.listen()


@pytest.mark.parametrize(
    ("argv", "environ", "parent", "serving"),
    [
        (["manage.py", "runserver"], {}, True, False),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, False, True),
        (["manage.py", "runserver", "--noreload"], {}, False, True),
        (["manage.py", "migrate"], {}, False, False),
        (["manage.py", "maxsdk_listen"], {}, False, False),
        (["/venv/bin/gunicorn", "project.wsgi"], {}, False, True),
        (["uwsgi", "--ini", "app.ini"], {}, False, True),
    ],
)
def test_process_detection(argv, environ, parent, serving):
    assert maxsdk_django.is_reloader_parent(argv, environ) is parent
    assert maxsdk_django.is_serving_process(argv, environ) is serving


def test_eager_connects_at_startup_only_in_a_serving_process(phoenix_server, monkeypatch):
    config = {"URL": phoenix_server.url, "OPTIONS": FAST, "EAGER": True}
    with override_settings(MAXSDK=config):
        monkeypatch.setattr("sys.argv", ["manage.py", "runserver"])
        monkeypatch.delenv("RUN_MAIN", raising=False)
        maxsdk_django._ready()
        assert maxsdk_django.process_client.current is None  # the reloader parent never connects
        monkeypatch.setenv("RUN_MAIN", "true")
        maxsdk_django._ready()
        assert maxsdk_django.process_client.current is not None
    assert maxsdk_django.process_client.current is None  # the settings change closed it
