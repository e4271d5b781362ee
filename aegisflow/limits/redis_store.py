"""The limits store in Redis, shared by gateways on several hosts.

One Lua script decides every check of a request and commits all or none, in one
round trip, on the Redis server's clock (``TIME``, microseconds), so hosts with
skewed clocks still share one limit. The semantics are those of `engine.decide`:

- requests, tokens: GCRA, the state a number of microseconds in a key that expires
  once the state is back to a full burst;
- parallel: a sorted set of leases (member: the request, score: lease expiry), so a
  gateway that dies mid-request frees its slots when their lease ends;
- budget: the nano-USD spent in the period, in a key expiring an hour after it.

Keys are ``<key_prefix>:<check name>`` and every one has a TTL, so idle keys vanish.
A connection error or a timeout marks the store down for a second (requests then fail
open or closed at once instead of each waiting on a dead socket) and it retries by
itself afterwards.
"""

import logging
import math
import os
import threading
import time

import redis

from aegisflow.limits.engine import Charge
from aegisflow.limits.engine import Decision
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.limits.engine import refusal_message
from aegisflow.limits.plan import PARALLEL
from aegisflow.limits.plan import REQUESTS
from aegisflow.limits.plan import SPEND
from aegisflow.limits.plan import TOKENS

log = logging.getLogger('aegisflow.limits')

