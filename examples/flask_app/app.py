"""A small Flask app that talks to a Phoenix server through the ``Maxsdk`` extension.

It shows:

* the extension in the app-factory idiom (``realtime.init_app(app)``) with
  ``MAXSDK_*`` config keys, and connect params evaluated per process (each
  worker is tracked as ``web-<pid>``);
* pushing from a view (``POST /shout``) and reading presence (``GET /workers``);
* a handler that touches the app (``@realtime.on``): it runs in an app
  context, reads ``current_app.config`` and writes SQLite; ``GET /messages``
  shows what it stored;
* one live connection per gunicorn worker, ``--preload`` included.

One process, no setup (embedded server + web app + listener thread)::

    python examples/flask_app/app.py
    curl -X POST 127.0.0.1:5000/shout -H 'content-type: application/json' -d '{"body": "hi"}'
    curl 127.0.0.1:5000/messages

The production shape: web workers plus one listener process, one server::

    maxsdk serve --port 4000 &
    export MAXSDK_URL=ws://127.0.0.1:4000/socket
    gunicorn --chdir examples/flask_app -w 2 --preload 'app:create_app()'
    flask --app examples/flask_app/app.py maxsdk listen
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

import maxsdk
from maxsdk.integrations.flask import Maxsdk

realtime = Maxsdk()
bp = Blueprint("chat", __name__)


def connect_params() -> dict[str, str]:
    """Evaluated on every connection attempt, in the process that connects (so each worker has its own pid)."""
    return {"user_id": f"web-{os.getpid()}"}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app factory (gunicorn: ``'app:create_app()'``)."""
    app = Flask(__name__)
    app.config.from_mapping(
        MAXSDK_URL=os.environ.get("MAXSDK_URL"),
        MAXSDK_PARAMS=connect_params,
        MAXSDK_OPTIONS={"timeout": 5.0},
        MAXSDK_EAGER=os.environ.get("MAXSDK_EAGER") == "1",  # connect at startup (fail fast on a bad URL)
        DATABASE=os.environ.get("CHAT_DATABASE") or os.path.join(tempfile.gettempdir(), "maxsdk-flask-chat.sqlite3"),
    )
    app.config.update(config or {})
    with sqlite3.connect(app.config["DATABASE"]) as db:
        db.execute("CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY, user TEXT, body TEXT)")
    realtime.init_app(app)
    app.register_blueprint(bp)
    return app


# -- handlers: run by the listening process, inside an app context -----------------------------


@realtime.on("shout", topic="room:lobby")
def store_message(payload: dict[str, Any]) -> None:
    with sqlite3.connect(current_app.config["DATABASE"]) as db:
        db.execute("INSERT INTO message (user, body) VALUES (?, ?)", (payload.get("user"), payload.get("body")))
    current_app.logger.info("stored a message from %s", payload.get("user"))


# -- views ------------------------------------------------------------------------------------------


@bp.get("/")
def index() -> Any:
    client = realtime.client  # this worker's client, connected on first use
    return {"pid": os.getpid(), "client_pid": client.pid, "state": str(client.state), "client": repr(client)}


@bp.post("/shout")
def shout() -> Any:
    body = (request.get_json(silent=True) or {}).get("body", "")
    try:
        reply = realtime.push("room:lobby", "shout", {"user": f"web-{os.getpid()}", "body": body})
    except maxsdk.ReplyTimeoutError as exc:  # ReplyLostError too: it may or may not have been delivered
        return {"error": str(exc)}, 504
    return {"status": reply.status, "pid": os.getpid()}


@bp.get("/messages")
def messages() -> Any:
    with sqlite3.connect(current_app.config["DATABASE"]) as db:
        rows = db.execute("SELECT user, body FROM message ORDER BY id").fetchall()
    return jsonify([{"user": user, "body": body} for user, body in rows])


@bp.get("/workers")
def workers() -> Any:
    """The web workers online (presence on ``room:workers``); ``?wait=N`` waits up to 10 s for N of them."""
    wanted = request.args.get("wait", default=0, type=int)
    room = realtime.channel("room:workers")  # joining tracks this worker's presence
    room.presence.wait_synced(5)
    deadline = time.monotonic() + 10
    while len(room.presence) < wanted and time.monotonic() < deadline:
        with room.expect("presence_diff") as diff:  # armed before checking again: no diff can slip through
            if len(room.presence) >= wanted:
                break
            try:
                diff.wait(deadline - time.monotonic())
            except maxsdk.MaxsdkTimeoutError:
                break
    return {"pid": os.getpid(), "me": connect_params()["user_id"], "workers": sorted(room.presence.keys())}


def main(argv: list[str]) -> None:
    """Development: the embedded server (unless a URL is given), a listener thread and Flask's server."""
    from maxsdk.server import PhoenixServer

    server = None
    url = argv[1] if len(argv) > 1 else os.environ.get("MAXSDK_URL")
    if url is None:
        server = PhoenixServer().start()
        url = server.url
        print(f"embedded server at {url}")
    app = create_app({"MAXSDK_URL": url})
    stop = threading.Event()
    listener = threading.Thread(target=realtime.listen, kwargs={"app": app, "stop": stop}, daemon=True)
    listener.start()
    try:
        app.run(host="127.0.0.1", port=5000)
    finally:
        stop.set()
        listener.join(5)
        realtime.close(app)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main(sys.argv)
