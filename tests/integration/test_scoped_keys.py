"""Keys created at run time with a scope: their own model list, rate limit, budget,
expiry and metadata, checked with the config file's schema and wording, enforced
exactly across 4 workers, changed live (PATCH), rotated with or without a grace,
and subject to their tenant's limits too."""

import datetime
import time

import pytest
import requests

from tests.support.gateway import wait_until

ADMIN_KEY = 'adm-scoped-secret'
ADMIN = {'Authorization': f'Bearer {ADMIN_KEY}'}
CONFIG = """
server: {workers: 4, admin_key_env: SCOPED_ADMIN}
providers:
  - {name: mock, type: mock, models: [mock, mock-fast],
     prices: {mock: {input: 1, output: 1}, mock-fast: {input: 1, output: 1}}}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-acme-config, name: config-key}]
  - id: capped
    keys: [{key: sk-capped-config, name: config-key}]
    rate_limit: {requests_per_minute: 3}
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'SCOPED_ADMIN': ADMIN_KEY})


def create(gw, tenant='acme', **body):
    return requests.post(
        f'{gw.url}/admin/v1/tenants/{tenant}/keys', json=body, headers=ADMIN, timeout=10
    )


def chat(gw, key, model='mock-fast', **body):
    return requests.post(
        gw.base_url + '/chat/completions',
        json={'model': model, 'messages': [{'role': 'user', 'content': 'hi'}], **body},
        headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
        timeout=10,
    )


def test_a_scoped_key_admits_exactly_its_limit_and_only_its_models(gw):
    r = create(
        gw,
        name='five',
        rate_limit={'requests_per_minute': 5},
        allowed_models=['mock-fast'],
        metadata={'team': 'search'},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made['rate_limit'] == {'requests_per_minute': 5}
    assert made['metadata'] == {'team': 'search'}
    key = made['key']
    statuses = [chat(gw, key).status_code for _ in range(20)]
    assert statuses.count(200) == 5 and statuses.count(429) == 15
    refused = chat(gw, key, model='mock')
    assert refused.status_code == 403
    # the listing shows the scope, never the secret
    listing = requests.get(
        f'{gw.url}/admin/v1/tenants/acme/keys', headers=ADMIN, timeout=10
    ).json()
    shown = next(k for k in listing['keys'] if k.get('id') == made['id'])
    assert shown['allowed_models'] == ['mock-fast']
    assert shown['metadata'] == {'team': 'search'}
    assert key not in str(listing)


def test_a_change_applies_from_the_next_request(gw):
    made = create(gw, name='patched', rate_limit={'requests_per_minute': 5}).json()
    key = made['key']
    assert chat(gw, key, model='mock').status_code == 200
    r = requests.patch(
        f'{gw.url}/admin/v1/keys/{made["id"]}',
        json={
            'rate_limit': {'requests_per_minute': 10},
            'allowed_models': ['mock-fast'],
        },
        headers=ADMIN,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()['rate_limit'] == {'requests_per_minute': 10}
    answer = chat(gw, key)
    assert answer.headers['x-ratelimit-limit-requests'] == '10'
    assert chat(gw, key, model='mock').status_code == 403
    r = requests.patch(
        f'{gw.url}/admin/v1/keys/{made["id"]}',
        json={'allowed_models': None},
        headers=ADMIN,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert 'allowed_models' not in r.json()
    assert chat(gw, key, model='mock').status_code == 200
    # null removes a field the scope has; an unknown one is refused, null or not
    r = requests.patch(
        f'{gw.url}/admin/v1/keys/{made["id"]}',
        json={'budgets': None},
        headers=ADMIN,
        timeout=10,
    )
    assert r.status_code == 400 and r.json()['error']['param'] == 'budgets', r.text
    assert "'budget' or another of the keys" in r.json()['error']['message']


@pytest.mark.parametrize(
    'body, param, words',
    [
        (
            {'rate_limit': {'requests_per_minute': 0}},
            'rate_limit.requests_per_minute',
            'rate_limit.requests_per_minute: expected an integer from 1 to '
            '1000000000, found 0 (integer)',
        ),
        (
            {'budget': {'warn_at': 0.5}},
            'budget',
            'budget: expected daily_usd, monthly_usd or max_usd, found none of them',
        ),
        (
            {'budget': {'max_usd': 6e307, 'budget_duration': '30d'}},
            'budget.max_usd',
            'budget.max_usd: expected a number from 0 to 1000000000, found 6e+307',
        ),
        ({'allowed_models': []}, 'allowed_models', 'allowed_models: expected a list'),
        ({'expires_at': 'soon'}, 'expires_at', 'expires_at: expected a time'),
        ({'metadata': {'x': 'y' * 3000}}, 'metadata', 'metadata: expected at most'),
        ({'colour': 'red'}, 'colour', 'colour: expected one of the keys'),
    ],
)
def test_a_bad_scope_is_400_in_the_config_files_words(gw, body, param, words):
    r = create(gw, name='bad', **body)
    assert r.status_code == 400
    error = r.json()['error']
    assert error['param'] == param
    assert error['code'] == 'invalid_key_scope'
    assert words in error['message']


def test_the_config_file_refuses_a_bad_key_scope_in_the_same_words():
    from aegisflow.config import parse_config
    from aegisflow.config.loader import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config(
            """
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: a
    keys: [{key: sk-a, rate_limit: {requests_per_minute: 0}}]
