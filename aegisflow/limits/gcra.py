"""GCRA (the generic cell rate algorithm) over plain integers.

A limit of ``rate`` units per ``period`` with a ``burst`` has an emission interval
``T = period / rate`` and a tolerance ``tau = (burst - 1) * T``. Its whole state is
one number, the theoretical arrival time ``tat`` (nanoseconds on a clock every process
shares). A request of ``weight`` units at ``now``:

    new_tat = max(tat, now) + weight * T
    admitted  iff  new_tat - tau <= now + T     (there is room for `weight` units)

The guarantee: up to ``burst`` units may be admitted at once; after that, one unit per
``T``; in any window of length ``period`` at most ``rate + burst - 1`` units are
admitted, so with ``burst = 1`` a limit of N per minute never admits more than N in
any 60 seconds. A refused request is told exactly when it would fit:
``retry_after = new_tat - tau - T - now``.

Durations are computed as ``units * period // rate`` rather than from a rounded ``T``,
so a limit of 10^12 tokens per minute (T below a nanosecond) is still exact.
Token reservations and refunds move ``tat`` by ``delta * T``; a refund never moves it
before ``now`` (unused capacity is not banked beyond a full burst), and a charge
never moves it past ``TAT_MAX``: the state lives in a u64 word, and an upstream that
reports 2^32 tokens against a limit of one a minute would carry it past 2^64 (at the
cap the limit is spent for centuries, which is what the charge means).
"""

from dataclasses import dataclass

TAT_MAX = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Rate:
    """`rate` units per `period_ns`, `burst` of them at once."""

    rate: int
    period_ns: int
    burst: int

    def __post_init__(self):
        if self.rate < 1 or self.period_ns < 1 or self.burst < 1:
            raise ValueError('rate, period and burst must be positive')

    def span(self, units):
        """Nanoseconds that `units` take at this rate (negative for a refund)."""
        return units * self.period_ns // self.rate

    def units(self, ns):
        """Whole units that fit in `ns` nanoseconds."""
        return ns * self.rate // self.period_ns

    @property
    def emission_ns(self):
        return self.span(1)

    @property
    def tolerance_ns(self):
        return self.span(self.burst - 1)


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    tat: int  # the state to store (unchanged when refused)
    retry_after_ns: int  # 0 when admitted
    remaining: int  # units that could still be admitted now
    reset_ns: int  # until the state is back to a full burst


def check(rate, tat, now, weight=1):
    """Decide one request of `weight` units; pure."""
    horizon = now + rate.span(rate.burst)  # the latest tat that still fits
    base = tat if tat > now else now
    new_tat = base + rate.span(weight)
    if new_tat <= horizon:
        return Verdict(True, new_tat, 0, rate.units(horizon - new_tat), new_tat - now)
    return Verdict(
        False,
        tat,
        new_tat - horizon,
        max(0, rate.units(horizon - base)),
        max(0, base - now),
    )


def adjust(rate, tat, now, delta):
    """Move the state by `delta` units (positive: charge more; negative: refund)."""
    moved = min(tat + rate.span(delta), TAT_MAX)
    return moved if moved > now or delta >= 0 else now


def peek(rate, tat, now):
    """(remaining, reset_ns) without changing anything."""
    base = tat if tat > now else now
    return max(0, rate.units(now + rate.span(rate.burst) - base)), max(0, base - now)
