"""The embedded server's recoverable streams, on the wire (raw frames, not the maxsdk client)."""

from __future__ import annotations

import pytest

from maxsdk.server import PhoenixServer, Router
from maxsdk.server.stream import StreamHistory

pytestmark = pytest.mark.timeout(30)

TOPIC = "stream:t"


def _history_with(server: PhoenixServer, history: StreamHistory, count: int) -> None:
    for n in range(1, count + 1):
        history.publish(server.endpoint, TOPIC, "tick", {"n": n})


def test_events_are_numbered_stamped_and_bounded():
    history = StreamHistory(limit=3)
    with PhoenixServer(Router([("stream:*", history.channel)])) as server:
        _history_with(server, history, 5)
        info = history.info(TOPIC)
        assert info["offset"] == 5 and info["oldest"] == 3 and isinstance(info["epoch"], str)
        events, marker = history.recover(TOPIC, {"epoch": info["epoch"], "offset": 3})
        assert [p["n"] for _, p in events] == [4, 5]
        assert events[0][1]["_pos"] == {"epoch": info["epoch"], "offset": 4}
        assert marker == {**info, "recovered": True, "reason": None, "replayed": 2}
        assert history.recover(TOPIC, {"epoch": info["epoch"], "offset": 1})[1]["reason"] == "trimmed"
        assert history.recover(TOPIC, {"epoch": info["epoch"], "offset": 2})[1]["recovered"] is True
        assert history.recover(TOPIC, {"epoch": info["epoch"], "offset": 6})[1]["reason"] == "unknown_position"
        assert history.recover(TOPIC, {"epoch": "other", "offset": 5})[1]["reason"] == "epoch_changed"
        assert history.new_epoch(TOPIC) != info["epoch"] and history.info(TOPIC)["offset"] == 0


def test_join_replay_marker_and_history_requests_on_the_wire():
    import json

    from websockets.sync.client import connect

    history = StreamHistory(limit=100)
    with PhoenixServer(Router([("stream:*", history.channel)])) as server:
        _history_with(server, history, 4)
        epoch = history.info(TOPIC)["epoch"]
        with connect(server.url + "?vsn=2.0.0") as ws:
            ws.send(json.dumps(["1", "1", TOPIC, "phx_join", {"recover": {"epoch": epoch, "offset": 2}}]))
            frames = [json.loads(ws.recv(timeout=5)) for _ in range(4)]
            assert frames[0][3] == "phx_reply" and frames[0][4]["response"]["recovery"]["offset"] == 4
            assert [(f[0], f[1], f[3], f[4]["n"]) for f in frames[1:3]] == [
                ("1", None, "tick", 3),
                ("1", None, "tick", 4),
            ]
            assert frames[3][3] == "stream_recovered" and frames[3][4]["recovered"] is True
            ws.send(json.dumps(["1", "2", TOPIC, "history", {"since": None, "limit": 2}]))
            reply = json.loads(ws.recv(timeout=5))[4]
            assert reply["status"] == "ok" and [e["payload"]["n"] for e in reply["response"]["events"]] == [1, 2]
            assert reply["response"]["more"] is True
            ws.send(json.dumps(["1", "3", TOPIC, "history", {"since": {"epoch": "x", "offset": 1}}]))
            reply = json.loads(ws.recv(timeout=5))[4]
            assert reply == {
                "status": "error",
                "response": {"reason": "epoch_changed", "epoch": epoch, "offset": 4, "oldest": 1},
            }
            ws.send(json.dumps(["1", "4", TOPIC, "history", {"limit": 0}]))
            assert json.loads(ws.recv(timeout=5))[4]["response"] == {"reason": "bad_request"}
            ws.send(json.dumps(["5", "5", "stream:u", "phx_join", {"recover": {"epoch": 3}}]))
            reply = json.loads(ws.recv(timeout=5))
            assert reply[3] == "phx_reply" and reply[4] == {
                "status": "error",
                "response": {"reason": "invalid_position"},
            }
