"""Admission and settlement over a transactional store of counter entries.

`admit` takes every check that applies, locks all their entries at once
(``store.transaction``), decides each on plain numbers (GCRA for requests and tokens,
a count for parallel, a sum for budgets) and commits all of them or none: no limit is
charged for a refused request, and concurrent requests in any worker see each
other's charges. `settle` runs when the request ends: tokens and spend are reconciled
from the reservation to what the provider reported, the parallel slot is released.

Entry words (five per counter, the fifth is "pinned until", see `shm.table`):
requests and tokens keep the GCRA state in word 0; parallel keeps the count in word
1; a budget keeps the nano-USD spent (committed and reserved) in word 0.

If the store cannot be reached within its lock timeout, or its table is full,
admission fails open (the request goes on, unlimited) and the store counts it.
"""

import math
import time
from dataclasses import dataclass
from dataclasses import field

from aegisflow.limits import gcra
from aegisflow.limits.plan import NANO_USD
from aegisflow.limits.plan import PARALLEL
from aegisflow.limits.plan import REQUESTS
from aegisflow.limits.plan import SPEND
from aegisflow.limits.plan import TOKENS

PINNED = (1 << 64) - 1
SPEND_MAX = (1 << 63) - 1  # nano-USD: spent for good, and still a u64
_SETTLED = (TOKENS, SPEND, PARALLEL)
_ADJECTIVE = {'day': 'daily', 'month': 'monthly'}
EVICT_IDLE_NS = 10 * 60_000_000_000


@dataclass(slots=True)
class Charge:
    check: object
    weight: int  # tokens reserved, nano-USD reserved, 1 for requests/parallel
    ref: object = None  # the store's handle for settling (entry base, lease id, ...)


@dataclass(slots=True)
class Decision:
    admitted: bool
    charges: list = field(default_factory=list)
    refused: object = None  # the Check that refused
    retry_after_s: int = 0
    message: str = ''
    # {'requests': (limit, remaining, reset_ns), 'tokens': (...)}: the tightest
    headers: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # budget warnings
    degraded: bool = False  # admitted without limits (store unavailable)
    store: object = None


REFUSED = 2  # the value a budget entry counts its refusals in


def weight_of(check, reserve_tokens, reserve_nano):
    if check.kind == TOKENS:
        return reserve_tokens
    if check.kind == SPEND:
        return reserve_nano
    return 1


def refusal_message(check, weight, retry_after_s):
    if check.kind == REQUESTS:
        what = f'requests per minute: limit {check.rate.rate}'
    elif check.kind == TOKENS:
        what = (
            f'tokens per minute: limit {check.rate.rate}, this request reserves '
            f'{weight}'
        )
        if weight > check.rate.burst:
            return (
                f'Request too large for the token limit of {check.scope}: it '
                f'reserves {weight} tokens (prompt estimate plus max_tokens), more '
                f'than the {check.rate.burst} that can ever be available at once. '
                'Lower max_tokens or the prompt.'
            )
    elif check.kind == PARALLEL:
        what = f'requests in flight: limit {check.limit}'
    else:
        return (
            f'The {_ADJECTIVE.get(check.period, check.period)} budget of '
            f'{check.scope} (USD '
            f'{check.limit / NANO_USD:.2f}) is used up or too small for this '
            f'request; it renews in {retry_after_s}s.'
        )
    return f'Rate limit reached for {check.scope} ({what}). Retry in {retry_after_s}s.'


def decide(checks, entries, words, now_ns, now_unix):
    """Decide `checks` (with weights) on their entries; commit only when all admit.

    `checks` is [(Check, weight)], `entries` the value base of each in `words`.
    Returns a Decision (charges hold the entry bases as refs).
    """
    verdicts = []
    tight = {}
    for (check, weight), base in zip(checks, entries, strict=True):
        kind = check.kind
        if kind in (REQUESTS, TOKENS):
            v = gcra.check(check.rate, words[base], now_ns, weight)
            if not v.admitted:
                if weight > check.rate.burst:
                    retry = 60
                else:
                    retry = max(1, math.ceil(v.retry_after_ns / 1e9))
                return _refused(check, weight, retry)
            verdicts.append((base, 0, v.tat))
            _tighter(tight, kind, check.rate.rate, v.remaining, v.reset_ns)
        elif kind == PARALLEL:
            count = words[base + 1]
            if count >= check.limit:
                return _refused(check, weight, 1)
            verdicts.append((base, 1, count + 1))
        else:  # SPEND
            spent = words[base]
            if spent + weight > check.limit:
                # NOTE: counted, so the master can tell that the budget is spent
                # (it never goes past its limit: the reservation is refused first)
                words[base + REFUSED] += 1
                return _refused(check, weight, max(1, int(check.period_end - now_unix)))
            verdicts.append((base, 0, spent + weight))
    decision = Decision(True, headers=tight)
    for (check, weight), base, (at, offset, value) in zip(
        checks, entries, verdicts, strict=True
    ):
        words[at + offset] = value
        if check.kind == PARALLEL:
            words[base + 4] = PINNED
        elif check.kind == SPEND:
            # NOTE: kept until an hour after its period ends, then it may be evicted.
            words[base + 4] = now_ns + int((check.period_end - now_unix + 3600) * 1e9)
            if check.limit and value >= check.warn_at * check.limit:
                decision.warnings.append(
                    f'{_ADJECTIVE.get(check.period, check.period)} budget of '
                    f'{check.scope} at '
                    f'{100 * value / check.limit:.0f}%'
                )
        decision.charges.append(Charge(check, weight, base))
    return decision


