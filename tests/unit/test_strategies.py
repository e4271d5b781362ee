"""Route strategies on an in-process store."""

import pytest

from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.limits.local import LocalStore
from aegisflow.pricing import PriceTable
from aegisflow.providers import build_providers
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.router import Router
from aegisflow.routing.targets import FLUSH_NS
from aegisflow.routing.targets import TargetState

CONFIG = """
providers:
  - {name: cheap, type: mock, models: [m], prices: {m: {input: 0.1, output: 0.2}}}
  - {name: pricey, type: mock, models: [m], prices: {m: {input: 5, output: 15}}}
  - {name: unpriced, type: mock, models: [m]}
routes:
  - {match: "m", targets: [pricey, unpriced, cheap], strategy: STRATEGY}
tenants: [{id: a, keys: [{key: k}]}]
"""


def router(strategy, extra=''):
    config = parse_config(CONFIG.replace('STRATEGY', strategy + extra), env={})
    providers = build_providers(config)
    state = TargetState(LocalStore(), BreakerPolicy())
    return Router(
        config,
        providers,
        state=state,
        prices=PriceTable(config.prices, config.providers),
    ), state


def names(targets):
    return [t.provider.name for t in targets]


def test_lowest_cost_puts_unpriced_last():
    r, _ = router('lowest_cost')
    res = r.resolve('m')
    assert names(res.strategy.order(res.plan, None)) == ['cheap', 'pricey', 'unpriced']


def test_least_latency_prefers_unmeasured_then_fastest():
    r, state = router('least_latency')
    res = r.resolve('m')
    pricey, unpriced, cheap = res.plan
    state.release(pricey, True, 50_000_000, None)
    state.release(cheap, True, 5_000_000, None)
    assert names(res.strategy.order(res.plan, None)) == ['unpriced', 'cheap', 'pricey']
    state.release(unpriced, True, 900_000_000, None)
    assert names(res.strategy.order(res.plan, None)) == ['cheap', 'pricey', 'unpriced']


def test_round_robin_rotates():
    r, _ = router('round_robin')
    res = r.resolve('m')
    firsts = [names(res.strategy.order(res.plan, None))[0] for _ in range(6)]
    assert firsts == ['pricey', 'unpriced', 'cheap'] * 2


def test_custom_strategy_class():
    r, _ = router('custom', ', class: tests.support.strategies.LastFirst')
    res = r.resolve('m')
    assert names(res.strategy.order(res.plan, None)) == ['cheap', 'unpriced', 'pricey']


@pytest.mark.parametrize(
    'klass, expected',
    [
        ('tests.support.strategies.Missing', 'expected an importable class'),
        ('no_such_package.Strategy', 'expected an importable class'),
        (
            'tests.support.strategies.NoOrder',
            'expected a class with an order(targets, request) method',
        ),
    ],
)
def test_custom_strategy_errors_at_load(klass, expected):
    with pytest.raises(ConfigError) as exc:
        router('custom', f', class: {klass}')
    assert any(
        str(p).startswith('routes[0].class: ' + expected) for p in exc.value.problems
    ), exc.value.problems


def test_custom_needs_a_class_and_class_needs_custom():
    with pytest.raises(ConfigError) as exc:
        router('custom')
    assert 'routes[0].class: expected a dotted class path' in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        router('priority', ', class: tests.support.strategies.LastFirst')
    assert 'class only with strategy: custom' in str(exc.value)


class FailingStore(LocalStore):
    """A store whose every decision times out (a stripe held by a stuck process)."""

    def __init__(self):
        super().__init__()
        self.failing = True
        self.lock_calls = 0

    def lock(self, keys, now_ns):
        self.lock_calls += 1
        if self.failing:
            raise StoreUnavailable('stripe 3 still held by pid 1 after 250.0 ms')
        return super().lock(keys, now_ns)


def test_target_state_fails_open_when_the_store_cannot_decide():
    store = FailingStore()
    state = TargetState(store, BreakerPolicy(consecutive_failures=1))
    r, _ = router('round_robin')
    pricey = r.resolve('m').plan[0]
    assert state.acquire(pricey) == (True, None, 0)  # tried as if closed
    state.release(pricey, False, 0, None)  # not recorded, no exception
    assert state.snapshot(pricey)[0] == CLOSED
    # round robin goes on from this worker's own position
    assert [state.next_position(b'k') for _ in range(3)] == [0, 1, 2]
    store.failing = False
    assert state.acquire(pricey) == (True, None, 0)
    assert not state.is_open(pricey)  # the lost failure did not open it


