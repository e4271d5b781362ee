"""The breaker a request uses is the one the admin API lists and forces and the
metrics export: one list of targets, from the config.

Providers `a: [gpt-4o]` and `b: ["gpt-*"]`, route `gpt-4o -> [b, a]`: a request for
gpt-4o keys b's breaker by the model the config names, `b/gpt-4o` (a glob alone
would key it `b/*`). b is unreachable, so its breaker opens; the admin API and
/metrics must show that very breaker, and forcing it must change what requests do.
"""

import pytest
import requests

from tests.support.gateway import free_port
from tests.support.gateway import wait_until
from tests.support.metrics import samples
from tests.support.metrics import scrape

ADMIN = {'Authorization': 'Bearer admin-breaker-id-1'}


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream):
    dead = f'http://127.0.0.1:{free_port()}/v1'  # nothing listens there
    return gateway_factory(
        f'''
server: {{workers: 2, admin_key_env: BREAKER_ADMIN}}
providers:
  - {{name: a, type: openai_compatible, base_url: "{upstream.base_url}", models: [gpt-4o]}}
  - {{name: b, type: openai_compatible, base_url: "{dead}", models: ["gpt-*"],
     connect_timeout_s: 1}}
routes:
  - {{match: gpt-4o, targets: [b, a]}}
tenants: [{{id: t, keys: [{{key: sk-breaker-id}}]}}]
retry: {{max_attempts: 1}}
circuit_breaker: {{consecutive_failures: 1, open_s: 60}}
telemetry: {{flush_interval_ms: 50}}
''',
        env={'BREAKER_ADMIN': 'admin-breaker-id-1'},
    )


def ask(gw):
    r = requests.post(
        gw.base_url + '/chat/completions',
        headers={'Authorization': 'Bearer sk-breaker-id'},
        json={'model': 'gpt-4o', 'messages': [{'role': 'user', 'content': 'hi'}]},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    return r.headers['X-AegisFlow-Provider'], int(r.headers['X-AegisFlow-Attempts'])


def breakers(gw):
    r = requests.get(gw.url + '/admin/v1/breakers', headers=ADMIN, timeout=5)
    return {b['target']: b['state'] for b in r.json()['breakers']}


def circuit(gw):
    return {
        labels['target']: v
        for labels, v in samples(scrape(gw.url), 'aegisflow_circuit_state')
    }


def test_the_breaker_a_request_opens_is_listed_exported_and_forcible(gw):
    assert set(breakers(gw)) == {'a/gpt-4o', 'b/gpt-4o'}  # no b/* nobody can use
    assert ask(gw) == ('a', 2)  # b failed, a answered; b's breaker opened
    assert breakers(gw)['b/gpt-4o'] == 'open'
    wait_until(lambda: circuit(gw).get('b/gpt-4o') == 1, timeout=15, what='metric')
    assert set(circuit(gw)) == {'a/gpt-4o', 'b/gpt-4o'}
    # while it is open, requests go straight to a
    assert ask(gw) == ('a', 1)
    # forcing the listed breaker closed sends requests to b again (and b fails)
    r = requests.post(
        gw.url + '/admin/v1/breakers',
        headers=ADMIN,
        json={'target': 'b/gpt-4o', 'action': 'close'},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    assert ask(gw) == ('a', 2)
