"""Tenant isolation: a tenant key reads nothing of another tenant (usage, models,
limits, audit rows) and reaches no admin endpoint, whatever it asks for."""

import openai
import pytest
import requests

from tests.support.gateway import wait_until

ADMIN = 'adm-isolation-secret'
CONFIG = """
server: {workers: 2, admin_key_env: ISO_ADMIN}
providers:
  - {name: mock, type: mock, models: [mock, mock-fast, secret-model]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-iso-acme, name: acme-ci}]
    allowed_models: ["mock"]
    rate_limit: {requests_per_minute: 1000}
  - id: globex
    keys: [{key: sk-iso-globex, name: globex-ops}]
    allowed_models: ["secret-model"]
    rate_limit: {requests_per_minute: 77}
"""
ADMIN_ROUTES = [
    ('GET', '/admin/v1/usage'),
    ('GET', '/admin/v1/usage?tenant=globex'),
    ('GET', '/admin/v1/config'),
    ('POST', '/admin/v1/reload'),
    ('GET', '/admin/v1/tenants'),
    ('GET', '/admin/v1/tenants/globex'),
    ('GET', '/admin/v1/tenants/globex/keys'),
    ('POST', '/admin/v1/tenants/globex/keys'),
    ('POST', '/admin/v1/tenants/acme/keys'),
    ('DELETE', '/admin/v1/keys/1'),
    ('GET', '/admin/v1/audit'),
    ('GET', '/admin/v1/breakers'),
    ('POST', '/admin/v1/breakers'),
]


@pytest.fixture(scope='module')
def gw(gateway_factory):
    gw = gateway_factory(CONFIG, env={'ISO_ADMIN': ADMIN})
    # some traffic of each tenant, so that there is something to leak
    for key, model in (('sk-iso-acme', 'mock'), ('sk-iso-globex', 'secret-model')):
        client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        client.chat.completions.create(
            model=model, messages=[{'role': 'user', 'content': 'hi'}]
        )
    return gw


@pytest.mark.parametrize('method, path', ADMIN_ROUTES)
@pytest.mark.parametrize('header', ['Authorization', 'X-API-Key'])
def test_a_tenant_key_reaches_no_admin_endpoint(gw, method, path, header):
    value = 'Bearer sk-iso-acme' if header == 'Authorization' else 'sk-iso-acme'
    r = requests.request(
        method,
        gw.url + path,
        headers={header: value},
        json={'name': 'x', 'target': 'mock/*', 'action': 'open'},
        timeout=10,
    )
    assert r.status_code == 403, r.text
    assert r.json()['error']['code'] == 'admin_only'
    for leak in ('globex', 'secret-model', 'sk-iso', 'globex-ops', '77'):
        assert leak not in r.text


def test_the_admin_key_still_works_after_all_that(gw):
    def tenants_in_usage():
        r = requests.get(
            gw.url + '/admin/v1/usage',
            params={'group_by': 'tenant'},
            headers={'Authorization': f'Bearer {ADMIN}'},
            timeout=10,
        )
        assert r.status_code == 200
        return {row['tenant'] for row in r.json()['rows']}

    # NOTE: the master writes usage rows on its own schedule: poll until both are in
    wait_until(
        lambda: tenants_in_usage() >= {'acme', 'globex'},
        timeout=15,
        what="both tenants' usage written",
    )
    # and the refused attempts created no key
    r = requests.get(
        gw.url + '/admin/v1/tenants/globex/keys',
        headers={'Authorization': f'Bearer {ADMIN}'},
        timeout=10,
    )
    assert [k['name'] for k in r.json()['keys']] == ['globex-ops']


def test_models_of_another_tenant_are_invisible(gw):
    acme = openai.OpenAI(base_url=gw.base_url, api_key='sk-iso-acme', max_retries=0)
    assert [m.id for m in acme.models.list()] == ['mock']
    with pytest.raises(openai.NotFoundError):
        acme.models.retrieve('secret-model')
    with pytest.raises(openai.PermissionDeniedError) as exc:
        acme.chat.completions.create(
            model='secret-model', messages=[{'role': 'user', 'content': 'hi'}]
        )
    assert exc.value.body['code'] == 'model_not_allowed'


def test_limits_shown_are_the_callers_own(gw):
    r = requests.post(
        gw.url + '/v1/chat/completions',
        headers={'Authorization': 'Bearer sk-iso-acme'},
        json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers['x-ratelimit-limit-requests'] == '1000'
    r = requests.post(
        gw.url + '/v1/chat/completions',
        headers={'Authorization': 'Bearer sk-iso-globex'},
        json={'model': 'secret-model', 'messages': [{'role': 'user', 'content': 'x'}]},
        timeout=10,
    )
    assert r.headers['x-ratelimit-limit-requests'] == '77'