def test_target_state_gives_a_probe_slot_back_through_a_short_outage():
    store = FailingStore()
    store.failing = False
    clock = iter(range(0, 10**15, 10**9)).__next__
    state = TargetState(store, BreakerPolicy(consecutive_failures=1, open_s=1), clock)
    r, _ = router('round_robin')
    target = r.resolve('m').plan[0]
    state.release(target, False, 0, None)  # opens
    allowed, probe, _ = state.acquire(target)  # 1 s later: the half-open probe
    assert allowed and probe is not None
    assert state.acquire(target)[0] is False  # the only probe slot is taken
    calls = store.lock_calls
    store.failing = True

    # the first tries fail, then the store answers: the slot must come back
    original = store.lock

    def flaky(keys, now_ns):
        if store.lock_calls - calls >= 3:
            store.failing = False
        return original(keys, now_ns)

    store.lock = flaky
    state.release(target, True, 1_000, probe)
    assert store.lock_calls - calls == 4
    assert not state.is_open(target)
    assert state.acquire(target) == (True, None, 0)  # closed by the probe


def test_closed_breaker_and_successes_take_no_lock_on_the_hot_path():
    store = FailingStore()
    store.failing = False
    now = [0]
    state = TargetState(store, BreakerPolicy(), lambda: now[0])
    target = router('round_robin')[0].resolve('m').plan[0]
    assert state.acquire(target) == (True, None, 0)  # first: finds the entry
    state.release(target, True, 5_000_000, None)  # first success: shared at once
    calls = store.lock_calls
    for _ in range(100):
        now[0] += 100_000  # 0.1 ms apart: all within one flush interval
        assert state.acquire(target) == (True, None, 0)
        state.release(target, True, 5_000_000, None)
    assert store.lock_calls == calls  # no lock for 100 calls
    now[0] += FLUSH_NS
    state.release(target, True, 5_000_000, None)  # due: one lock round
    assert store.lock_calls == calls + 1


def test_pending_successes_are_shared_before_a_failure_is_recorded():
    """A worker's outcomes reach the breaker in order: its 30 successes are added
    before its failures are judged, so with a 0.5 failure ratio it opens at the
    30th failure (30 of 60 calls), not at the 9th (9 of 10, were they lost)."""
    store = FailingStore()
    store.failing = False
    now = [0]
    policy = BreakerPolicy(
        consecutive_failures=1000, min_calls=10, failure_threshold=0.5
    )
    state = TargetState(store, policy, lambda: now[0])
    target = router('round_robin')[0].resolve('m').plan[0]
    for _ in range(30):
        now[0] += 1000
        state.release(target, True, 1_000, None)
    for i in range(29):
        now[0] += 1000
        state.release(target, False, 0, None)
        # NOTE: acquire reads the shared word without flushing anything
        assert state.acquire(target)[0], f'opened after {i + 1} failures'
    state.release(target, False, 0, None)
    assert not state.acquire(target)[0]


def test_successes_counted_late_do_not_end_a_later_run_of_failures():
    """Two workers on one store: B's successes, counted before A's failures but
    added after them, must not reset the run; B's failure then opens it."""
    store = FailingStore()
    store.failing = False
    now = [0]
    policy = BreakerPolicy(consecutive_failures=3, min_calls=1000)
    a = TargetState(store, policy, lambda: now[0])
    b = TargetState(store, policy, lambda: now[0])
    target = router('round_robin')[0].resolve('m').plan[0]
    for _ in range(5):  # B: successes, the first shared at once, the rest pending
        now[0] += 1000
        b.release(target, True, 1_000, None)
    for _ in range(2):  # A: two failures, later than all of B's successes
        now[0] += 1000
        a.release(target, False, 0, None)
    now[0] += 1000
    b.release(target, False, 0, None)  # B adds its old successes, then fails
    assert not a.acquire(target)[0]  # three failures in a row: open
