"""Frames queued together go out in one write: every frame intact, in order, counted once."""

from __future__ import annotations

import threading

from tests.client.helpers import fast_client
from tests.security.rawphoenix import RawPhoenixServer


def test_frames_of_concurrent_callers_arrive_whole_and_in_each_callers_order():
    with RawPhoenixServer() as server, fast_client(server.url, heartbeat_interval=0) as client:
        room = client.join("room:raw")
        frames_before = client.diagnostics().frames_out
        per_thread = 300
        start = threading.Barrier(4)

        def caller(index: int) -> None:
            start.wait()
            for number in range(per_thread):
                room.push_nowait("note", {"caller": index, "n": number, "pad": "z" * (number % 50)})

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        received = server.wait_received(lambda messages: sum(m[3] == "note" for m in messages) >= 4 * per_thread)
        notes = [m[4] for m in received if m[3] == "note"]
        assert len(notes) == 4 * per_thread
        for index in range(4):
            mine = [note for note in notes if note["caller"] == index]
            assert [note["n"] for note in mine] == list(range(per_thread))
            assert all(note["pad"] == "z" * (note["n"] % 50) for note in mine)
        assert client.diagnostics().frames_out - frames_before == 4 * per_thread
