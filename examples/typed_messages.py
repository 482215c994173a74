"""Typed messages: dataclass models for payloads, a validation failure, and a versioned payload.

* ``room.on("shout", handler, model=ChatMessage)`` hands the handler a
  ``ChatMessage`` instead of a dict; a dataclass instance can be pushed as is.
* A payload that does not fit (a missing field, a wrong type) never reaches
  the handler: it is reported through the ``payload_invalid`` signal.
* ``ChatMessage`` is at schema version 2 (``user`` was called ``author`` in
  version 1); an ``@upgrader`` turns old payloads into new ones, so old and
  new senders can talk to new receivers during a rollout.

Run it as is or with a URL::

    python examples/typed_messages.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import maxsdk
from maxsdk import signals
from maxsdk.models import upgrader


@contextmanager
def server_url(argv):
    """The URL given on the command line, or the URL of an embedded server started for this run."""
    if len(argv) > 1:
        yield argv[1]
        return
    from maxsdk.server import PhoenixServer

    with PhoenixServer() as server:
        print(f"started the embedded server at {server.url}")
        yield server.url


@dataclass
class ChatMessage:
    """A chat line. Version 2 renamed ``author`` to ``user``."""

    __schema_version__ = 2  # pushed payloads carry "schema_version": 2

    user: str
    body: str
    likes: int = 0


@upgrader(ChatMessage, from_version=1)
def _author_became_user(payload: dict) -> dict:
    payload["user"] = payload.pop("author")
    return payload


@dataclass
class Echo:
    """The typed form of a reply."""

    user: str
    body: str
    likes: int
    schema_version: int


def main(url: str) -> None:
    received: list[ChatMessage] = []
    invalid: list[str] = []
    done = threading.Condition()

    with maxsdk.Client(url) as client:
        room = client.join("room:lobby")

        @room.on("shout", model=ChatMessage)
        def on_message(message: ChatMessage) -> None:
            print(f"handler got {message!r}")
            with done:
                received.append(message)
                done.notify_all()

        @client.on_signal(signals.payload_invalid)
        def on_invalid(sender, *, event, model, error, **kwargs):
            print(f"rejected a {event!r} payload: it does not fit {model.__name__}: {error.reason}")
            with done:
                invalid.append(error.reason)
                done.notify_all()

        room.push("shout", ChatMessage(user="alice", body="typed and current"))  # a dataclass is pushed as a dict
        room.push("shout", {"author": "old-client", "body": "sent by a version-1 client"})  # upgraded on arrival
        room.push("shout", {"schema_version": 2, "user": 42, "body": "user must be a string"})  # fails validation

        with done:
            if not done.wait_for(lambda: len(received) == 2 and len(invalid) == 1, 5):
                raise SystemExit(f"expected 2 messages and 1 rejection, got {received} / {invalid}")

        reply = room.push("echo", ChatMessage(user="bob", body="echo me", likes=3))
        print("typed reply:", reply.as_(Echo))

        try:
            maxsdk.models.decode(Echo, {"user": "x"})
        except maxsdk.ModelError as exc:
            print("decoding a reply that does not fit raises ModelError:", exc.reason)


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
