"""The response cache on Redis: two gateways (two hosts, in effect) share entries;
with Redis down every request is still answered (misses); with Redis back, hits."""

import pytest
import requests

from tests.support.fake_openai import FakeOpenAI
from tests.support.redis_server import RedisServer

CONFIG = """
server: {{workers: 2}}
cache: {{enabled: true, backend: redis, redis_url: "{redis}", redis_timeout_ms: 200}}
providers:
  - {{name: up, type: openai_compatible, base_url: "{base}", models: ["*"]}}
routes: [{{match: "*", targets: [up]}}]
tenants:
  - id: acme
    keys: [{{key: sk-acme-1}}]
"""


@pytest.fixture(scope='module')
def upstream():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def pair(gateway_factory, upstream, redis_server):
    text = CONFIG.format(redis=redis_server.url, base=upstream.base_url)
    return gateway_factory(text), gateway_factory(text)


def post(gw, model, text='hello'):
    return requests.post(
        gw.base_url + '/chat/completions',
        json={'model': model, 'messages': [{'role': 'user', 'content': text}]},
        headers={'Authorization': 'Bearer sk-acme-1'},
        timeout=30,
    )


def test_two_gateways_share_entries(pair, upstream):
    one, two = pair
    assert post(one, 'ok-shared').headers['X-AegisFlow-Cache'] == 'miss'
    r = post(two, 'ok-shared')
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert r.json()['choices'][0]['message']['content'] == 'echo: hello'
    assert upstream.calls['ok-shared'] == 1


def test_redis_down_costs_hits_never_requests(pair, upstream, redis_server):
    one, two = pair
    redis_server.stop()
    try:
        for gw in (one, two, one):
            r = post(gw, 'ok-outage')
            assert r.status_code == 200
            assert r.headers['X-AegisFlow-Cache'] == 'store-skipped'
        assert upstream.calls['ok-outage'] == 3
    finally:
        redis_server.start()
    assert post(one, 'ok-outage').status_code == 200  # stored again
    r = post(two, 'ok-outage')
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert upstream.calls['ok-outage'] == 4
