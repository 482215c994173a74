#!/usr/bin/env python
"""A small Django project that talks to a Phoenix server through ``maxsdk.integrations.django``.

It shows: settings (``MAXSDK``), pushing from a view, a receiver that stores
incoming events with the ORM (run by ``manage.py maxsdk_listen``), and which
process connects under ``runserver``'s autoreloader.

Development, no setup: ``runserver`` starts maxsdk's embedded server in the
autoreloader's parent process (it lives across code reloads) unless
``MAXSDK_URL`` is set; the serving child connects to it::

    python examples/django_app/manage.py migrate
    python examples/django_app/manage.py runserver            # prints the embedded server's URL
    MAXSDK_URL=<that URL> python examples/django_app/manage.py maxsdk_listen
    curl -X POST 127.0.0.1:8000/shout -H 'content-type: application/json' -d '{"body": "hi"}'
    curl 127.0.0.1:8000/messages

Tests (Django's test client against the embedded server): ``python examples/django_app/manage.py test``.
"""

import os
import sys


def start_embedded_server() -> None:
    """For ``runserver`` without ``MAXSDK_URL``: serve the reference app here and point the children at it."""
    from maxsdk.server import PhoenixServer

    server = PhoenixServer().start()
    os.environ["MAXSDK_URL"] = server.url  # inherited by the autoreloader's serving child
    print(f"embedded Phoenix server at {server.url}", flush=True)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if sys.argv[1:2] == ["runserver"] and not os.environ.get("MAXSDK_URL"):
        start_embedded_server()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
