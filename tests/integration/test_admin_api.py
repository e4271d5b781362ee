"""The admin API's first endpoints (usage, config, reload) and the usage command."""

import csv
import io
import os
import subprocess
import sys

import pytest
import requests

from tests.support.gateway import wait_until

CONFIG = """
server: {workers: 2, admin_key_env: ADMIN_KEY}
providers:
  - {name: mock, type: mock, models: [mock, mock-fast],
     prices: {mock: {input: 1000, output: 1000}}}
routes: [{match: "*", targets: [mock]}]
tenants:
  - {id: acme, keys: [{key: sk-acme-1, name: ci}, {key: sk-acme-2, name: ops}]}
  - {id: globex, keys: [{key: sk-globex-1, name: svc}]}
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50, access_log: false}
"""
ADMIN = {'Authorization': 'Bearer admin-secret-1'}


@pytest.fixture(scope='module')
def gw(gateway_factory):
    gw = gateway_factory(CONFIG, env={'ADMIN_KEY': 'admin-secret-1'})
    for key, model in (
        ('sk-acme-1', 'mock'),
        ('sk-acme-1', 'mock'),
        ('sk-acme-2', 'mock'),
        ('sk-acme-1', 'mock-fast'),
        ('sk-acme-2', 'mock-fast'),
        ('sk-globex-1', 'mock-fast'),
        ('sk-acme-1', 'no-such-model'),
    ):
        requests.post(
            gw.base_url + '/chat/completions',
            timeout=10,
            headers={'Authorization': f'Bearer {key}'},
            json={'model': model, 'messages': [{'role': 'user', 'content': 'one two'}]},
        )
    wait_until(
        lambda: usage(gw)['totals']['requests'] == 7,
        timeout=10,
        what='7 rows in the ledger',
    )
    return gw


def usage(gw, **params):
    r = requests.get(
        gw.url + '/admin/v1/usage', params=params, headers=ADMIN, timeout=5
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_usage_grouped_by_tenant_and_model(gw):
    out = usage(gw, group_by='tenant,model')
    table = {(r['tenant'], r['model']): r for r in out['rows']}
    assert {k: r['requests'] for k, r in table.items()} == {
        ('acme', 'mock'): 3,
        ('acme', 'mock-fast'): 2,
        ('acme', 'other'): 1,
        ('globex', 'mock-fast'): 1,
    }
    assert table[('acme', 'other')]['errors'] == 1
    mock = table[('acme', 'mock')]
    assert mock['prompt_tokens'] == 3 * (3 + 3 + 2)
    assert mock['cost_usd'] == pytest.approx(
        (mock['prompt_tokens'] + mock['completion_tokens']) * 1000 / 1e6
    )
    assert out['totals']['requests'] == 7


def test_usage_filters_time_range_and_keys(gw):
    assert usage(gw, tenant='globex')['totals']['requests'] == 1
    by_key = {
        r['key']: r['requests']
        for r in usage(gw, tenant='acme', group_by='key')['rows']
    }
    assert by_key == {'ci': 4, 'ops': 2}
    assert usage(gw, model='mock', provider='mock')['totals']['requests'] == 3
    assert usage(gw, **{'from': '2200-01-01'})['rows'] == []
    days = usage(gw, group_by='day', to='2200-01-01T00:00:00Z')['rows']
    assert len(days) == 1 and days[0]['requests'] == 7
    hours = usage(gw, group_by='hour')['rows']
    assert sum(r['requests'] for r in hours) == 7 and hours[0]['hour'].endswith(
        ':00:00Z'
    )


def test_usage_as_csv(gw):
    r = requests.get(
        gw.url + '/admin/v1/usage',
        headers=ADMIN,
        timeout=5,
        params={'group_by': 'tenant', 'format': 'csv'},
    )
    assert r.headers['Content-Type'].startswith('text/csv')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row['tenant'], row['requests']) for row in rows] == [
        ('acme', '6'),
        ('globex', '1'),
    ]


@pytest.mark.parametrize(
    'params, param',
    [
        ({'group_by': 'week'}, 'group_by'),
        ({'from': 'yesterday'}, 'from'),
        ({'from': '2999-01-01'}, 'from'),
        ({'to': '-5'}, 'to'),
        ({'colour': 'blue'}, 'colour'),
        ({'format': 'xml'}, 'format'),
        ({'from': '2030-01-02', 'to': '2030-01-01'}, 'to'),
        ('tenant=acme&tenant=globex', 'tenant'),
        ('tenant=&model=m', 'tenant'),
        ('group_by', 'group_by'),
        ('step=', 'step'),
    ],
)
def test_usage_bad_parameters(gw, params, param):
    path = '/admin/v1/usage/series' if params == 'step=' else '/admin/v1/usage'
    r = requests.get(gw.url + path, params=params, headers=ADMIN, timeout=5)
    assert r.status_code == 400 and r.json()['error']['param'] == param


def test_admin_auth(gw):
    url = gw.url + '/admin/v1/usage'
    assert requests.get(url, timeout=5).status_code == 401
    assert (
        requests.get(
            url, headers={'Authorization': 'Bearer nope'}, timeout=5
        ).status_code
        == 401
    )
    r = requests.get(url, headers={'Authorization': 'Bearer sk-acme-1'}, timeout=5)
    assert r.status_code == 403 and r.json()['error']['code'] == 'admin_only'
    assert 'rows' not in r.text
    assert (
        requests.get(
            url, headers={'X-API-Key': 'admin-secret-1'}, timeout=5
        ).status_code
        == 200
    )


