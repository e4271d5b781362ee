"""Admission and settlement on plain numbers (an in-process store, a fake clock)."""

import pytest

from aegisflow.chat_request import parse_chat_request
from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.limits.engine import SPEND_MAX
from aegisflow.limits.engine import reset_label
from aegisflow.limits.limiter import Limiter
from aegisflow.limits.local import LocalStore
from aegisflow.limits.plan import Planner
from aegisflow.limits.plan import periods
from aegisflow.pricing import COST_MAX_NANO

S = 1_000_000_000
CONFIG = parse_config(
    """
providers: [{name: m, type: mock, models: ["*"], prices: {m: {input: 1000, output: 1000}}}]
routes: [{match: "*", targets: [m]}]
tenants:
  - id: acme
    keys: [{key: k1, name: ci, rate_limit: {requests_per_minute: 2}},
           {key: k2, name: ops}]
    rate_limit: {requests_per_minute: 3, tokens_per_minute: 100, max_parallel: 2}
    user_rate_limit: {requests_per_minute: 1}
    model_limits: {"big*": {requests_per_minute: 1}, "*": {tokens_per_minute: 90}}
    budget: {daily_usd: 1, monthly_usd: 5, warn_at: 0.5}
""",
    env={},
)


def chat(text='hi', max_tokens=10):
    return parse_chat_request(
        {
            'model': 'm',
            'max_tokens': max_tokens,
            'messages': [{'role': 'user', 'content': text}],
        }
    )


def test_planner_applies_every_limit_in_scope():
    planner = Planner(CONFIG)
    names = [c.name for c in planner.checks('acme', 'ci', 'big-1', 'u1', 0)]
    kinds = {
        n.split(':')[1] + ':' + n.split(':')[0] for n in names if 'budget' not in n
    }
    assert kinds == {
        'tenant:requests',
        'tenant:tokens',
        'tenant:parallel',
        'key:requests',
        'user:requests',
        'model:requests',
    }
    assert sum(n.startswith('budget:day:') for n in names) == 1
    assert sum(n.startswith('budget:month:') for n in names) == 1
    # the first matching model entry wins; the user is hashed into the name
    other = [c.name for c in planner.checks('acme', 'ops', 'small', 'u' * 5000, 0)]
    assert 'tokens:model:acme/*' in other and 'requests:key:acme/ops' not in other
    assert max(len(n) for n in other) < 120


def test_periods_are_utc_days_and_months():
    (day, d0, d1), (month, m0, m1) = periods(1_700_000_000)  # 2023-11-14 22:13 UTC
    assert (d0, d1) == (19675 * 86400, 19676 * 86400)
    assert month == '2023-11' and m1 - m0 == 30 * 86400


def test_refused_request_charges_nothing():
    limiter = Limiter(CONFIG, LocalStore())
    d1, _ = limiter.admit('acme', 'ci', 'm', 'm', chat(), 'u1')
    assert d1.admitted
    d2, _ = limiter.admit('acme', 'ci', 'm', 'm', chat(), 'u1')  # user limit: 1/min
    assert not d2.admitted and d2.refused.name.startswith('requests:user:')
    assert d2.retry_after_s == 60
    # The tenant's and key's counters were not charged by the refused request.
    d3, _ = limiter.admit('acme', 'ci', 'm', 'm', chat(), 'u2')
    assert d3.admitted and d3.headers['requests'][1] == 0  # key: 2 per minute, 2 used


def test_parallel_is_released_and_tokens_reconciled():
    store = LocalStore()
    limiter = Limiter(CONFIG, store)
    first, reserved = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=30), None)
    assert first.admitted and reserved == 3 + 3 + 1 + 30
    second, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=30), None)
    assert second.admitted
    third, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=1), None)
    assert not third.admitted and third.refused.kind == 'parallel'
    limiter.settle(first, 'm', 'm', prompt=7, completion=3)  # used 10 of 37 reserved
    fourth, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=1), None)
    assert fourth.admitted
    # tokens: 37 (second, unsettled) + 10 (first, reconciled) + 8 (fourth) = 55 of 90
    assert fourth.headers['tokens'][1] == 90 - 55


BUDGET_ONLY = parse_config(
    """
providers: [{name: m, type: mock, models: ["*"], prices: {m: {input: 1000, output: 1000}}}]
routes: [{match: "*", targets: [m]}]
tenants:
  - {id: acme, keys: [{key: k, name: ops}], budget: {daily_usd: 1, warn_at: 0.5}}
""",
    env={},
)


def test_budget_refusal_and_warning():
    limiter = Limiter(BUDGET_ONLY, LocalStore())
    # each request reserves 3+3+1+400 = 407 tokens x $1000/M = $0.407
    first, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=400), None)
    assert first.admitted and first.warnings == []
    limiter.settle(first, 'm', 'm', 7, 400)
    second, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=400), None)
    assert second.admitted and 'daily budget' in second.warnings[0]
    limiter.settle(second, 'm', 'm', 7, 400)
    third, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(max_tokens=400), None)
    assert not third.admitted and third.refused.kind == 'budget'
    assert 'daily budget' in third.message and third.retry_after_s <= 86400


