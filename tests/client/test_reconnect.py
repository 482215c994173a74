"""Heartbeats, reconnects and faults against the embedded server (checklist 9-12, 29-34)."""

from __future__ import annotations

import time

import pytest

import maxsdk
from maxsdk import Backoff, ChannelState, ConnectionState
from maxsdk.server import ServerSettings
from tests.client.helpers import Inbox, SignalLog, fast_client


def test_checklist_09_heartbeats_have_unique_refs_and_follow_the_reply(phoenix_server):
    with fast_client(phoenix_server.url, heartbeat_interval=0.1) as client:
        log = SignalLog(client)
        log.wait_for("heartbeat", count=3)
        beats = [m for m in phoenix_server.messages() if m.event == "heartbeat"]
        assert all(m.topic == "phoenix" and m.join_ref is None and m.ref for m in beats)
        assert len({m.ref for m in beats}) == len(beats)
        assert client.diagnostics().last_heartbeat_rtt is not None


def test_checklist_11_withheld_heartbeats_are_detected_and_the_client_reconnects(phoenix_server):
    client = fast_client(phoenix_server.url, heartbeat_interval=0.2)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        phoenix_server.pause_heartbeats()
        started = time.monotonic()
        errored = log.wait_for("channel_errored")
        detected = time.monotonic() - started
        assert errored["reason"] == "heartbeat_timeout"
        assert detected <= 0.2 + 0.2 + 0.3, detected  # interval + timeout (+ scheduling slack)
        assert log.wait_for("disconnected")["reason"] == "heartbeat_timeout"
        phoenix_server.resume_heartbeats()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert room.push("echo", {"ok": 1}).response == {"ok": 1}


def test_checklist_12_heartbeats_keep_the_connection_past_the_idle_timeout(phoenix_server_factory):
    server = phoenix_server_factory(settings=ServerSettings(idle_timeout=0.4))
    client = fast_client(server.url, heartbeat_interval=0.1)
    log = SignalLog(client)
    with client:
        log.wait_for("heartbeat", count=12)  # ~1.2 s, three idle timeouts
        assert client.state is ConnectionState.CONNECTED
        assert log.of("disconnected") == []


def test_idle_timeout_close_1000_is_not_reconnected_by_default(phoenix_server_factory):
    server = phoenix_server_factory(settings=ServerSettings(idle_timeout=0.3))
    client = fast_client(server.url, heartbeat_interval=0)
    log = SignalLog(client)
    with client:
        disconnected = log.wait_for("disconnected")
        assert disconnected["code"] == 1000 and not disconnected["will_reconnect"]
        log.wait_for("state_changed", lambda kw: kw["new"] is ConnectionState.DISCONNECTED)


def test_checklist_29_reconnect_schedule_and_reset_after_success(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect=Backoff(steps=(0.01, 0.02, 0.04, 0.08), jitter="none"))
    log = SignalLog(client)
    with client:
        phoenix_server.wait_for_connections(1)
        phoenix_server.refuse_connections(503)
        phoenix_server.drop_connections()
        log.wait_for("reconnecting", count=5)
        phoenix_server.accept_connections()
        log.wait_for("connected", lambda kw: kw["reconnect"])
        delays = [kw["delay"] for kw in log.of("reconnecting")]
        assert delays[:5] == [0.01, 0.02, 0.04, 0.08, 0.08]
        count = len(delays)
        phoenix_server.wait_for_connections(1)
        # A join answered on this connection proves it healthy (an open socket alone does not:
        # see tests/hostile/test_reconnect_storm.py), so the schedule restarts after it.
        client.join("room:lobby")
        phoenix_server.drop_connections()
        log.wait_for("connected", lambda kw: kw["reconnect"], count=2)
        assert log.of("reconnecting")[count]["delay"] == 0.01, "the schedule restarts after a healthy connection"


def test_checklist_29_abnormal_close_codes_reconnect(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        for n, code in enumerate((1001, 1011, 1012), start=1):
            phoenix_server.close_connections(code)
            assert log.wait_for("disconnected", count=n)["code"] == code
            log.wait_for("channel_joined", lambda kw: kw["rejoined"], count=n)


def test_checklist_30_rejoin_immediately_and_flush_pushes_made_while_disconnected(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect=Backoff.constant(0.3))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        phoenix_server.drop_connections()
        log.wait_for("disconnected")
        assert room.state is ChannelState.ERRORED
        pending = room.push_nowait("echo", {"made": "offline"})
        assert pending.wait().response == {"made": "offline"}
        rejoin = log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert rejoin["channel"] is room


def test_checklist_31_disconnect_does_not_reconnect_and_connect_rejoins(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        client.disconnect()
        assert client.state is ConnectionState.DISCONNECTED
        assert room.state is ChannelState.ERRORED
        assert log.of("reconnecting") == []
        client.connect()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert room.push("echo", {"back": 1}).response == {"back": 1}


def test_checklist_32_server_close_1000_can_be_configured_to_reconnect(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect_on_normal_close=True)
    log = SignalLog(client)
    with client:
        client.join("room:lobby")
        phoenix_server.close_connections(1000)
        assert log.wait_for("disconnected")["will_reconnect"]
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])


