"""Route strategies on an in-process store."""

import pytest

from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.limits.local import LocalStore
from aegisflow.pricing import PriceTable
from aegisflow.providers import build_providers
from aegisflow.resilience import BreakerPolicy
from aegisflow.routing import Router
from aegisflow.targets import TargetState

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
