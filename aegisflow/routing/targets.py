"""Per-target state shared by every worker: circuit breaker, half-open probes,
latency, and each route's round-robin position.

Kept in the same store of counter entries as the limits (the shared-memory keyed
table on one host), one pinned entry per counter:

    breaker:<target>   the breaker words of `aegisflow.routing.resilience`
    probe:<target>     word 1: half-open probes in flight (given back by the master
                       if the worker holding one dies, like a parallel slot);
                       word 2: when the latest probe slot was taken, ns
    latency:<target>   word 0: EWMA of successful call latency, ns (alpha 1/8)
    failed:<target>    word 0: when the target's latest failure was recorded, ns
    rr:<route>         word 0: the route's next position

PERF: the common case takes no lock. A CLOSED breaker is read lock-free (one word
of an entry that never moves: breaker entries are pinned), and a success is counted
in the worker first and added to the shared breaker (calls, and the latency as one
sample of the worker's own average) at most `FLUSH_NS` later while the worker
serves, before any failure it records, and before any read of the target's state
in this worker. So a worker's own outcomes are always seen in order; another
worker's failures may miss at most the last 50 ms of its successes; and successes
added after a failure that came later than them count as calls but neither end the
run of failures nor close a half-open breaker. A breaker counted exactly would need
a lock round on every call.

When the store cannot decide in time (`StoreUnavailable`: a stripe held by a stuck
process, a full table, no Redis), the state fails open: the target is tried as if
its breaker were closed, the outcome is not recorded, and routing goes on from
this worker's own round-robin position. A breaker exists to keep traffic
flowing; it must never be the reason a request fails.

A probe slot is a lease: every way out of an attempt gives it back (`release`
with the outcome, or with ``ok=None`` when the attempt ended for a reason that
was not the target's: the gateway could not encode the request, the client left).
As a last bound, when every probe slot has been held for longer than
`probe_lease_ns` (the breaker's ``open_s`` plus the retry policy's
``total_timeout_s``: no attempt lives longer), the slots are taken back, whatever
holds them, so no leak can keep a target at 503 for good.
"""

import hashlib
import itertools
import logging
import threading
import time

from aegisflow.limits.engine import PINNED
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import OPEN
from aegisflow.routing.resilience import allow
from aegisflow.routing.resilience import record

log = logging.getLogger('aegisflow.routing.targets')

PROBE_RELEASE_TRIES = 8
FLUSH_NS = 50_000_000


def _key(name):
    d = hashlib.blake2b(name.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], 'little'), int.from_bytes(d[8:], 'little')


def breaker_key(name):
    """The shared-table key of the breaker of target `name` (``provider/model``)."""
    return _key(f'breaker:{name}')


class Target:
    """A provider and an upstream model, with the keys of its shared counters.

    `scope` names the counters: the model when the config names it, else ``*`` (one
    breaker for every model a glob lets through), so no client-chosen model name can
    add an entry to the shared table.
    """

    __slots__ = (
        'provider',
        'model',
        'weight',
        'name',
        'breaker',
        'probe',
        'latency',
        'failed',
    )

    def __init__(self, provider, model, weight=1, scope=None):
        self.provider = provider
        self.model = model
        self.weight = weight
        self.name = f'{provider.name}/{scope or model}'
        self.breaker = _key(f'breaker:{self.name}')
        self.probe = _key(f'probe:{self.name}')
        self.latency = _key(f'latency:{self.name}')
        self.failed = _key(f'failed:{self.name}')

    def __repr__(self):
        return f'<Target {self.name}>'


