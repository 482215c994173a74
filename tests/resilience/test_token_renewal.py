"""Token expiry during an outage: the client renews through its token provider and rejoins."""

from __future__ import annotations

import pytest
import responses

import maxsdk
from maxsdk import Backoff, TokenProvider
from maxsdk.server import Accept, Refuse
from tests.client.helpers import SignalLog, fast_client

TOKEN_URL = "https://auth.example.test/oauth/token"


@pytest.mark.timeout(60)
def test_revoked_token_is_renewed_and_every_channel_rejoins(phoenix_server_factory):
    valid = {"t1"}
    server = phoenix_server_factory(
        connect=lambda request: Accept(assigns={}) if request.params.get("token") in valid else Refuse(403)
    )
    with responses.RequestsMock() as http:
        http.add(responses.POST, TOKEN_URL, json={"access_token": "t1", "expires_in": 3600})
        http.add(responses.POST, TOKEN_URL, json={"access_token": "t2", "expires_in": 3600})
        provider = TokenProvider(TOKEN_URL, json={"client_id": "app", "client_secret": "s3cr3t"})
        client = fast_client(
            server.url, params=provider.params("token"), reconnect=Backoff(steps=(0.02, 0.05), jitter="none")
        )
        log = SignalLog(client)
        with client:
            rooms = [client.join("room:a"), client.join("room:b")]
            server.stop(abrupt=True)
            valid.clear()
            valid.add("t2")  # the old token is revoked while the client is away
            server.start()
            for room in rooms:
                log.wait_for("channel_joined", lambda kw, room=room: kw["channel"] is room and kw["rejoined"])
            assert [room.push("echo", {"t": room.topic}).response for room in rooms] == [
                {"t": "room:a"},
                {"t": "room:b"},
            ]
        assert len(http.calls) == 2, "one fetch at start, one renewal after the 403"
    refused = [e for e in server.events() if e.kind == "refused"]
    opened = [e for e in server.events() if e.kind == "opened"]
    assert [e.status for e in refused] == [403]
    assert [e.params["token"] for e in opened] == ["t1", "t2"]
    assert all("s3cr3t" not in repr(x) for x in (provider, client, client.config))


@pytest.mark.timeout(60)
def test_a_token_that_stays_refused_stops_the_client_after_one_renewal(phoenix_server_factory):
    server = phoenix_server_factory(token="never-this-one")
    with responses.RequestsMock() as http:
        http.add(responses.POST, TOKEN_URL, json={"access_token": "stale", "expires_in": 3600})
        http.add(responses.POST, TOKEN_URL, json={"access_token": "still-stale", "expires_in": 3600})
        provider = TokenProvider(TOKEN_URL)
        client = fast_client(server.url, params=provider.params("token"))
        with pytest.raises(maxsdk.AuthenticationError):
            client.connect()
        client.close()
        assert len(http.calls) == 2
