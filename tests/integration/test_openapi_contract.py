"""The gateway against its own OpenAPI description, with Schemathesis.

The description is served at ``/openapi.json``; Schemathesis generates valid and
invalid requests for every operation from it (examples, coverage, fuzzing and
stateful phases, a bounded number of cases each) and sends them to the real
gateway. Every answer must be documented (status, content type, headers, body
schema, SSE events), no answer may be a 5xx, a request that breaks the description
must be refused, a request without a valid key must get 401/403.

Two runs on one gateway: the data plane first, then the admin API (which may force
breakers open and must not disturb the data plane's run). Not checked: that every
valid request is accepted. Some rules cross fields in ways a JSON Schema cannot
state (a named ``tool_choice`` must be one of ``tools``; ``to`` after ``from``;
token-id input needs a provider that takes it), so such requests are refused with a
400 that names the field, which is what the description says they may get.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from aegisflow import __version__
from aegisflow.web.openapi import load_description

ADMIN = 'adm-contract-secret'
TENANT = 'sk-contract-tenant'
CONFIG = """
server: {workers: 2, failed_auth_per_minute: 0, admin_key_env: CONTRACT_ADMIN}
providers:
  - {name: mock, type: mock, models: ["*"]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-contract-tenant, name: ci}]
    rate_limit: {requests_per_minute: 1000000, tokens_per_minute: 1000000000}
    budget: {daily_usd: 1000}
  - id: globex
    keys: [{key: sk-contract-other, name: ops}]
    allowed_models: [gpt-4o-mini]
storage: {sqlite_path: usage.sqlite}
cache: {ttl_s: 60}
"""
AUTH = f"""
[auth.openapi.tenantBearer]
bearer = "{TENANT}"
[auth.openapi.tenantApiKey]
api_key = "{TENANT}"
[auth.openapi.adminBearer]
bearer = "{ADMIN}"
[auth.openapi.adminApiKey]
api_key = "{ADMIN}"
# refusals before the operation reads the request count too: a body too large
# (413), a request line or headers too large for the HTTP server (414, 431)
[checks.negative_data_rejection]
expected-statuses = [
  "400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422",
  "428", "429", "431"
]
"""
# cases per operation and phase; about a minute for both runs on two cores
EXAMPLES = int(os.environ.get('AEGISFLOW_CONTRACT_EXAMPLES', '25'))


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'CONTRACT_ADMIN': ADMIN})


def schemathesis_run(gw, tmp_path, paths):
    config = tmp_path / 'schemathesis.toml'
    config.write_text(AUTH)
    cli = Path(sys.executable).with_name('st')
    proc = subprocess.run(
        [
            str(cli),
            '--config-file',
            str(config),
            '--no-color',
            'run',
            f'{gw.url}/openapi.json',
            '--checks',
            'all',
            '--exclude-checks',
            'positive_data_acceptance',
            '--max-examples',
            str(EXAMPLES),
            '--include-path-regex',
            paths,
            '--request-timeout',
            '20',
            '--output-sanitize',
            'true',
            '--report',
            'har',
            '--report-har-path',
            str(tmp_path / 'run.har'),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc


def answered(tmp_path):
    """(method, path, status) of every exchange the run recorded."""
    har = json.loads((tmp_path / 'run.har').read_text())
    return [
        (
            e['request']['method'],
            urlsplit(e['request']['url']).path,
            e['response']['status'],
        )
        for e in har['log']['entries']
    ]


def statuses(exchanges, method, path_prefix):
    return {s for m, p, s in exchanges if m == method and p.startswith(path_prefix)}


def test_the_description_is_served(gw):
    r = requests.get(f'{gw.url}/openapi.json', timeout=10)
    assert r.status_code == 200
    assert r.headers['Content-Type'].startswith('application/json')
    doc = r.json()
    expected = load_description()
    expected['info']['version'] = __version__
    assert doc == expected
    # it needs no key, and a key does not change it
    keyed = requests.get(
        f'{gw.url}/openapi.json',
        headers={'Authorization': f'Bearer {TENANT}'},
        timeout=10,
    )
    assert keyed.json() == doc
    r = requests.post(f'{gw.url}/openapi.json', timeout=10)
    assert r.status_code == 405
    assert r.headers['Allow'].split(', ') == ['GET', 'OPTIONS']


def test_data_plane_matches_its_description(gw, tmp_path):
    proc = schemathesis_run(gw, tmp_path, r'^/(v1/|healthz|readyz|metrics|openapi)')
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    assert 'Tested: 13' in proc.stdout, proc.stdout[-3000:]
    exchanges = answered(tmp_path)
    assert len(exchanges) > 500
    assert max(s for _, _, s in exchanges) < 500
    # valid requests went all the way through, invalid ones were refused
    for method, path in (
        ('POST', '/v1/chat/completions'),
        ('POST', '/v1/messages'),
        ('POST', '/v1/messages/count_tokens'),
        ('POST', '/v1/embeddings'),
        ('POST', '/v1/responses'),
        ('GET', '/v1/models/'),
    ):
        seen = statuses(exchanges, method, path)
        assert 200 in seen, (method, path, seen)
        assert {401, 404} & seen, (method, path, seen)
    assert {200, 400, 401} <= statuses(exchanges, 'POST', '/v1/chat/completions')
    # the limit headers were there to be checked against the description
    har = json.loads((tmp_path / 'run.har').read_text())
    assert any(
        h['name'].lower() == 'x-ratelimit-remaining-tokens'
        for e in har['log']['entries']
        for h in e['response']['headers']
    )


def test_admin_api_matches_its_description(gw, tmp_path):
    proc = schemathesis_run(gw, tmp_path, r'^/admin/')
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    assert 'Tested: 19' in proc.stdout, proc.stdout[-3000:]
    exchanges = answered(tmp_path)
    assert max(s for _, _, s in exchanges) < 500
    assert {200, 400, 401} <= statuses(exchanges, 'GET', '/admin/v1/usage')
    assert {201, 400} <= statuses(exchanges, 'POST', '/admin/v1/tenants/')
    assert 200 in statuses(exchanges, 'POST', '/admin/v1/breakers')
    assert 200 in statuses(exchanges, 'GET', '/admin/v1/cache')
    assert {200, 400} <= statuses(exchanges, 'DELETE', '/admin/v1/cache')
    assert 400 in statuses(exchanges, 'PATCH', '/admin/v1/keys/')


def test_no_key_in_the_reports(gw, tmp_path):
    """Keys are filtered from Schemathesis' own output too (it prints curl lines)."""
    proc = schemathesis_run(gw, tmp_path, r'^/v1/models$')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert TENANT not in proc.stdout and ADMIN not in proc.stdout
