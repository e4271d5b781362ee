"""Failed authentication attempts per source address, limited.

Keys are compared in constant time (`aegisflow.auth`), which stops learning a key from
timings but not trying keys one after the other. Every invalid key (tenant or admin)
counts against the address it came from: ``server.failed_auth_per_minute`` failures
per minute (0: no limit), as a GCRA limit with a burst of the same size in the
host's shared store, so every worker sees every failure. Once the address is over,
every request from it is refused with 429 and ``Retry-After`` before its key is even
looked at: a right key guessed while blocked is not told apart from a wrong one.

Addresses are the client's (`aegisflow.web.client`: the socket's peer, or behind
``server.trusted_proxies`` the forwarded client); IPv6 addresses by their
/64, the block one host is usually given. A request without any key does not count:
a forgotten header is not a guess. The counter is read lock-free on every request
and written (one lock round) only on a failure.
"""

import ipaddress
import math
import time

from aegisflow.errors import AuthenticationFailed
from aegisflow.errors import RateLimited
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.limits.gcra import Rate
from aegisflow.limits.gcra import check as gcra_check
from aegisflow.limits.plan import MINUTE_NS
from aegisflow.limits.plan import REQUESTS
from aegisflow.limits.plan import Check

_CACHE_MAX = 4096


def source_of(addr):
    """The counted source of `addr`: the address, or an IPv6 address's /64."""
    if not addr or ':' not in addr:
        return addr or '-'
    try:
        net = ipaddress.IPv6Network(f'{addr}/64', strict=False)
    except ValueError:
        return addr
    return str(net)


class FailedAuthGuard:
    __slots__ = ('rate', 'store', 'clock', '_checks')

    def __init__(self, per_minute, store, clock=time.monotonic_ns):
        self.rate = Rate(per_minute, MINUTE_NS, per_minute) if per_minute else None
        self.store = store
        self.clock = clock
        self._checks = {}

    def _check(self, addr):
        source = source_of(addr)
        check = self._checks.get(source)
        if check is None:
            if len(self._checks) >= _CACHE_MAX:
                self._checks.clear()
            check = self._checks[source] = Check(
                REQUESTS, f'auth-failures:{source}', f'address {source}', rate=self.rate
            )
        return check

    def authenticate(self, addr, check, *args):
        """`check(*args)` (an authentication that raises `AuthenticationFailed`),
        refused at once while `addr` is blocked; a failure with a key counts."""
        self.refuse_if_blocked(addr)
        try:
            return check(*args)
        except AuthenticationFailed as exc:
            if exc.code != 'missing_api_key':
                self.failed(addr)
            raise

    def refuse_if_blocked(self, addr):
        """Raise `RateLimited` while `addr` has used up its failed attempts."""
        if self.rate is None:
            return
        values = self.store.peek(self._check(addr))
        if values is None:
            return
        verdict = gcra_check(self.rate, values[0], self.clock(), 1)
        if not verdict.admitted:
            raise _blocked(verdict.retry_after_ns)

    def failed(self, addr):
        """Count one failed attempt from `addr`."""
        if self.rate is None:
            return
        try:
            self.store.admit([(self._check(addr), 1)], self.clock(), time.time())
        except StoreUnavailable:
            pass  # NOTE: fails open, as every limit does when the store cannot decide


def _blocked(retry_after_ns):
    seconds = max(1, math.ceil(retry_after_ns / 1e9))
    return RateLimited(
        'Too many requests with an invalid API key from this address. Retry in '
        f'{seconds}s.',
        code='too_many_failed_attempts',
        headers={'Retry-After': str(seconds)},
    )
