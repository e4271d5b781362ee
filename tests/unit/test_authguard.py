"""The failed-authentication guard on an in-process store, with a fake clock."""

import pytest

from aegisflow.authguard import FailedAuthGuard
from aegisflow.authguard import source_of
from aegisflow.errors import RateLimited
from aegisflow.limits.local import LocalStore

S = 1_000_000_000


def test_source_of_counts_ipv6_by_its_64_and_ipv4_by_address():
    assert source_of('2001:db8:1:2:aaaa::1') == '2001:db8:1:2::/64'
    assert source_of('2001:db8:1:2:bbbb::9') == '2001:db8:1:2::/64'
    assert source_of('2001:db8:1:3::1') == '2001:db8:1:3::/64'
    assert source_of('203.0.113.7') == '203.0.113.7'
    assert source_of('') == '-'
    assert source_of(None) == '-'


def guard(per_minute=3):
    now = [10**12]
    return FailedAuthGuard(per_minute, LocalStore(), clock=lambda: now[0]), now


def test_an_address_is_refused_once_over_and_let_back_as_the_window_moves():
    g, now = guard(3)
    for _ in range(3):
        g.refuse_if_blocked('198.51.100.1')
        g.failed('198.51.100.1')
    with pytest.raises(RateLimited) as exc:
        g.refuse_if_blocked('198.51.100.1')
    assert exc.value.code == 'too_many_failed_attempts'
    assert exc.value.headers['Retry-After'] == '20'  # one attempt per 20 s
    g.refuse_if_blocked('198.51.100.2')  # another address is not affected
    now[0] += 19 * S
    with pytest.raises(RateLimited):
        g.refuse_if_blocked('198.51.100.1')
    now[0] += 1 * S
    g.refuse_if_blocked('198.51.100.1')  # one more attempt has room


def test_ipv6_neighbours_share_one_counter():
    g, _ = guard(2)
    g.failed('2001:db8::1')
    g.failed('2001:db8::2')
    with pytest.raises(RateLimited):
        g.refuse_if_blocked('2001:db8::ffff')
    g.refuse_if_blocked('2001:db9::1')


def test_zero_turns_the_guard_off():
    g, _ = guard(0)
    for _ in range(100):
        g.failed('198.51.100.1')
    g.refuse_if_blocked('198.51.100.1')
