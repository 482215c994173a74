"""Failure classification for reconnects, in one place (pure).

Every way a connection can fail or end is mapped to one decision:

* ``RETRY`` — try again on the reconnect schedule: connection refused or
  reset, timeouts, DNS failures, 5xx and other non-fatal statuses at the
  handshake, a missed heartbeat, abnormal close codes (1001-1015 and
  application codes), a dropped connection.
* ``RENEW`` — credentials may have expired: 401/403 at the upgrade. The
  client re-evaluates its params/token callables (and invalidates a token
  provider) and retries once at once; a second refusal in a row is fatal.
* ``FATAL`` — retrying cannot help: the fatal statuses (400, 404, 405, 410
  by default, and 401/403 after the renewal), a bad URL or option, a TLS
  certificate that does not verify.
* ``STOP`` — the server closed normally (code 1000): phoenix.js does not
  reconnect, and neither do we unless ``reconnect_on_normal_close`` is set.

Server close codes: 1000 → ``STOP`` (configurable); 1001 (going away, e.g.
Phoenix's socket-id ``disconnect``) → ``RETRY`` (configurable); everything
else → ``RETRY``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from maxsdk.errors import (
    AuthenticationError,
    ConfigurationError,
    HandshakeError,
    TLSVerificationError,
)

__all__ = ["Decision", "FailurePolicy", "classify_close", "classify_error"]


class Decision(str, enum.Enum):
    """What to do after a failure."""

    RETRY = "retry"
    RENEW = "renew"
    FATAL = "fatal"
    STOP = "stop"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FailurePolicy:
    """Which failures are fatal and which closes end the session.

    Attributes:
        fatal_statuses: HTTP statuses of a refused upgrade that stop reconnecting.
        renew_statuses: statuses that first trigger a credential renewal and
            one retry (must also be in ``fatal_statuses`` to become fatal after it).
        renew_attempts: renewals allowed in a row before a renew status is fatal.
        reconnect_on_normal_close: reconnect after a server close with 1000.
        reconnect_on_going_away: reconnect after a server close with 1001.

    """

    fatal_statuses: frozenset[int] = field(default_factory=lambda: frozenset({400, 401, 403, 404, 405, 410}))
    renew_statuses: frozenset[int] = field(default_factory=lambda: frozenset({401, 403}))
    renew_attempts: int = 1
    reconnect_on_normal_close: bool = False
    reconnect_on_going_away: bool = True


def classify_error(error: BaseException, policy: FailurePolicy, renewals_in_a_row: int) -> Decision:
    """The decision for a failed connection attempt.

    Args:
        error: the exception of the attempt (a maxsdk error).
        policy: the failure policy.
        renewals_in_a_row: renewals already tried since the last success.

    """
    if isinstance(error, HandshakeError):
        status = error.status
        if status in policy.renew_statuses and renewals_in_a_row < policy.renew_attempts:
            return Decision.RENEW
        return Decision.FATAL if status in policy.fatal_statuses else Decision.RETRY
    if isinstance(error, AuthenticationError):  # an auth failure without an HTTP status
        return Decision.RENEW if renewals_in_a_row < policy.renew_attempts else Decision.FATAL
    if isinstance(error, (TLSVerificationError, ConfigurationError)):
        return Decision.FATAL
    return Decision.RETRY


def classify_close(code: int | None, reason: str, policy: FailurePolicy) -> Decision:
    """The decision after an open connection ended with ``code``.

    Our own heartbeat timeout closes with 1000 too, but always reconnects
    (the reason is ``"heartbeat_timeout"``), as in phoenix.js.
    """
    if reason == "heartbeat_timeout":
        return Decision.RETRY
    if code == 1000:
        return Decision.RETRY if policy.reconnect_on_normal_close else Decision.STOP
    if code == 1001:
        return Decision.RETRY if policy.reconnect_on_going_away else Decision.STOP
    return Decision.RETRY
