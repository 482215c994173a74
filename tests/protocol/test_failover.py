"""The failover policy: pure, driven by a fake clock."""

from __future__ import annotations

import pytest

from maxsdk.protocol.failover import Failover

A, B, C = "ws://a/socket", "ws://b/socket", "ws://c/socket"


def test_the_preferred_endpoint_first_then_sticky():
    policy = Failover([A, B, C])
    assert policy.choose(0.0) == A
    policy.succeeded(A, 0.0)
    assert policy.choose(1.0) == A  # a drop reconnects to the endpoint in use
    policy.succeeded(A, 1.0)
    assert policy.choose(2.0) == A


def test_a_failure_moves_to_the_next_at_once_and_backs_off_once_all_failed():
    policy = Failover([A, B])
    assert policy.choose(0.0) == A
    policy.failed(A, 0.0)
    assert policy.retry_now()
    assert policy.choose(0.0) == B
    policy.failed(B, 0.1)
    assert not policy.retry_now()
    policy.backed_off()
    # Both failed recently, once each: the order given decides.
    assert policy.choose(1.0) == A


def test_health_ranks_recent_failures_then_failure_counts_then_rtt():
    policy = Failover([A, B, C], cooldown=10.0)
    policy.failed(A, 0.0)
    policy.observe_rtt(B, 0.050)
    policy.observe_rtt(C, 0.005)
    assert policy.choose(1.0) == C  # A failed recently; C is faster than B
    policy.failed(C, 1.0)
    policy.backed_off()
    assert policy.choose(2.0) == B
    policy.failed(B, 2.0)
    policy.backed_off()
    # All failed within the cooldown, once each: the lowest RTT wins.
    assert policy.choose(3.0) == C


def test_after_the_cooldown_the_preferred_one_ranks_first_again():
    policy = Failover([A, B], cooldown=10.0)
    policy.failed(A, 0.0)
    policy.backed_off()
    policy.failed(A, 0.5)
    policy.backed_off()
    assert policy.choose(1.0) == B
    policy.succeeded(B, 1.0)
    policy.failed(B, 2.0)
    policy.backed_off()
    assert policy.choose(20.0) == B  # neither failure is recent any more: B failed once, A twice


def test_the_way_back_is_scheduled_while_on_another_endpoint():
    policy = Failover([A, B], failback_after=30.0)
    policy.failed(A, 0.0)
    assert policy.choose(0.0) == B
    policy.succeeded(B, 0.0)
    assert policy.next_deadline() == 30.0
    assert not policy.failback_due(29.0)
    assert policy.failback_due(30.0)
    policy.failback_checked(30.0)  # still away: check again later
    assert policy.next_deadline() == 60.0
    policy.prefer()
    assert policy.choose(61.0) == A
    policy.succeeded(A, 61.0)
    assert policy.next_deadline() is None  # on the preferred one: nothing to go back to


def test_no_failback_when_disabled():
    policy = Failover([A, B], failback_after=None)
    policy.failed(A, 0.0)
    policy.choose(0.0)
    policy.succeeded(B, 0.0)
    assert policy.next_deadline() is None


def test_an_updated_list_keeps_what_is_known():
    policy = Failover([A, B])
    policy.failed(A, 0.0)
    policy.update([C, A])
    assert [h.url for h in policy.health] == [C, A]
    assert policy.health[1].failures == 1
    assert policy.choose(1.0) == C


def test_at_least_one_endpoint():
    with pytest.raises(ValueError):
        Failover([])