def test_unavailable_store_fails_open_or_closed():
    class Down(LocalStore):
        def admit(self, *a):
            from aegisflow.limits.engine import StoreUnavailable

            raise StoreUnavailable('down')

    decision, _ = Limiter(CONFIG, Down()).admit('acme', 'ops', 'm', 'm', chat(), None)
    assert decision.admitted and decision.degraded
    fallback = Limiter(CONFIG, Down(), fallback=LocalStore())
    decision, _ = fallback.admit('acme', 'ops', 'm', 'm', chat(), None)
    assert decision.admitted and decision.degraded and decision.charges
    closed = parse_config(CONFIG_TEXT_CLOSED, env={})
    decision, _ = Limiter(closed, Down()).admit('acme', 'ops', 'm', 'm', chat(), None)
    assert not decision.admitted and decision.refused is None


CONFIG_TEXT_CLOSED = """
providers: [{name: m, type: mock, models: ["*"]}]
routes: [{match: "*", targets: [m]}]
tenants: [{id: acme, keys: [{key: k, name: ops}], rate_limit: {requests_per_minute: 1}}]
state: {on_backend_error: fail_closed}
"""


@pytest.mark.parametrize(
    'ns, label',
    [
        (0, '0ms'),
        (20_000_000, '20ms'),
        (S, '1s'),
        (61 * S, '1m1s'),
        (3 * 3600 * S, '3h0m0s'),
    ],
)
def test_reset_label_is_openai_duration_format(ns, label):
    assert reset_label(ns) == label


@pytest.mark.parametrize(
    'text, expected',
    [
        (
            'rate_limit: {requests_per_minute: 0}',
            'tenants[0].rate_limit.requests_per_minute: expected an integer from 1 to',
        ),
        ('rate_limit: {}', 'tenants[0].rate_limit: expected at least one of'),
        (
            'rate_limit: {request_burst: 5}',
            'tenants[0].rate_limit.request_burst: expected '
            'request_burst only with requests_per_minute',
        ),
        (
            'budget: {warn_at: 0.5}',
            'tenants[0].budget: expected daily_usd, monthly_usd or max_usd',
        ),
        (
            'budget: {daily_usd: -1}',
            'tenants[0].budget.daily_usd: expected a number from 0 to 1000000000',
        ),
        # a budget past a u64 of nano-USD would fail every request, not at start
        (
            'budget: {monthly_usd: 3.5e+16}',
            'tenants[0].budget.monthly_usd: expected a number from 0 to 1000000000, '
            'found 3.5e+16',
        ),
        (
            'budget: {max_usd: .inf, budget_duration: 30d}',
            'tenants[0].budget.max_usd: expected a number from 0 to 1000000000',
        ),
        (
            'budget: {daily_usd: .nan}',
            'tenants[0].budget.daily_usd: expected a number from 0 to 1000000000',
        ),
        (
            'model_limits: {"[x": {max_parallel: 1}}',
            'tenants[0].model_limits.[x: expected a model name or glob as the key',
        ),
    ],
)
def test_limit_config_errors(text, expected):
    doc = f"""
providers: [{{name: m, type: mock, models: ["*"]}}]
routes: [{{match: "*", targets: [m]}}]
tenants: [{{id: acme, keys: [{{key: k}}], {text}}}]
"""
    with pytest.raises(ConfigError) as exc:
        parse_config(doc, env={})
    assert any(str(p).startswith(expected) for p in exc.value.problems), (
        exc.value.problems
    )


def test_redis_backend_needs_a_url():
    doc = CONFIG_TEXT_CLOSED.replace(
        'state: {on_backend_error: fail_closed}', 'state: {backend: redis}'
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(doc, env={})
    assert 'state.redis_url: expected a redis:// URL' in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        parse_config(
            doc.replace('backend: redis', 'backend: redis, redis_url: "http://x"'),
            env={},
        )
    assert 'expected a redis://, rediss:// or unix:// URL' in str(exc.value)
    assert 'http://x' not in str(exc.value)


def test_a_price_past_ten_dollars_a_token_fails_at_start():
    doc = """
providers: [{name: m, type: mock, models: ["*"],
             prices: {m: {input: 10000000, output: 1.5e+7, cached_input: .inf}}}]
routes: [{match: "*", targets: [m]}]
tenants: [{id: acme, keys: [{key: k}]}]
"""
    with pytest.raises(ConfigError) as exc:
        parse_config(doc, env={})
    problems = [str(p) for p in exc.value.problems]
    assert problems == [
        'providers[0].prices.m.output: expected a number from 0 to 10000000, '
        'found 15000000.0 (number)',
        'providers[0].prices.m.cached_input: expected a number from 0 to 10000000, '
        'found inf (number)',
    ], problems


def test_a_huge_reported_usage_is_capped_in_cost_and_in_the_spend_word():
    doc = """
providers: [{name: m, type: mock, models: ["*"], prices: {m: {input: 1000000, output: 1000000}}}]
routes: [{match: "*", targets: [m]}]
tenants: [{id: acme, keys: [{key: k, name: ops}], budget: {daily_usd: 1000000000}}]
"""
    config = parse_config(doc, env={})
    store = LocalStore()
    limiter = Limiter(config, store)
    # 2^32 tokens of each kind at a dollar a token: USD 1.7e10, capped at 4e9
    cost, priced = limiter.prices.cost_nano('m', 'm', 2**33, 2**32, 2**32, 2**31)
    assert priced and cost == COST_MAX_NANO
    decision, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(), None)
    assert decision.admitted
    for _ in range(4):
        limiter.settle(decision, 'm', 'm', 2**32 - 1, 2**32 - 1)
    (charge,) = decision.charges
    assert store.words[charge.ref] == SPEND_MAX < 2**64
    refused, _ = limiter.admit('acme', 'ops', 'm', 'm', chat(), None)
    assert not refused.admitted and 'budget' in refused.message