""",
            env={},
        )
    assert (
        'tenants[0].keys[0].rate_limit.requests_per_minute: expected an integer '
        'from 1 to 1000000000, found 0 (integer)'
    ) in str(err.value)


def test_an_expired_key_says_so(gw):
    past = (
        datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    ).isoformat()
    made = create(gw, name='old', expires_at=past).json()
    r = chat(gw, made['key'])
    assert r.status_code == 401
    error = r.json()['error']
    assert error['code'] == 'key_expired'
    assert 'expired at' in error['message']
    soon = create(gw, name='soon', expires_at=time.time() + 600).json()
    assert chat(gw, soon['key']).status_code == 200


def test_rotation_stops_the_old_secret_at_once_or_after_its_grace(gw):
    made = create(gw, name='rotated').json()
    old = made['key']
    assert chat(gw, old).status_code == 200
    r = requests.post(
        f'{gw.url}/admin/v1/keys/{made["id"]}/rotate', headers=ADMIN, timeout=10
    )
    assert r.status_code == 200
    new = r.json()['key']
    assert new != old
    assert chat(gw, old).status_code == 401
    assert chat(gw, new).status_code == 200
    r = requests.post(
        f'{gw.url}/admin/v1/keys/{made["id"]}/rotate',
        json={'grace_s': 1},
        headers=ADMIN,
        timeout=10,
    )
    newer = r.json()['key']
    assert chat(gw, new).status_code == 200  # within its grace
    assert chat(gw, newer).status_code == 200
    wait_until(
        lambda: chat(gw, new).status_code == 401, timeout=10, what='the grace to end'
    )
    assert chat(gw, newer).status_code == 200


def test_a_run_time_key_is_held_to_its_tenants_limits_too(gw):
    made = create(gw, tenant='capped', name='extra').json()
    statuses = [chat(gw, made['key']).status_code for _ in range(6)]
    assert statuses.count(200) == 3 and statuses.count(429) == 3


def test_a_key_budget_refuses_once_spent(gw):
    made = create(gw, name='budgeted', budget={'daily_usd': 0.0001}).json()
    statuses = [chat(gw, made['key'], max_tokens=5).status_code for _ in range(20)]
    assert statuses[0] == 200
    assert 429 in statuses
    refused = chat(gw, made['key'], max_tokens=5)
    assert refused.json()['error']['code'] == 'insufficient_quota'


def test_a_run_time_keys_usage_is_under_its_own_name(gw):
    made = create(gw, name='named-usage').json()
    for _ in range(3):
        assert chat(gw, made['key']).status_code == 200

    def rows():
        out = requests.get(
            f'{gw.url}/admin/v1/usage',
            params={'tenant': 'acme', 'group_by': 'key'},
            headers=ADMIN,
            timeout=10,
        ).json()
        return {r['key']: r['requests'] for r in out['rows']}

    wait_until(
        lambda: rows().get('named-usage') == 3, timeout=15, what='usage under its name'
    )
    assert 'other' not in rows()


def test_a_budget_of_its_own_period_counts_from_the_keys_creation(gw):
    r = create(
        gw, name='monthly-ish', budget={'max_usd': 0.0001, 'budget_duration': '30d'}
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made['budget'] == {
        'max_usd': 0.0001,
        'budget_duration': '30d',
        'warn_at': 0.8,
    }
    statuses = [chat(gw, made['key'], max_tokens=5).status_code for _ in range(20)]
    assert statuses[0] == 200 and 429 in statuses
    refused = chat(gw, made['key'], max_tokens=5).json()['error']
    assert refused['code'] == 'insufficient_quota'
    assert 'The 30d budget of key' in refused['message']
    # it renews 30 days after the key was made, not at a calendar boundary
    renews = int(refused['message'].rsplit('renews in ', 1)[1].rstrip('s.'))
    assert 30 * 86400 - 120 < renews <= 30 * 86400