# ARGV[1] = number of checks; then five per check: kind, a, b, weight, extra.
#   g (GCRA): a = emission us, b = tolerance us
#   p (parallel): a = limit, b = lease ms, extra = lease member
#   s (spend): a = limit, b = expire-at unix seconds
# Returns {0, index, retry_after_us} when refused, else {1, remaining1, reset1, ...}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local new = {}
local out = {1}
for i = 1, n do
  local o = 1 + (i - 1) * 5
  local kind, a, b = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local w = tonumber(ARGV[o + 4])
  if kind == 'g' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local base = math.max(tat, now)
    local nt = base + w * a
    if nt - b - a > now then return {0, i, nt - b - a - now} end
    new[i] = nt
    out[#out + 1] = math.floor((now + b + a - nt) / a)
    out[#out + 1] = nt - now
  elseif kind == 'p' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) >= a then return {0, i, 1000000} end
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
    if spent + w > a then return {0, i, -1} end
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
for i = 1, n do
  local o = 1 + (i - 1) * 5
  local kind, a, b = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  if kind == 'g' then
    redis.call('SET', KEYS[i], string.format('%.17g', new[i]), 'PX',
               math.floor((new[i] - now) / 1000) + 1000)
  elseif kind == 'p' then
    redis.call('ZADD', KEYS[i], now + b * 1000, ARGV[o + 5])
    redis.call('PEXPIRE', KEYS[i], b + 1000)
  else
    redis.call('INCRBY', KEYS[i], ARGV[o + 4])
    redis.call('EXPIREAT', KEYS[i], b + 3600)
  end
end
return out
"""

# ARGV[1] = number of charges; then four per charge: kind, a, delta, extra.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
for i = 1, n do
  local o = 1 + (i - 1) * 4
  local kind, a, d = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  if kind == 'g' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local nt = tat + d * a
    if nt < now and d < 0 then nt = now end
    if nt > now then
      redis.call('SET', KEYS[i], string.format('%.17g', nt), 'PX',
                 math.floor((nt - now) / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  elseif kind == 'p' then
    redis.call('ZREM', KEYS[i], ARGV[o + 4])
  else
    local spent = redis.call('GET', KEYS[i])
    if spent then
      -- NOTE: capped below INCRBY's overflow: huge reported usage, settled again
      -- and again, must not fail the script (and the slots it gives back)
      if tonumber(spent) + d > 8e18 then
        redis.call('SET', KEYS[i], '8000000000000000000', 'KEEPTTL')
      else
        local v = redis.call('INCRBY', KEYS[i], ARGV[o + 3])
        if v < 0 then redis.call('SET', KEYS[i], '0', 'KEEPTTL') end
      end
    end
  end
end
return n
"""


class RedisStore:
    name = 'redis'

    def __init__(
        self,
        url,
        *,
        prefix='aegisflow',
        timeout_ms=50,
        lease_s=600,
        down_s=1.0,
        clock=time.monotonic,
    ):
        timeout = timeout_ms / 1000
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self.prefix = prefix
        self.lease_ms = int(lease_s * 1000)
        self.down_s = down_s
        self.clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._admit = self.client.register_script(_ADMIT)
        self._settle = self.client.register_script(_SETTLE)
        self.errors = 0
        self._seq = 0

    def _key(self, check):
        return f'{self.prefix}:{check.name}'

    def _member(self):
        with self._lock:
            self._seq += 1
            return f'{os.getpid()}:{self._seq}:{time.time_ns()}'

    def _call(self, script, keys, args):
        if self.clock() < self._down_until:
            raise StoreUnavailable('redis is marked down')
        try:
            return script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.errors += 1
            self._down_until = self.clock() + self.down_s
            log.warning(
                'redis unavailable for limits', extra={'error': type(exc).__name__}
            )
            raise StoreUnavailable(f'redis: {type(exc).__name__}') from None
        except redis.RedisError as exc:
            self.errors += 1
            log.error('redis refused a limits script', extra={'error': str(exc)[:200]})
            raise StoreUnavailable(f'redis: {type(exc).__name__}') from None

    def admit(self, weighted, now_ns, now_unix):
        keys, args, members = [], [len(weighted)], []
        for check, weight in weighted:
            keys.append(self._key(check))
            member = ''
            if check.kind in (REQUESTS, TOKENS):
                # NOTE: microseconds as a float: Lua numbers are doubles, so a
                # sub-microsecond emission interval keeps its fraction.
                emission = check.rate.period_ns / 1000 / check.rate.rate
                a, b = repr(emission), repr((check.rate.burst - 1) * emission)
                kind = 'g'
            elif check.kind == PARALLEL:
                kind, a, b = 'p', check.limit, self.lease_ms
                member = self._member()
            else:
                kind, a, b = 's', check.limit, check.period_end
            members.append(member)
            args += [kind, a, b, weight, member]
        result = self._call(self._admit, keys, args)
        if result[0] == 0:
            index, retry_us = result[1] - 1, result[2]
            check, weight = weighted[index]
            if check.kind == SPEND:
                retry = max(1, int(check.period_end - now_unix))
            elif check.kind == TOKENS and weight > check.rate.burst:
                retry = 60
            else:
                retry = max(1, math.ceil(retry_us / 1e6))
            return Decision(
                False,
                refused=check,
                retry_after_s=retry,
                message=refusal_message(check, weight, retry),
                store=self,
            )
        decision = Decision(True, store=self)
        for i, ((check, weight), member) in enumerate(
            zip(weighted, members, strict=True)
        ):
            decision.charges.append(Charge(check, weight, member))
            if check.kind in (REQUESTS, TOKENS):
                remaining, reset_us = result[1 + 2 * i], result[2 + 2 * i]
                current = decision.headers.get(check.kind)
                if current is None or remaining < current[1]:
                    decision.headers[check.kind] = (
                        check.rate.rate,
                        remaining,
                        reset_us * 1000,
                    )
        return decision

    def settle(self, charges, now_ns, tokens_used, cost_nano):
        keys, args = [], [0]
        for charge in charges:
            check = charge.check
            if check.kind == TOKENS:
                item = [
                    'g',
                    repr(check.rate.period_ns / 1000 / check.rate.rate),
                    tokens_used - charge.weight,
                    '',
                ]
            elif check.kind == SPEND:
                item = ['s', 0, cost_nano - charge.weight, '']
            elif check.kind == PARALLEL:
                item = ['p', 0, 0, charge.ref]
            else:
                continue
            keys.append(self._key(check))
            args += item
        if keys:
            args[0] = len(keys)
            self._call(self._settle, keys, args)

    def peek_spend(self, check):
        try:
            value = self.client.get(self._key(check))
        except redis.RedisError:
            return None
        return int(value) if value is not None else None

    def seed_spend(self, check, nano):
        """Set a period's spend if Redis has none (after a Redis restart)."""
        try:
            self.client.set(
                self._key(check), nano, nx=True, exat=int(check.period_end) + 3600
            )
        except redis.RedisError:
            pass

    def ping(self):
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
