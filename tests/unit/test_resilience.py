"""Retry policy and breaker state machine with a fake clock."""

import pytest

from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import HALF_OPEN
from aegisflow.routing.resilience import OPEN
from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.resilience import RetryPolicy
from aegisflow.routing.resilience import allow
from aegisflow.routing.resilience import record

S = 1_000_000_000


def test_retry_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(
        initial_backoff_ms=100,
        max_backoff_ms=1000,
        multiplier=2,
        jitter=0.2,
        max_retry_after_s=5,
    )
    assert policy.backoff_s(1, rng=lambda: 0.5) == pytest.approx(0.1)
    assert policy.backoff_s(3, rng=lambda: 0.5) == pytest.approx(0.4)
    assert policy.backoff_s(10, rng=lambda: 0.5) == pytest.approx(1.0)  # capped
    assert policy.backoff_s(1, rng=lambda: 0.0) == pytest.approx(0.08)
    assert policy.backoff_s(1, rng=lambda: 1.0) == pytest.approx(0.12)
    assert policy.backoff_s(1, retry_after=3) == 3
    assert policy.backoff_s(1, retry_after=60) == 5  # capped
    assert policy.retryable(0) and policy.retryable(503) and not policy.retryable(400)


def fresh():
    return [CLOSED, 0, 0, 0, 0]


def test_breaker_opens_on_failure_rate_after_min_calls():
    p = BreakerPolicy(
        failure_threshold=0.5,
        consecutive_failures=100,
        window_s=30,
        min_calls=4,
        open_s=10,
    )
    w = fresh()
    for ok in (True, False, True):
        assert record(p, w, 0, 1 * S, ok) == CLOSED
    assert record(p, w, 0, 2 * S, False) == OPEN  # 2 of 4 failed
    assert allow(p, w, 0, 5 * S) == (False, False)
    assert allow(p, w, 0, 12 * S) == (True, True)  # open_s passed: a probe
    assert w[0] == HALF_OPEN
    assert record(p, w, 0, 12 * S, True) == CLOSED
    assert allow(p, w, 0, 12 * S) == (True, False)


def test_breaker_consecutive_failures_and_window_reset():
    p = BreakerPolicy(
        failure_threshold=1.0,
        consecutive_failures=3,
        window_s=10,
        min_calls=100,
        open_s=10,
    )
    w = fresh()
    record(p, w, 0, 1 * S, False)
    record(p, w, 0, 1 * S, False)
    record(p, w, 0, 1 * S, True)  # the run is broken
    record(p, w, 0, 1 * S, False)
    record(p, w, 0, 1 * S, False)
    assert w[0] == CLOSED
    assert record(p, w, 0, 1 * S, False) == OPEN


def test_breaker_reopening_doubles_the_open_time_up_to_8x():
    p = BreakerPolicy(consecutive_failures=1, open_s=10)
    w = fresh()
    now = 1 * S
    record(p, w, 0, now, False)
    durations = []
    for _ in range(5):
        durations.append((w[1] - now) // S)
        now = w[1]
        assert allow(p, w, 0, now) == (True, True)
        record(p, w, 0, now, False)  # the probe fails
    assert durations == [10, 20, 40, 80, 80]
    now = w[1]
    allow(p, w, 0, now)
    record(p, w, 0, now, True)
    record(p, w, 0, now + S, False)
    assert (w[1] - (now + S)) // S == 10  # back to the base after a close
