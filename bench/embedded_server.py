"""The embedded Python server (``maxsdk.server.PhoenixServer``) in its own process, for the round-trip column.

It runs the reference app (``room:*`` answers ``echo``) plus ``realtime:*`` as an
echo channel, because the supabase client prefixes every topic with ``realtime:``.
Message recording is cut to the minimum the server allows, so a long benchmark
does not measure the test recorder.

Usage: python embedded_server.py   (prints {"port": P} once listening; stops when stdin closes)
"""

from __future__ import annotations

import json
import sys

from maxsdk.server import EchoChannel, PhoenixServer, ServerSettings, reference_router


def main() -> None:
    router = reference_router().channel("realtime:*", EchoChannel)
    settings = ServerSettings(record_limit=1)
    with PhoenixServer(router, settings=settings) as server:
        sys.stdout.write(json.dumps({"port": server.port}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes our stdin (or dies)


if __name__ == "__main__":
    main()
