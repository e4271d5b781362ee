"""Retry policy and the circuit breaker's state machine, on plain numbers.

Circuit breaker (one per target: provider and upstream model), shared by every
worker. Its state is four words:

    0 state        CLOSED, OPEN or HALF_OPEN
    1 until_ns     OPEN: when it may be probed; HALF_OPEN: when probing started
    2 window_ns    start of the current counting window
    3 counts       calls << 42 | failures << 21 | failures in a row (21 bits each)

CLOSED counts outcomes in a window of ``window_s``; once it has at least
``min_calls`` calls and ``failure_threshold`` of them failed, or
``consecutive_failures`` failed in a row, it OPENs for ``open_s`` (doubled on each
re-opening, up to 8x). An OPEN target is skipped. After ``open_s`` the next caller
moves it to HALF_OPEN; at most ``half_open_probes`` requests, across all workers,
probe it at a time (leased like parallel slots, so a dead worker cannot keep a probe).
A probe's success closes the breaker; a failure opens it again.
"""

import random
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = ('closed', 'open', 'half_open')
_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff_ms: int = 100
    max_backoff_ms: int = 2000
    multiplier: float = 2.0
    jitter: float = 0.2
    retry_on: tuple = (429, 500, 502, 503, 504, 529)
    total_timeout_s: float = 60.0
    max_retry_after_s: float = 10.0

    def retryable(self, status):
        """Status 0 means no answer (connect error, timeout): always retryable."""
        return status == 0 or status in self.retry_on

    def backoff_s(self, attempt, retry_after=None, rng=random.random):
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after_s)
        base = self.initial_backoff_ms * self.multiplier ** (attempt - 1)
        base = min(base, self.max_backoff_ms) / 1000
        return base * (1 - self.jitter + 2 * self.jitter * rng())


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: float = 0.5
    consecutive_failures: int = 5
    window_s: float = 30.0
    min_calls: int = 10
    open_s: float = 30.0
    half_open_probes: int = 1
    enabled: bool = True


_MASK = (1 << 21) - 1


def _split(counts):
    return counts >> 42, (counts >> 21) & _MASK, counts & _MASK


def shown_state(state, until_ns, now_ns):
    """The state to report: an OPEN breaker whose open time is over shows as
    HALF_OPEN (the next call moves it there)."""
    return HALF_OPEN if state == OPEN and until_ns <= now_ns else state


def allow(policy, words, base, now):
    """May a request go to this target now? Moves OPEN to HALF_OPEN when due.

    Returns (allowed, probe): `probe` is True when the request is a half-open probe
    (the caller must hold a probe slot for it)."""
    state = words[base]
    if state == CLOSED:
        return True, False
    if state == OPEN:
        if now < words[base + 1]:
            return False, False
        words[base] = HALF_OPEN
        words[base + 1] = now
        return True, True
    return True, True


def record(policy, words, base, now, ok, n=1, fresh=True):
    """Record the outcome of a call to this target (or of `n` successful calls);
    returns the new state. A success that is not `fresh` happened before the
    target's latest failure (counted late, by another worker): it counts as a call
    but neither ends a run of failures nor closes a half-open breaker."""
    state = words[base]
    if state == HALF_OPEN:
        if ok and not fresh:
            return HALF_OPEN
        if ok:
            _reset(words, base, now, CLOSED)
            words[base + 1] = 0
            return CLOSED
        return _open(policy, words, base, now)
    if state == OPEN:
        return OPEN  # a late outcome of a call made before it opened
    window = int(policy.window_s * _S)
    if now - words[base + 2] >= window:
        _reset(words, base, now, CLOSED)
    calls, failures, in_a_row = _split(words[base + 3])
    calls = min(calls + n, _MASK)
    failures = min(failures + (0 if ok else 1), _MASK)
    if ok:
        in_a_row = 0 if fresh else in_a_row
    else:
        in_a_row = min(in_a_row + 1, _MASK)
    words[base + 3] = calls << 42 | failures << 21 | in_a_row
    if not ok and (
        in_a_row >= policy.consecutive_failures
        or (calls >= policy.min_calls and failures >= policy.failure_threshold * calls)
    ):
        return _open(policy, words, base, now)
    return CLOSED


def _reset(words, base, now, state):
    words[base] = state
    words[base + 2] = now
    words[base + 3] = 0


def _open(policy, words, base, now):
    # NOTE: the open time doubles on each re-opening straight from half-open, up to 8x;
    # the multiplier lives in the high bits of the window word while open.
    reopenings = min(words[base + 2] >> 60, 3) if words[base] == HALF_OPEN else 0
    words[base] = OPEN
    words[base + 1] = now + int(policy.open_s * _S) * (1 << reopenings)
    words[base + 2] = (reopenings + 1) << 60 if reopenings < 3 else 3 << 60
    words[base + 3] = 0
    return OPEN
