"""Consuming a channel from a script: ``for message in channel.messages()`` instead of callbacks.

The ``ticker:*`` channel of the reference app pushes ``tick`` every
``interval_ms``; the loop reads them one by one, then ``wait_for`` blocks for
one specific event. Run it as is (embedded server) or with a URL::

    python examples/iterator.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import maxsdk


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


def main(url: str) -> None:
    with maxsdk.Client(url) as client:
        ticker = client.channel("ticker:demo", {"interval_ms": 50})
        # Start buffering before joining, so that no message falls between the join and the loop.
        with ticker.messages(events=["tick"], timeout=5) as stream:
            ticker.join()
            for message in stream:  # ends after `timeout` seconds without a message, or when the channel closes
                print("tick", message.payload["n"])
                if message.payload["n"] >= 5:
                    break
        print(f"dropped while iterating: {stream.dropped}")

        # One specific event, with a predicate; raises MaxsdkTimeoutError if nothing matches in time.
        payload = ticker.wait_for("tick", lambda p: p["n"] % 10 == 0, timeout=5)
        print("first multiple of ten:", payload["n"])
        print("the server counted", ticker.push("count").response["n"], "ticks so far")


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
