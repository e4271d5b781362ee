"""Admin views of live state: tenants (limits, counters, spend) and breakers."""

import pytest
import requests

from tests.support.gateway import wait_until

ADMIN = {'Authorization': 'Bearer admin-secret-2'}
CONFIG = """
server: {workers: 2, admin_key_env: ADMIN_KEY}
providers:
  - {name: main, type: mock, models: [mock], prices: {mock: {input: 1000, output: 1000}}}
  - {name: spare, type: mock, models: [mock]}
routes: [{match: "*", targets: [main, spare]}]
tenants:
  - id: acme
    keys: [{key: sk-acme-9, name: ci, rate_limit: {requests_per_minute: 50}}]
    rate_limit: {requests_per_minute: 10, tokens_per_minute: 60000, max_parallel: 5}
    budget: {daily_usd: 10, monthly_usd: 100}
  - {id: free, keys: [{key: sk-free-9}]}
telemetry: {access_log: false}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'ADMIN_KEY': 'admin-secret-2'})


def chat(gw, key='sk-acme-9', content='one two three'):
    return requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': f'Bearer {key}'},
        json={
            'model': 'mock',
            'max_tokens': 5,
            'messages': [{'role': 'user', 'content': content}],
        },
    )


def admin(gw, path, method='GET', **kw):
    r = requests.request(
        method, gw.url + '/admin/v1' + path, headers=ADMIN, timeout=5, **kw
    )
    return r


def test_tenant_counters_and_spend(gw):
    # NOTE: one long prompt, so that the token counter cannot refill (1,000 tokens a
    # second) before it is read, however slow the machine
    answers = [chat(gw), chat(gw), chat(gw, content='word ' * 4000)]
    assert all(r.status_code == 200 for r in answers)
    used = sum(r.json()['usage']['total_tokens'] for r in answers)
    assert used > 4000
    listing = admin(gw, '/tenants').json()['tenants']
    acme = next(t for t in listing if t['id'] == 'acme')
    assert acme['rate_limit'] == {
        'requests_per_minute': 10,
        'tokens_per_minute': 60000,
        'max_parallel': 5,
    }
    assert acme['budget']['daily_usd'] == 10
    day = next(c for c in acme['spend'] if c.get('period') == 'day')
    assert day['spent_usd'] == pytest.approx(used * 1000 / 1e6)
    detail = admin(gw, '/tenants/acme').json()
    counters = {(c['kind'], c['scope']): c for c in detail['counters']}
    tenant_requests = counters[('requests', "tenant 'acme'")]
    assert tenant_requests['limit'] == 10 and tenant_requests['remaining'] in (7, 8)
    assert counters[('requests', "key 'acme/ci'")]['remaining'] >= 47
    assert counters[('parallel', "tenant 'acme'")]['in_flight'] == 0
    assert counters[('tokens', "tenant 'acme'")]['remaining'] < 60000 - used // 2
    assert admin(gw, '/tenants/nobody').status_code == 404
    free = next(t for t in listing if t['id'] == 'free')
    assert free['rate_limit'] is None and free['spend'] == []


def test_breakers_list_and_force(gw):
    names = {b['target']: b for b in admin(gw, '/breakers').json()['breakers']}
    assert set(names) == {'main/mock', 'spare/mock'}
    assert names['main/mock']['state'] == 'closed'
    r = admin(
        gw,
        '/breakers',
        'POST',
        json={'target': 'main/mock', 'action': 'open', 'seconds': 60},
    )
    assert r.status_code == 200 and r.json()['state'] == 'open'
    # every worker now skips it: the spare answers
    assert {
        chat(gw, 'sk-free-9').headers['X-AegisFlow-Provider'] for _ in range(6)
    } == {'spare'}
    opened = {b['target']: b for b in admin(gw, '/breakers').json()['breakers']}
    assert opened['main/mock']['state'] == 'open'
    assert 0 < opened['main/mock']['open_for_s'] <= 60
    assert (
        admin(
            gw, '/breakers', 'POST', json={'target': 'main/mock', 'action': 'close'}
        ).status_code
        == 200
    )
    wait_until(
        lambda: chat(gw, 'sk-free-9').headers['X-AegisFlow-Provider'] == 'main',
        timeout=5,
        what='main serving again',
    )


@pytest.mark.parametrize(
    'body, status, param',
    [
        ({'target': 'ghost/mock', 'action': 'open'}, 404, 'target'),
        ({'target': 'main/mock', 'action': 'flip'}, 400, 'action'),
        ({'target': 'main/mock', 'action': 'open', 'seconds': 0}, 400, 'seconds'),
    ],
)
def test_breaker_force_errors(gw, body, status, param):
    r = admin(gw, '/breakers', 'POST', json=body)
    assert r.status_code == status and r.json()['error']['param'] == param


def test_state_endpoints_refuse_tenant_keys(gw):
    for path in ('/tenants', '/tenants/acme', '/breakers'):
        r = requests.get(
            gw.url + '/admin/v1' + path,
            timeout=5,
            headers={'Authorization': 'Bearer sk-acme-9'},
        )
        assert r.status_code == 403 and 'tenants' not in r.text