class TargetState:
    def __init__(self, store, policy, clock=time.monotonic_ns, *, probe_lease_s=None):
        self.store = store
        self.policy = policy
        self.clock = clock
        if probe_lease_s is None:
            probe_lease_s = policy.open_s + 60.0
        self.probe_lease_ns = int(probe_lease_s * 1e9)
        self._positions = itertools.count()  # NOTE: only when the store fails
        self._bases = {}  # breaker key -> its entry's base (pinned: never moves)
        # target name -> [target, successes, latency EWMA ns, when the last was]:
        # counted in this worker, not yet shared
        self._pending = {}
        self._flush_at = 0
        self._mutex = threading.Lock()

    def _locked(self, keys):
        now = self.clock()
        handle, entries = self.store.lock(keys, now)
        words = self.store.words
        for base, created in entries:
            if created:
                words[base + 4] = PINNED
        return now, handle, [base for base, _ in entries], words

    def acquire(self, target):
        """(allowed, probe base or None, seconds until it may be tried)."""
        if not self.policy.enabled:
            return True, None, 0
        b = self._bases.get(target.breaker)
        if b is not None and self.store.words[b] == CLOSED:
            return True, None, 0  # PERF: one word, lock-free
        try:
            now, handle, (b, p), words = self._locked([target.breaker, target.probe])
        except StoreUnavailable:
            return True, None, 0
        self._bases[target.breaker] = b
        reclaimed = 0
        try:
            ok, probe = allow(self.policy, words, b, now)
            if not ok:
                return False, None, max(1, -(-(words[b + 1] - now) // 1_000_000_000))
            if not probe:
                return True, None, 0
            if words[p + 1] >= self.policy.half_open_probes:
                if now - words[p + 2] <= self.probe_lease_ns:
                    return False, None, 1
                # NOTE: every slot outlived any attempt: leaked, take them back
                reclaimed, words[p + 1] = words[p + 1], 0
            words[p + 1] += 1
            words[p + 2] = now
            self.store.parallel_taken(p)
            return True, p, 0
        finally:
            self.store.unlock(handle)
            if reclaimed:  # ORDER: logged once the stripe is free
                log.warning(
                    'half-open probe slots held too long were taken back',
                    extra={'target': target.name, 'slots': reclaimed},
                )

    def release(self, target, ok, latency_ns, probe):
        """Record the outcome of a call (and give its probe slot back). `ok` None:
        no outcome to record (the attempt ended for a reason that was not the
        target's); only the probe slot, if any, goes back."""
        if ok is None and probe is None:
            return
        if ok and probe is None:
            self._count_success(target, latency_ns)
            return
        self.flush()  # ORDER: this worker's successes before its failure
        self._record(target, ok, latency_ns, probe)

    def _count_success(self, target, latency_ns):
        now = self.clock()
        with self._mutex:
            entry = self._pending.get(target.name)
            if entry is None:
                entry = self._pending[target.name] = [target, 0, 0, 0]
            entry[1] += 1
            entry[3] = now
            if latency_ns > 0:
                old = entry[2]
                entry[2] = latency_ns if old == 0 else old + (latency_ns - old) // 8
            if now < self._flush_at:
                return
            self._flush_at = now + FLUSH_NS
            pending, self._pending = self._pending, {}
        self._share(pending)

    def flush(self):
        """Add this worker's counted successes to the shared state now."""
        with self._mutex:
            pending, self._pending = self._pending, {}
        self._share(pending)

    def _share(self, pending):
        for target, successes, latency_ns, last_ns in pending.values():
            self._record(target, True, latency_ns, None, successes, last_ns)

    def _record(self, target, ok, latency_ns, probe, n=1, at=None):
        """`at`: when the last of `n` counted successes happened (None: now)."""
        keys = [target.breaker, target.latency, target.failed]
        if probe is not None:
            keys.append(target.probe)
        # NOTE: a half-open probe slot must come back, or the target stays
        # half-open with no probe allowed: try again while the master frees the
        # stripes of a dead holder (a plain outcome is just not counted)
        tries = PROBE_RELEASE_TRIES if probe is not None else 1
        for attempt in range(tries):
            try:
                now, handle, bases, words = self._locked(keys)
                break
            except StoreUnavailable:
                if attempt == tries - 1:
                    return
        try:
            self._bases[target.breaker] = bases[0]
            failed = bases[2]
            if self.policy.enabled and ok is not None:
                # NOTE: successes counted before the latest failure (by this or
                # another worker) must not end the run of failures after them
                fresh = at is None or at > words[failed]
                record(self.policy, words, bases[0], now, ok, n, fresh)
            if ok is False:
                words[failed] = now
            if ok and latency_ns > 0:
                old = words[bases[1]]
                words[bases[1]] = (
                    latency_ns if old == 0 else old + (latency_ns - old) // 8
                )
            if probe is not None:
                p = bases[3]
                words[p + 1] = words[p + 1] - 1 if words[p + 1] else 0
                self.store.parallel_released(p)
        finally:
            self.store.unlock(handle)

    def snapshot(self, target):
        """(breaker state, open until ns, latency EWMA ns): a consistent read."""
        self.flush()
        try:
            now, handle, (b, lat), words = self._locked(
                [target.breaker, target.latency]
            )
        except StoreUnavailable:
            return CLOSED, 0, 0, self.clock()
        try:
            return words[b], words[b + 1], words[lat], now
        finally:
            self.store.unlock(handle)

    def next_position(self, route_key):
        try:
            now, handle, (base,), words = self._locked([route_key])
        except StoreUnavailable:
            return next(self._positions)
        try:
            position = words[base]
            words[base] = position + 1
            return position
        finally:
            self.store.unlock(handle)

    def force(self, target, state, seconds=0.0):
        """Admin override: open the breaker for `seconds`, or close it now."""
        self.flush()
        now, handle, (b,), words = self._locked([target.breaker])
        try:
            words[b] = state
            words[b + 1] = now + int(seconds * 1e9) if state == OPEN else 0
            words[b + 2] = now if state != OPEN else words[b + 2]
            words[b + 3] = 0
        finally:
            self.store.unlock(handle)

    def is_open(self, target):
        state, until, _, now = self.snapshot(target)
        return state == OPEN and now < until