def test_config_version_and_reload(gw):
    info = requests.get(gw.url + '/admin/v1/config', headers=ADMIN, timeout=5).json()
    assert (
        info['digest']
        == requests.get(gw.url + '/readyz', timeout=5).json()['checks']['config'][
            'digest'
        ]
    )
    gw.config_path.write_text(
        CONFIG.replace(
            '  - {id: globex,',
            '  - {id: initech, keys: [{key: sk-initech-1}]}\n  - {id: globex,',
        )
    )
    r = requests.post(gw.url + '/admin/v1/reload', headers=ADMIN, timeout=5)
    assert r.status_code == 202

    def reloaded():
        return (
            requests.get(
                gw.base_url + '/models',
                timeout=5,
                headers={'Authorization': 'Bearer sk-initech-1'},
            ).status_code
            == 200
        )

    wait_until(reloaded, timeout=30, what='the reloaded config serving')
    new = requests.get(gw.url + '/admin/v1/config', headers=ADMIN, timeout=5).json()
    assert new['digest'] != info['digest'] and new['tenants'] == 3


def test_usage_command_prints_a_table(gw):
    out = subprocess.run(
        [
            sys.executable,
            '-m',
            'aegisflow',
            'usage',
            '--config',
            str(gw.config_path),
            '--group-by',
            'tenant',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, ADMIN_KEY='admin-secret-1'),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ['tenant', 'requests']
    api = usage(gw, group_by='tenant')
    expected = [[r['tenant'], str(r['requests'])] for r in api['rows']]
    expected.append(['TOTAL', str(api['totals']['requests'])])
    assert [line.split()[:2] for line in lines[1:]] == expected
    assert ['acme', '6'] in expected


def _fresh(gw, key):
    """A request on a new connection: connections spread over the workers."""
    return requests.get(
        gw.base_url + '/models',
        timeout=5,
        headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
    )


def test_keys_created_and_revoked_live_on_every_worker(gw):
    r = requests.post(
        gw.url + '/admin/v1/tenants/globex/keys',
        headers=ADMIN,
        json={'name': 'batch'},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key = created['key']
    assert key.startswith('sk-af-') and created['tenant'] == 'globex'
    # No waiting: every worker checks the shared key generation on each request.
    assert [_fresh(gw, key).status_code for _ in range(12)] == [200] * 12
    models = _fresh(gw, key).json()['data']
    assert {m['id'] for m in models} == {'mock', 'mock-fast'}
    listing = requests.get(
        gw.url + '/admin/v1/tenants/globex/keys', headers=ADMIN, timeout=5
    )
    assert key not in listing.text
    names = {(k['name'], k['source']) for k in listing.json()['keys']}
    assert names == {('svc', 'config'), ('batch', 'admin')}
    again = requests.post(
        gw.url + '/admin/v1/tenants/globex/keys',
        headers=ADMIN,
        json={'name': 'svc'},
        timeout=5,
    )
    assert again.status_code == 409 and again.json()['error']['param'] == 'name'
    gone = requests.delete(
        gw.url + f'/admin/v1/keys/{created["id"]}', headers=ADMIN, timeout=5
    )
    assert gone.status_code == 200
    assert [_fresh(gw, key).status_code for _ in range(12)] == [401] * 12
    assert (
        requests.delete(
            gw.url + f'/admin/v1/keys/{created["id"]}', headers=ADMIN, timeout=5
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    'path, body, status, param',
    [
        ('/admin/v1/tenants/globex/keys', {'name': 'bad name'}, 400, 'name'),
        ('/admin/v1/tenants/globex/keys', {}, 400, 'name'),
        ('/admin/v1/tenants/nobody/keys', {'name': 'x'}, 404, None),
    ],
)
def test_key_creation_errors(gw, path, body, status, param):
    r = requests.post(gw.url + path, headers=ADMIN, json=body, timeout=5)
    assert r.status_code == status and r.json()['error']['param'] == param


def test_audit_log_records_admin_actions_without_secrets(gw):
    r = requests.post(
        gw.url + '/admin/v1/tenants/acme/keys',
        headers=ADMIN,
        json={'name': 'audited'},
        timeout=5,
    )
    secret = r.json()['key']
    entries = requests.get(
        gw.url + '/admin/v1/audit', headers=ADMIN, timeout=5, params={'tenant': 'acme'}
    ).json()['entries']
    assert entries[0]['action'] == 'key.create'
    assert entries[0]['detail']['name'] == 'audited'
    assert entries[0]['detail']['request_id'] == r.headers['X-Request-ID']
    everything = requests.get(gw.url + '/admin/v1/audit', headers=ADMIN, timeout=5)
    actions = {e['action'] for e in everything.json()['entries']}
    assert {'key.create', 'key.revoke'} <= actions
    assert secret not in everything.text and 'admin-secret-1' not in everything.text
    assert (
        requests.get(
            gw.url + '/admin/v1/audit', headers=ADMIN, timeout=5, params={'limit': '0'}
        ).status_code
        == 400
    )


def test_run_time_keys_survive_a_restart(tmp_path):
    from tests.support.gateway import GatewayProcess

    gw = GatewayProcess(CONFIG, tmp_path, env={'ADMIN_KEY': 'admin-secret-1'}).start()
    try:
        key = requests.post(
            gw.url + '/admin/v1/tenants/acme/keys',
            headers=ADMIN,
            json={'name': 'durable'},
            timeout=5,
        ).json()['key']
        assert _fresh(gw, key).status_code == 200
    finally:
        gw.stop()
    gw.start()
    try:
        assert _fresh(gw, key).status_code == 200
    finally:
        gw.stop()
