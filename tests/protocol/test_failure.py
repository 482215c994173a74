"""Failure classification: one table of decisions for every way a connection fails or ends."""

from __future__ import annotations

import pytest

from maxsdk.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectFailedError,
    HandshakeError,
    TLSVerificationError,
)
from maxsdk.protocol.failure import Decision, FailurePolicy, classify_close, classify_error

POLICY = FailurePolicy()


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (ConnectFailedError("refused"), Decision.RETRY),
        (HandshakeError(500), Decision.RETRY),
        (HandshakeError(503), Decision.RETRY),
        (HandshakeError(429), Decision.RETRY),
        (HandshakeError(404), Decision.FATAL),
        (HandshakeError(400), Decision.FATAL),
        (AuthenticationError(403), Decision.RENEW),
        (AuthenticationError(401), Decision.RENEW),
        (TLSVerificationError("bad cert"), Decision.FATAL),
        (ConfigurationError("bad url"), Decision.FATAL),
    ],
)
def test_first_failure(error, decision):
    assert classify_error(error, POLICY, 0) is decision


def test_auth_refusal_after_a_renewal_is_fatal():
    assert classify_error(AuthenticationError(403), POLICY, 1) is Decision.FATAL


def test_policy_is_configurable():
    lenient = FailurePolicy(fatal_statuses=frozenset({404}), renew_attempts=3)
    assert classify_error(AuthenticationError(403), lenient, 2) is Decision.RENEW
    assert classify_error(AuthenticationError(403), lenient, 3) is Decision.RETRY  # not fatal in this policy
    assert classify_error(HandshakeError(400), lenient, 0) is Decision.RETRY


@pytest.mark.parametrize(
    ("code", "reason", "decision"),
    [
        (1000, "", Decision.STOP),
        (1000, "heartbeat_timeout", Decision.RETRY),
        (1001, "", Decision.RETRY),
        (1002, "", Decision.RETRY),
        (1006, "eof", Decision.RETRY),
        (1011, "", Decision.RETRY),
        (1012, "", Decision.RETRY),
        (3410, "session_gone", Decision.RETRY),
        (None, "", Decision.RETRY),
    ],
)
def test_close_codes(code, reason, decision):
    assert classify_close(code, reason, POLICY) is decision


def test_close_code_policy():
    assert classify_close(1000, "", FailurePolicy(reconnect_on_normal_close=True)) is Decision.RETRY
    assert classify_close(1001, "", FailurePolicy(reconnect_on_going_away=False)) is Decision.STOP
