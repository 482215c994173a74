"""Replicated state: two clients share one server-owned document, and race for it.

Alice and Bob each follow ``state:board-demo`` with ``channel.state_view()``.
Alice's moves reach Bob as versioned deltas (Bob's change callback prints the
changed paths); then both claim the same seat at the same moment with
optimistic updates: the server accepts the first on its version and refuses
the other, whose copy is rolled back and told. Run it as is or with a URL::

    python examples/shared_state.py [ws://127.0.0.1:4000/socket]
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import maxsdk

TOPIC = "state:board-demo"


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


_print_lock = threading.Lock()


def say(text: str) -> None:
    """Print whole lines: callbacks print from the dispatcher thread while the main thread prints too."""
    with _print_lock:
        print(text, flush=True)


def claim_together(views: dict[str, maxsdk.StateView]) -> dict[str, object]:
    """Both players claim the seat at the same moment; return each one's outcome."""
    barrier = threading.Barrier(len(views))
    outcomes: dict[str, object] = {}

    def claim(name: str) -> None:
        barrier.wait(5)
        try:
            outcomes[name] = views[name].update({"seat": name})
        except maxsdk.StateConflictError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=claim, args=(name,)) for name in views]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def main(url: str) -> None:
    with maxsdk.Client(url) as alice, maxsdk.Client(url) as bob:
        views = {"alice": alice.join(TOPIC).state_view(), "bob": bob.join(TOPIC).state_view()}
        for view in views.values():
            view.wait_synced(5)
        alice_view, bob_view = views["alice"], views["bob"]
        bob_view.on_change(lambda change: say(f"bob saw {change.cause} at version {change.version}: {change.paths}"))
        bob_view.on_conflict(lambda conflict: say(f"bob was rolled back: {conflict.reason}"))
        alice_view.on_conflict(lambda conflict: say(f"alice was rolled back: {conflict.reason}"))

        alice_view.update({"board": {"e4": "pawn"}, "seat": None})
        version = alice_view.update([{"op": "add", "path": "/moves", "value": ["e4"]}], format="json")
        bob_view.wait_version(version, 5)
        say(f"bob's copy at version {bob_view.version}: {bob_view.get()}")

        loser, winner, rounds = None, None, 0
        while loser is None and rounds < 20:  # a race is a race: a round may end without a loser
            rounds += 1
            outcomes = claim_together(views)
            losers = [name for name, outcome in outcomes.items() if isinstance(outcome, Exception)]
            if len(losers) == 1:
                loser = losers[0]
                winner = next(name for name in outcomes if name != loser)
            else:
                alice_view.update({"seat": None})
        if loser is None:
            raise SystemExit("no conflict in 20 rounds")
        error = outcomes[loser]
        assert isinstance(error, maxsdk.StateConflictError)
        say(f"round {rounds}: {winner} won the seat; {loser} got {error.reason} (server at version {error.version})")
        views[loser].wait_for(lambda document: document.get("seat") == winner, 5)
        say(f"{loser}'s copy now shows the seat taken by {views[loser].value('/seat')}")


if __name__ == "__main__":
    with server_url(sys.argv) as url:
        main(url)
