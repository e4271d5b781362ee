"""GCRA with a fake clock: the documented guarantee, refunds, Retry-After."""

import random

import pytest

from aegisflow.limits import gcra

S = 1_000_000_000
PER_MINUTE_60 = gcra.Rate(rate=60, period_ns=60 * S, burst=60)


def run(rate, times, weight=1):
    """Admission times among `times` (ns, sorted)."""
    tat, admitted = 0, []
    for now in times:
        v = gcra.check(rate, tat, now, weight)
        if v.admitted:
            tat = v.tat
            admitted.append(now)
    return admitted


def test_gcra_burst_then_rate():
    start = 1000 * S
    admitted = run(PER_MINUTE_60, [start] * 200)
    assert len(admitted) == 60
    v = gcra.check(PER_MINUTE_60, start + 60 * S, start)  # tat after 60 admissions
    assert not v.admitted and v.retry_after_ns == 1 * S and v.remaining == 0
    # One second later exactly one more fits, then none.
    tat = start + 60 * S
    v = gcra.check(PER_MINUTE_60, tat, start + S)
    assert v.admitted and v.remaining == 0
    assert not gcra.check(PER_MINUTE_60, v.tat, start + S).admitted


@pytest.mark.parametrize('rate_n, burst', [(60, 60), (60, 1), (10, 3), (1000, 100)])
def test_gcra_never_more_than_rate_plus_burst_minus_one_in_any_window(rate_n, burst):
    rate = gcra.Rate(rate=rate_n, period_ns=60 * S, burst=burst)
    rng = random.Random(rate_n * 7 + burst)
    times = sorted(rng.randrange(0, 600 * S) for _ in range(rate_n * 30))
    times += [300 * S] * (rate_n * 3)  # and a thundering herd
    admitted = sorted(run(rate, sorted(times)))
    j = 0
    worst = 0
    for i, t in enumerate(admitted):
        while admitted[j] <= t - rate.period_ns:
            j += 1
        worst = max(worst, i - j + 1)
    assert worst <= rate_n + burst - 1
    if burst == 1:
        assert worst <= rate_n  # a strict sliding window


def test_gcra_weights_refunds_and_debt():
    tokens = gcra.Rate(rate=1000, period_ns=60 * S, burst=1000)
    now = 10 * S
    v = gcra.check(tokens, 0, now, weight=600)  # reserve 600
    assert v.admitted and v.remaining == 400
    assert not gcra.check(tokens, v.tat, now, weight=500).admitted
    tat = gcra.adjust(tokens, v.tat, now, -300)  # actual was 300: refund
    assert gcra.check(tokens, tat, now, weight=500).admitted
    # A refund never banks capacity beyond a full burst.
    assert gcra.adjust(tokens, tat, now, -10_000) == now
    # Debt: charging more than reserved pushes the next admission out.
    tat = gcra.adjust(tokens, v.tat, now, +400)
    assert gcra.check(tokens, tat, now).retry_after_ns == 60 * 1_000_000 * 1


def test_gcra_a_huge_reported_usage_stays_within_a_u64():
    # an upstream reporting 2^33 tokens against one token a minute: the state stops
    # at TAT_MAX (spent for centuries), short of the word's 2^64
    one = gcra.Rate(rate=1, period_ns=60 * S, burst=1)
    tat = gcra.adjust(one, 5 * S, 5 * S, 2**33)
    assert tat == gcra.TAT_MAX < 2**64
    assert gcra.adjust(one, tat, 5 * S, 2**33) == gcra.TAT_MAX
    assert not gcra.check(one, tat, 6 * S).admitted


def test_gcra_request_heavier_than_burst_never_fits():
    tokens = gcra.Rate(rate=100, period_ns=60 * S, burst=100)
    assert not gcra.check(tokens, 0, 5 * S, weight=101).admitted


def test_gcra_peek_changes_nothing():
    assert gcra.peek(PER_MINUTE_60, 0, 5 * S) == (60, 0)
    assert gcra.peek(PER_MINUTE_60, 5 * S + 30 * S, 5 * S) == (30, 30 * S)


def test_gcra_huge_rates_stay_exact():
    tokens = gcra.Rate(rate=10**12, period_ns=60 * S, burst=10**12)
    v = gcra.check(tokens, 0, 5 * S, weight=10**11)
    assert v.admitted and v.remaining == 9 * 10**11
    assert gcra.check(tokens, v.tat, 5 * S, weight=9 * 10**11).admitted
    full = v.tat + tokens.span(9 * 10**11)
    # The state has nanosecond resolution: one token here is 0.06 ns, 1000 are 60 ns.
    assert not gcra.check(tokens, full, 5 * S, weight=1000).admitted
