"""Tenants created at run time through the admin API: read with the config file's
rules and words, serving from their first key on every worker at once, held to
their limits, named in usage, changed live, deleted (their keys stop, their usage
stays); a tenant of the file stays the file's."""

import pytest
import requests

from tests.support.gateway import wait_until

ADMIN_KEY = 'adm-tenants'
ADMIN = {'Authorization': f'Bearer {ADMIN_KEY}'}
CONFIG = """
server: {workers: 4, admin_key_env: TENANTS_ADMIN}
providers:
  - {name: mock, type: mock, models: [mock, mock-fast]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: filed
    keys: [{key: sk-filed}]
policies:
  input:
    - {name: emails, type: pii, kinds: [email], action: redact}
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'TENANTS_ADMIN': ADMIN_KEY})


def admin(gw, method, path, **kw):
    return requests.request(method, gw.url + path, headers=ADMIN, timeout=10, **kw)


def chat(gw, key, model='mock'):
    return requests.post(
        gw.base_url + '/chat/completions',
        json={'model': model, 'messages': [{'role': 'user', 'content': 'hi'}]},
        headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
        timeout=10,
    )


def test_a_tenant_made_at_run_time_serves_at_once_within_its_limits(gw):
    r = admin(
        gw,
        'POST',
        '/admin/v1/tenants',
        json={
            'id': 'beta',
            'allowed_models': ['mock'],
            'rate_limit': {'requests_per_minute': 3},
            'policies': ['emails'],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()['source'] == 'admin'
    key = admin(gw, 'POST', '/admin/v1/tenants/beta/keys', json={'name': 'first'})
    assert key.status_code == 201, key.text
    secret = key.json()['key']
    statuses = [chat(gw, secret).status_code for _ in range(8)]
    assert statuses.count(200) == 3 and statuses.count(429) == 5
    assert chat(gw, secret, model='mock-fast').status_code == 403
    listing = admin(gw, 'GET', '/admin/v1/tenants').json()['tenants']
    assert {t['id']: t['source'] for t in listing} == {
        'filed': 'config',
        'beta': 'admin',
    }

    def usage():
        out = admin(
            gw, 'GET', '/admin/v1/usage', params={'group_by': 'tenant,key'}
        ).json()
        return {(r['tenant'], r['key']): r['requests'] for r in out['rows']}

    # every answer is a row: 3 served, 5 refused by the limit, 1 by the model list
    wait_until(
        lambda: usage().get(('beta', 'first')) == 9, timeout=15, what='usage by name'
    )


def test_a_change_applies_from_the_next_request(gw):
    admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'gamma'})
    secret = admin(
        gw, 'POST', '/admin/v1/tenants/gamma/keys', json={'name': 'k'}
    ).json()['key']
    assert chat(gw, secret, model='mock-fast').status_code == 200
    r = admin(
        gw,
        'PATCH',
        '/admin/v1/tenants/gamma',
        json={'allowed_models': ['mock'], 'rate_limit': {'requests_per_minute': 50}},
    )
    assert r.status_code == 200, r.text
    assert chat(gw, secret, model='mock-fast').status_code == 403
    answer = chat(gw, secret)
    assert answer.headers['x-ratelimit-limit-requests'] == '50'


def test_a_tenant_of_the_file_stays_the_files(gw):
    r = admin(gw, 'PATCH', '/admin/v1/tenants/filed', json={'allowed_models': ['x']})
    assert r.status_code == 409
    assert r.json()['error']['code'] == 'tenant_in_config'
    assert admin(gw, 'DELETE', '/admin/v1/tenants/filed').status_code == 409
    r = admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'filed'})
    assert r.status_code == 409
    assert (
        admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'beta'}).status_code == 409
    )


def test_a_bad_tenant_is_400_in_the_config_files_words(gw):
    r = admin(
        gw,
        'POST',
        '/admin/v1/tenants',
        json={'id': 'bad', 'rate_limit': {'requests_per_minute': 0}},
    )
    assert r.status_code == 400
    error = r.json()['error']
    assert error['param'] == 'rate_limit.requests_per_minute'
    assert 'expected an integer from 1 to 1000000000, found 0' in error['message']
    r = admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'bad', 'policies': ['nope']})
    assert r.status_code == 400 and r.json()['error']['param'] == 'policies[0]'
    # a budget past what a u64 of nano-USD holds: refused, not kept to fail later
    r = admin(
        gw,
        'POST',
        '/admin/v1/tenants',
        json={'id': 'bad', 'budget': {'daily_usd': 3.5e16}},
    )
    assert r.status_code == 400 and r.json()['error']['param'] == 'budget.daily_usd'
    assert admin(gw, 'GET', '/admin/v1/tenants/bad').status_code == 404
    # a PATCH's null removes a field; an unknown field is refused, null or not
    admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'patched'})
    for body in ({'': None}, {'colour': None}, {'rate_limits': {}}):
        r = admin(gw, 'PATCH', '/admin/v1/tenants/patched', json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()['error']['param'] == (next(iter(body)) or None), body


def test_the_largest_budget_is_kept_and_shown(gw):
    r = admin(
        gw,
        'POST',
        '/admin/v1/tenants',
        json={'id': 'rich', 'budget': {'max_usd': 1e9, 'budget_duration': '9999d'}},
    )
    assert r.status_code == 201, r.text
    shown = admin(gw, 'GET', '/admin/v1/tenants/rich')
    assert shown.status_code == 200, shown.text
    assert shown.json()['budget']['max_usd'] == 1e9
    assert shown.json()['budget']['budget_duration'] == '9999d'
    (spend,) = shown.json()['counters']
    assert spend['limit_usd'] == 1e9 and spend['spent_usd'] == 0
    secret = admin(
        gw, 'POST', '/admin/v1/tenants/rich/keys', json={'name': 'k'}
    ).json()['key']
    assert chat(gw, secret).status_code == 200


def test_a_deleted_tenant_s_keys_stop_and_its_usage_stays(gw):
    admin(gw, 'POST', '/admin/v1/tenants', json={'id': 'gone'})
    secret = admin(
        gw, 'POST', '/admin/v1/tenants/gone/keys', json={'name': 'k'}
    ).json()['key']
    assert chat(gw, secret).status_code == 200
    r = admin(gw, 'DELETE', '/admin/v1/tenants/gone')
    assert r.status_code == 200 and r.json()['keys_revoked'] == 1
    assert chat(gw, secret).status_code == 401
    assert admin(gw, 'GET', '/admin/v1/tenants/gone').status_code == 404

    def rows():
        out = admin(gw, 'GET', '/admin/v1/usage', params={'tenant': 'gone'}).json()
        return out['totals']['requests']

    wait_until(lambda: rows() == 1, timeout=15, what='the usage kept')
