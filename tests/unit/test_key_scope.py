"""A key's scope written in the config file: read like the admin API's, applied by
the key index (models, expiry) and the limits planner (its own limits beside its
tenant's)."""

import pytest

from aegisflow.auth import KeyIndex
from aegisflow.config import parse_config
from aegisflow.errors import AuthenticationFailed
from aegisflow.limits.plan import Planner

CONFIG = """
providers: [{name: mock, type: mock, models: [mock, mock-fast]}]
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    rate_limit: {requests_per_minute: 100}
    keys:
      - key: sk-scoped
        name: scoped
        allowed_models: [mock-fast]
        rate_limit: {requests_per_minute: 5}
        expires_at: 2999-01-01T00:00:00Z
        metadata: {team: search}
      - {key: sk-old, name: old, expires_at: 2001-01-01T00:00:00Z}
      - {key: sk-plain, name: plain}
"""


@pytest.fixture(scope='module')
def config():
    return parse_config(CONFIG, env={})


def test_the_file_takes_a_key_scope(config):
    scoped = config.tenants[0].keys[0]
    assert scoped.scope.allowed_models == ('mock-fast',)
    assert scoped.rate_limit.requests_per_minute == 5
    assert scoped.scope.expires_at == 32472144000.0
    assert scoped.scope.metadata == {'team': 'search'}


def test_the_index_applies_the_models_and_the_expiry(config):
    index = KeyIndex(config.tenants)
    scoped = index.authenticate('Bearer sk-scoped', None)
    assert scoped.may_use('mock-fast') and not scoped.may_use('mock')
    assert index.authenticate('Bearer sk-plain', None).may_use('mock')
    with pytest.raises(AuthenticationFailed) as err:
        index.authenticate('Bearer sk-old', None)
    assert err.value.code == 'key_expired'
    assert '2001-01-01T00:00:00Z' in err.value.message


def test_a_key_is_held_to_its_own_limit_and_its_tenants(config):
    planner = Planner(config)
    names = {c.name for c in planner.checks('acme', 'scoped', 'mock', None, 0)}
    assert names == {'requests:tenant:acme', 'requests:key:acme/scoped'}
    # a key the planner was never told of still gets its tenant's
    names = {c.name for c in planner.checks('acme', 'made-later', 'mock', None, 0)}
    assert names == {'requests:tenant:acme'}


def test_a_budget_of_its_own_period_counts_from_its_anchor():
    from dataclasses import replace

    from aegisflow.config.scope import Budget
    from aegisflow.limits.plan import own_period

    budget = replace(Budget(max_usd=5, budget_duration='30d'), anchor=1_000_000)
    assert own_period(budget, 1_000_000 + 10) == ('1000000', 1_000_000, 3_592_000)
    day31 = 1_000_000 + 31 * 86400
    assert own_period(budget, day31)[1] == 1_000_000 + 30 * 86400
    assert replace(budget, budget_duration='12h').duration_s == 43200


def test_max_usd_needs_its_duration():
    from aegisflow.config.loader import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config(
            CONFIG.replace(
                '      - {key: sk-plain, name: plain}',
                '      - {key: sk-plain, name: plain, budget: {max_usd: 5}}',
            ),
            env={},
        )
    assert (
        'tenants[0].keys[2].budget.budget_duration: expected max_usd and '
        'budget_duration together'
    ) in str(err.value)
