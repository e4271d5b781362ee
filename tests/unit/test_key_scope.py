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
