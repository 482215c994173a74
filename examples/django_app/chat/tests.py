"""The chat app under test: Django's test client against maxsdk's embedded Phoenix server.

The pattern to copy: start a ``PhoenixServer`` for the test class and point
``settings.MAXSDK["URL"]`` at it with ``override_settings``; changing the
setting closes the process's client, so every class gets a fresh one.
"""

import io
import json
import os
import threading

from django.conf import settings
from django.core.management import call_command
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from chat.models import Message
from maxsdk.server import PhoenixServer


class EmbeddedServerMixin:
    """A Phoenix server (the reference app) for the whole test class."""

    @classmethod
    def setUpClass(cls):
        cls.phoenix = PhoenixServer().start()
        cls.realtime_settings = override_settings(MAXSDK={**settings.MAXSDK, "URL": cls.phoenix.url, "EAGER": False})
        cls.realtime_settings.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.realtime_settings.disable()  # closes the client (the setting changed)
        cls.phoenix.stop()


class ViewTests(EmbeddedServerMixin, SimpleTestCase):
    def test_index_reports_this_process_client(self):
        info = self.client.get("/").json()
        self.assertEqual(info, {"pid": os.getpid(), "client_pid": os.getpid(), "state": "connected"})

    def test_shout_pushes_to_the_server(self):
        response = self.client.post("/shout", data=json.dumps({"body": "hello"}), content_type="application/json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok"})
        pushed = self.phoenix.wait_for_message(event="shout", topic="room:lobby")
        self.assertEqual(pushed.payload, {"user": f"django-{os.getpid()}", "body": "hello"})


class Output(io.StringIO):
    """A command's stdout that tells when the command is listening."""

    def __init__(self):
        super().__init__()
        self.listening = threading.Event()

    def write(self, text):
        if "listening to" in text:
            self.listening.set()
        return super().write(text)


class ListenerTests(EmbeddedServerMixin, TransactionTestCase):
    """TransactionTestCase: the receiver writes from the client's dispatcher thread, with its own connection."""

    def test_maxsdk_listen_stores_broadcasts_through_the_receiver(self):
        out, errors = Output(), []

        def run():
            try:
                call_command("maxsdk_listen", "--event", "shout", "--count", "1", stdout=out, stderr=io.StringIO())
            except Exception as exc:  # noqa: BLE001 - the test asserts there was none
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        self.assertTrue(out.listening.wait(10), out.getvalue())
        self.phoenix.broadcast("room:lobby", "shout", {"user": "bob", "body": "stored by the receiver"})
        thread.join(10)
        self.assertEqual(errors, [])
        self.assertIn("1 event(s) dispatched", out.getvalue())
        self.assertEqual(
            list(Message.objects.values("topic", "user", "body")),
            [{"topic": "room:lobby", "user": "bob", "body": "stored by the receiver"}],
        )
        self.assertEqual(self.client.get("/messages").json()["messages"][0]["body"], "stored by the receiver")
