"""The Flask extension: init_app idiom, pushing from views, app-context handlers, the CLI."""

from __future__ import annotations

import threading

import pytest

flask = pytest.importorskip("flask")

from flask import Flask, current_app, g  # noqa: E402

import maxsdk  # noqa: E402
from maxsdk.integrations.flask import Maxsdk, with_app_context  # noqa: E402

FAST = {
    "timeout": 3.0,
    "connect_timeout": 3.0,
    "reconnect": maxsdk.Backoff(steps=(0.01, 0.05), jitter="none"),
    "rejoin": maxsdk.Backoff(steps=(0.05,), jitter="none"),
}


def make_app(url, ext=None, **config):
    app = Flask("flask_test_app")
    app.config.update(MAXSDK_URL=url, MAXSDK_OPTIONS=FAST, **config)
    ext = ext or Maxsdk()
    ext.init_app(app)

    @app.post("/push/<event>")
    def push(event):
        reply = ext.push("room:lobby", event, flask.request.get_json())
        return {"status": reply.status, "response": reply.response}

    return app, ext


@pytest.fixture
def app(phoenix_server):
    app, ext = make_app(phoenix_server.url)
    yield app, ext
    ext.close(app)


def test_init_app_sets_defaults_and_connects_lazily(app, phoenix_server):
    flask_app, ext = app
    assert flask_app.config["MAXSDK_TOPICS"] == [] and flask_app.config["MAXSDK_EAGER"] is False
    assert isinstance(flask_app.extensions["maxsdk"], object)
    assert phoenix_server.events() == []
    with flask_app.app_context():
        assert ext.client.connected
    assert ext.get_client(flask_app) is ext.process_client(flask_app).current


def test_a_view_pushes_through_the_test_client(app, phoenix_server):
    flask_app, _ = app
    with flask_app.test_client() as http:
        first = http.post("/push/echo", json={"n": 1})
        second = http.post("/push/echo", json={"n": 2})
    assert first.status_code == 200 and first.get_json() == {"status": "ok", "response": {"n": 1}}
    assert second.get_json()["response"] == {"n": 2}
    assert len([m for m in phoenix_server.messages() if m.event == "phx_join"]) == 1


def test_the_extension_object_form(phoenix_server):
    flask_app = Flask("direct")
    flask_app.config.update(MAXSDK_URL=phoenix_server.url, MAXSDK_OPTIONS=FAST)
    ext = Maxsdk(flask_app)
    try:
        assert ext.push("echo:1", "hi", {"a": 1}, app=flask_app).response == {"a": 1}
    finally:
        ext.close(flask_app)


def test_outside_an_app_context_the_error_is_clear(app):
    _, ext = app
    with pytest.raises(RuntimeError):
        ext.client  # noqa: B018


def test_an_app_that_was_not_initialised_is_refused(phoenix_server):
    ext = Maxsdk()
    with Flask("other").app_context(), pytest.raises(RuntimeError, match="init_app"):
        ext.client  # noqa: B018


def test_two_apps_get_two_clients(phoenix_server):
    ext = Maxsdk()
    first, _ = make_app(phoenix_server.url, ext)
    second, _ = make_app(phoenix_server.url, ext)
    try:
        assert ext.get_client(first) is not ext.get_client(second)
    finally:
        ext.close(first)
        ext.close(second)


def test_eager_connects_in_init_app(phoenix_server):
    flask_app, ext = make_app(phoenix_server.url, MAXSDK_EAGER=True)
    try:
        assert ext.process_client(flask_app).current is not None
        phoenix_server.wait_for_connections(1)
    finally:
        ext.close(flask_app)


def test_missing_url_is_a_configuration_error():
    flask_app, ext = make_app(None)
    with pytest.raises(maxsdk.ConfigurationError, match="MAXSDK_URL"):
        ext.get_client(flask_app)


def listen_in_thread(ext, flask_app, **kwargs):
    """Run ext.listen in a thread; return (thread, joined event, results)."""
    joined, results = threading.Event(), []
    thread = threading.Thread(
        target=lambda: results.append(ext.listen(flask_app, joined=lambda channel: joined.set(), **kwargs))
    )
    thread.start()
    return thread, joined, results


def test_handlers_run_inside_an_app_context(app, phoenix_server):
    flask_app, ext = app
    got = []

    @ext.on("shout", topic="room:lobby")
    def on_shout(payload):
        g.seen = payload
        got.append((current_app.name, payload, g.seen, threading.current_thread().name))

    assert ext.topics(flask_app) == {"room:lobby": None}
    thread, joined, results = listen_in_thread(ext, flask_app, events=["shout"], count=1)
    assert joined.wait(5)
    phoenix_server.broadcast("room:lobby", "shout", {"n": 1})
    thread.join(10)
    assert got == [("flask_test_app", {"n": 1}, {"n": 1}, got[0][3])]
    assert got[0][3].endswith("-dispatch")
    assert results[0].reason == "count"


def test_a_failing_handler_is_logged_and_the_others_run(app, phoenix_server, caplog):
    flask_app, ext = app
    got = []

    @ext.on("shout", topic="room:*")
    def broken(payload):
        raise RuntimeError("handler bug")

    @ext.on(topic="room:*")
    def fine(payload):
        got.append(payload)

    thread, joined, _ = listen_in_thread(ext, flask_app, topics=["room:lobby"], events=["shout"], count=1)
    assert joined.wait(5)
    phoenix_server.broadcast("room:lobby", "shout", {"n": 2})
    thread.join(10)
    assert got == [{"n": 2}]
    assert "handler bug" in caplog.text


def test_listen_needs_topics(app):
    flask_app, ext = app
    with pytest.raises(maxsdk.ConfigurationError, match="nothing to listen to"):
        ext.listen(flask_app)


def test_the_flask_maxsdk_listen_command(app, phoenix_server):
    flask_app, ext = app
    got = []
    ext.on("shout", topic="room:lobby")(got.append)
    runner = flask_app.test_cli_runner()
    results = []
    thread = threading.Thread(
        target=lambda: results.append(runner.invoke(args=["maxsdk", "listen", "--event", "shout", "--count", "1"]))
    )
    thread.start()
    phoenix_server.wait_for_message(event="phx_join", topic="room:lobby")
    channel = ext.process_client(flask_app).channel("room:lobby")
    with channel.expect("presence_state") as synced:  # the server pushes it once the join is done
        if not channel.presence.synced:
            synced.wait(5)
    phoenix_server.broadcast("room:lobby", "shout", {"n": 3})
    thread.join(10)
    assert got == [{"n": 3}]
    assert results[0].exit_code == 0, results[0].output
    assert "listening to room:lobby" in results[0].output
    assert "1 event(s) handled" in results[0].output


def test_with_app_context_wraps_handlers_attached_by_hand(app, phoenix_server):
    flask_app, ext = app
    got = []
    with flask_app.app_context():
        room = ext.channel("room:lobby")
        handler = with_app_context(lambda payload: got.append((current_app.name, payload)))
    with room.expect("shout") as shout:
        room.on("shout", handler)
        phoenix_server.broadcast("room:lobby", "shout", {"n": 4})
        shout.wait(5)
    with_app_context(lambda: None, flask_app)()  # explicit app works outside a context too
    assert got == [("flask_test_app", {"n": 4})]