def test_checklist_33_socket_disconnect_broadcast_reconnects_then_a_403_is_fatal(phoenix_server_factory):
    tokens = iter(["good", "good", "revoked", "revoked", "revoked"])
    server = phoenix_server_factory(token="good")
    client = fast_client(server.url, params=lambda: {"token": next(tokens)})
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        room.push("kick_me", {})
        assert log.wait_for("disconnected")["code"] == 1001
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        room.push("kick_me", {})
        failed = log.wait_for("reconnect_failed")
        assert isinstance(failed["error"], maxsdk.AuthenticationError)
        attempts = [e for e in server.events() if e.kind == "refused"]
        assert len(attempts) == 2, "one retry with fresh credentials, then stop"
        assert client.state is ConnectionState.CLOSED
        with pytest.raises(maxsdk.ClientClosedError):
            room.push("echo", {})


def test_checklist_34_in_flight_pushes_end_with_a_timeout_not_a_resend(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        pending = room.push_nowait("slow", {"ms": 500}, timeout=5)
        phoenix_server.wait_for_message(event="slow")
        phoenix_server.drop_connections()
        started = time.monotonic()
        with pytest.raises(maxsdk.ReplyLostError) as info:
            pending.wait()
        assert isinstance(info.value, maxsdk.ReplyTimeoutError)
        assert time.monotonic() - started < 2, "lost pushes fail at once, not after their timeout"
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        room.push("echo", {})
        assert len([m for m in phoenix_server.messages() if m.event == "slow"]) == 1


def test_server_restart_mid_session_reconnects_and_rejoins_without_user_code(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect=Backoff(steps=(0.01, 0.05, 0.1, 0.2), jitter="none"))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        other = client.join("echo:x")
        inbox = Inbox()
        room.on("shout", inbox)
        phoenix_server.stop()
        log.wait_for("reconnecting", count=2)
        phoenix_server.start()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"] and kw["channel"] is room)
        log.wait_for("channel_joined", lambda kw: kw["rejoined"] and kw["channel"] is other)
        room.push("shout", {"after": "restart"})
        assert inbox.wait_count(1) == [{"after": "restart"}]
        assert other.push("anything", {"x": 1}).response == {"x": 1}
        assert client.diagnostics().reconnects == 1


def test_malformed_frames_are_counted_and_the_connection_survives(phoenix_server):
    client = fast_client(phoenix_server.url)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        for frame in ("this is not json", "[1,2]", '{"a":1}', '[null,null,5,"e",{}]', b"\x07garbage", b""):
            phoenix_server.send_raw(frame)
        log.wait_for("protocol_error", count=6)
        assert room.push("echo", {"alive": True}).response == {"alive": True}
        diagnostics = client.diagnostics()
        assert diagnostics.protocol_errors == 6
        assert diagnostics.reconnects == 0
        errors = [kw["error"] for kw in log.of("protocol_error")]
        assert all(isinstance(e, maxsdk.RemoteProtocolError) for e in errors)


def test_oversize_messages_are_refused_and_the_connection_survives(phoenix_server):
    client = fast_client(phoenix_server.url, max_message_size=1000)
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        inbox = Inbox()
        room.on("flood_msg", inbox)
        room.push("flood", {"n": 3, "size": 5000})
        error = log.wait_for("protocol_error", count=3)["error"]
        assert isinstance(error, maxsdk.MessageTooLargeError) and error.limit == 1000
        room.push("flood", {"n": 2, "size": 10})
        assert len(inbox.wait_count(2)) == 2
        assert client.diagnostics().reconnects == 0


def test_reconnect_gives_up_after_max_attempts_and_fails_pending_waits(phoenix_server):
    client = fast_client(phoenix_server.url, reconnect=Backoff(steps=(0.01,), jitter="none", max_attempts=3))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        phoenix_server.refuse_connections(503)
        phoenix_server.drop_connections()
        log.wait_for("disconnected")
        pending = room.push_nowait("echo", {}, timeout=10)
        failed = log.wait_for("reconnect_failed")
        assert failed["attempts"] == 3
        with pytest.raises(maxsdk.ClientClosedError):
            pending.wait()
        assert client.state is ConnectionState.CLOSED


def test_offline_raise_refuses_pushes_while_disconnected(phoenix_server):
    client = fast_client(phoenix_server.url, offline="raise", reconnect=Backoff.constant(0.5))
    log = SignalLog(client)
    with client:
        room = client.join("room:lobby")
        phoenix_server.drop_connections()
        log.wait_for("disconnected")
        with pytest.raises(maxsdk.NotConnectedError):
            room.push("echo", {})
        log.wait_for("channel_joined", lambda kw: kw["rejoined"])
        assert room.push("echo", {"back": 1}).response == {"back": 1}