def _refused(check, weight, retry_after_s):
    return Decision(
        False,
        refused=check,
        retry_after_s=retry_after_s,
        message=refusal_message(check, weight, retry_after_s),
    )


def _tighter(tight, kind, limit, remaining, reset_ns):
    current = tight.get(kind)
    if current is None or remaining < current[1]:
        tight[kind] = (limit, remaining, reset_ns)


def settle_words(charge, words, base, now_ns, tokens_used, cost_nano):
    """Reconcile one charge in place (caller holds the entry's lock)."""
    check = charge.check
    if check.kind == TOKENS:
        words[base] = gcra.adjust(
            check.rate, words[base], now_ns, tokens_used - charge.weight
        )
    elif check.kind == SPEND:
        # NOTE: capped below the u64 word: settles of huge reported usage add up
        words[base] = min(max(0, words[base] + cost_nano - charge.weight), SPEND_MAX)
    elif check.kind == PARALLEL:
        count = words[base + 1]
        words[base + 1] = count - 1 if count > 0 else 0
        if words[base + 1] == 0:
            words[base + 4] = 0


def reset_label(ns):
    """OpenAI's duration format for x-ratelimit-reset-*: "1s", "6m0s", "20ms"."""
    if ns < 1_000_000_000:
        return f'{max(0, ns) // 1_000_000}ms'
    seconds = ns / 1e9
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f'{hours}h{minutes}m{secs:.0f}s'
    if minutes:
        return f'{minutes}m{secs:.0f}s'
    return f'{secs:.3g}s'


class StoreUnavailable(Exception):
    """The store could not decide in time (lock timeout, table full, no server)."""


class TransactionalStore:
    """A store of counter entries that can lock several at once; `decide` does the
    rest. Subclasses provide ``words``, ``lock(keys, now_ns)`` returning (a handle,
    ``[(value_base, created)]``), ``lock_entries(charges)`` returning a handle and
    the charges whose entries still hold their key, and ``unlock(handle)``.

    PERF: explicit lock and unlock rather than context managers; settlement reuses
    the entries found at admission instead of looking every key up again.
    """

    name = 'local'

    def admit(self, weighted, now_ns, now_unix):
        """`now_ns` None: the clock is read once the entries are locked, so time
        spent waiting for a lock cannot age the decision."""
        keys = [check.key for check, _ in weighted]
        if now_ns is None:
            handle, entries = self.lock(keys, time.monotonic_ns())
            now_ns = time.monotonic_ns()  # ORDER: after the lock
        else:
            handle, entries = self.lock(keys, now_ns)
        try:
            decision = decide(
                weighted, [base for base, _ in entries], self.words, now_ns, now_unix
            )
            if decision.admitted:
                for charge in decision.charges:
                    if charge.check.kind == PARALLEL:
                        self.parallel_taken(charge.ref)
        finally:
            self.unlock(handle)
        decision.store = self
        return decision

    def settle(self, charges, now_ns, tokens_used, cost_nano):
        todo = [c for c in charges if c.check.kind in _SETTLED]
        if not todo:
            return
        handle, held = self.lock_entries(todo)
        if now_ns is None:
            now_ns = time.monotonic_ns()  # ORDER: after the lock, as in admit
        try:
            for charge in held:
                settle_words(
                    charge, self.words, charge.ref, now_ns, tokens_used, cost_nano
                )
                if charge.check.kind == PARALLEL:
                    self.parallel_released(charge.ref)
        finally:
            self.unlock(handle)

    def parallel_taken(self, base):
        """A request took a parallel slot of the entry at `base`."""

    def parallel_released(self, base):
        """A request gave a parallel slot back."""

    def peek_spend(self, check):
        return None
