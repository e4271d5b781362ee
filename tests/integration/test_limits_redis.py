"""The same limits across two gateway instances (two Gunicorn masters) sharing one
real redis-server, and what happens when Redis goes away and comes back."""

import collections
import concurrent.futures
import itertools
import time

import pytest
import requests

from aegisflow.chat_request import parse_chat_request
from aegisflow.config import parse_config
from aegisflow.limits.limiter import Limiter
from aegisflow.limits.plan import SPEND
from aegisflow.limits.redis_store import RedisStore
from tests.integration.test_limits_shm import RESERVED
from tests.integration.test_limits_shm import WORDS
from tests.support.gateway import GatewayProcess
from tests.support.gateway import wait_until
from tests.support.load import steady
from tests.support.metrics import scrape
from tests.support.metrics import total
from tests.support.redis_server import RedisServer


def config(redis_url, mode='fail_open'):
    return f'''
server: {{workers: 2, threads: 16}}
providers:
  - name: mock
    type: mock
    models: [mock]
    prices: {{mock: {{input: 1000, output: 1000}}}}
  - {{name: slow, type: mock, models: [slow], latency_ms: 1500}}
routes:
  - {{match: "slow", targets: [slow]}}
  - {{match: "*", targets: [mock]}}
tenants:
  - {{id: rpm, keys: [{{key: sk-rpm}}], rate_limit: {{requests_per_minute: 60}}}}
  - {{id: tpm, keys: [{{key: sk-tpm}}], rate_limit: {{tokens_per_minute: 1000}}}}
  - {{id: par, keys: [{{key: sk-par}}], rate_limit: {{max_parallel: 3}}}}
  - {{id: budget, keys: [{{key: sk-budget}}], budget: {{daily_usd: 0.77}}}}
  - {{id: small, keys: [{{key: sk-small}}], rate_limit: {{requests_per_minute: 5}}}}
  - {{id: after, keys: [{{key: sk-after}}], rate_limit: {{requests_per_minute: 5}}}}
  - {{id: load, keys: [{{key: sk-load}}], rate_limit: {{requests_per_minute: 600000}}}}
state:
  backend: redis
  redis_url: "{redis_url}"
  on_backend_error: {mode}
  key_prefix: gw-test
  redis_timeout_ms: 2000  # only a real outage (refused, at once) may trip fallback
storage: {{sqlite_path: usage.sqlite}}
telemetry: {{access_log: false, flush_interval_ms: 50}}
'''


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def pair(redis_server, tmp_path_factory):
    gws = [
        GatewayProcess(
            config(redis_server.url), tmp_path_factory.mktemp(f'gw{i}')
        ).start()
        for i in range(2)
    ]
    yield gws
    for gw in gws:
        gw.stop()


def post(gw, key, model='mock'):
    return requests.post(
        gw.base_url + '/chat/completions',
        timeout=30,
        headers={'Authorization': f'Bearer {key}'},
        json={
            'model': model,
            'max_tokens': 20,
            'messages': [{'role': 'user', 'content': WORDS}],
        },
    )


def spread(gws, key, n, model='mock', concurrency=64):
    targets = list(itertools.islice(itertools.cycle(gws), n))
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda gw: post(gw, key, model), targets))


def admitted(answers):
    return sum(r.status_code == 200 for r in answers)


def test_two_instances_share_one_request_limit(pair):
    started = time.monotonic()
    answers = spread(pair, 'sk-rpm', 200)
    elapsed = time.monotonic() - started
    assert 60 <= admitted(answers) <= 60 + int(elapsed)
    assert all(r.status_code in (200, 429) for r in answers)
    refused = [r for r in answers if r.status_code == 429]
    assert {r.headers['Retry-After'] for r in refused} == {'1'}
    # Both instances answered and both refused: one shared limit, not two.
    ports = {r.url.split(':')[2].split('/')[0] for r in refused}
    assert len(ports) == 2


def test_two_instances_share_token_limits_budgets_and_parallel(pair, redis_server):
    assert admitted(spread(pair, 'sk-tpm', 40)) == 1000 // RESERVED
    codes = [post(gw, 'sk-budget').status_code for gw in pair * 6]
    assert codes == [200] * 10 + [429] * 2
    assert admitted(spread(pair, 'sk-par', 10, model='slow')) == 3
    # Every key the limits wrote carries a TTL: idle keys vanish by themselves.
    client = redis_server.client()
    keys = client.keys('gw-test:*')
    assert keys and all(client.ttl(k) > 0 or client.pttl(k) > 0 for k in keys)


def test_redis_outage_fail_open_and_closed_then_recovery(
    pair, redis_server, tmp_path_factory
):
    closed = GatewayProcess(
        config(redis_server.url, 'fail_closed'), tmp_path_factory.mktemp('closed')
    ).start()
    try:
        redis_server.stop()
        # fail_open: this host's shared-memory limits take over; never a 500.
        answers = [post(pair[0], 'sk-small') for _ in range(8)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
        # fail_closed: 503 with Retry-After, in the OpenAI envelope.
        r = post(closed, 'sk-small')
        assert r.status_code == 503 and r.headers['Retry-After'] == '1'
        assert r.json()['error']['code'] == 'limits_unavailable'
        wait_until(
            lambda: total(scrape(pair[0].url), 'aegisflow_limits_degraded_total') == 8,
            timeout=10,
            what='degraded admissions counted',
        )
        assert 'redis unavailable for limits' in pair[0].log()

        redis_server.start()  # same port: both recover by themselves
        wait_until(
            lambda: post(closed, 'sk-small').status_code in (200, 429),
            timeout=15,
            what='fail_closed instance recovers',
        )
        client = redis_server.client()
        wait_until(
            lambda: (
                post(pair[1], 'sk-rpm').status_code in (200, 429)
                and client.keys('gw-test:requests:*')
            ),
            timeout=15,
            what='limits back in Redis',
        )
    finally:
        closed.stop()


def test_redis_restarted_under_load(pair, redis_server):
    """Redis restarted while both instances serve steady load from 8 clients: no
    request fails (fail_open: each host's own limits stand in), and once Redis is
    back every worker uses it again and a limit is exact across both instances."""
    degraded_before = sum(
        total(scrape(gw.url), 'aegisflow_limits_degraded_total') for gw in pair
    )
    with steady(lambda i: post(pair[i % 2], 'sk-load')) as answers:
        wait_until(lambda: len(answers) >= 40, timeout=30, what='load running')
        redis_server.stop()
        during = len(answers)
        wait_until(
            lambda: len(answers) >= during + 60,
            timeout=30,
            what='requests served while Redis is down',
        )
        redis_server.start()  # same port, empty: counters start again
        back, back_at = len(answers), time.monotonic()
        # NOTE: a worker marks Redis down for 1 s after its last failure
        wait_until(
            lambda: len(answers) >= back + 60 and time.monotonic() > back_at + 1.5,
            timeout=30,
            what='requests served after Redis is back',
        )
    codes = collections.Counter(r.status_code for r in answers)
    assert codes == {200: len(answers)}, codes
    degraded = wait_until(
        lambda: (
            sum(total(scrape(gw.url), 'aegisflow_limits_degraded_total') for gw in pair)
            - degraded_before
        ),
        timeout=10,
        what='degraded admissions counted',
    )
    assert 0 < degraded < len(answers)
    # the counter lives in the restarted Redis again
    assert redis_server.client().exists('gw-test:requests:tenant:load')
    # one limit again, shared by both instances, none of the 4 workers degraded
    answers = spread(pair, 'sk-after', 16)
    assert admitted(answers) == 5
    assert {r.status_code for r in answers} == {200, 429}


def test_huge_reported_usage_settles_capped(redis_server):
    """An upstream reporting absurd usage, again and again: the spend is capped
    below INCRBY's overflow, so the settle script never fails halfway (an error
    there leaves every later step of the script undone: a key's budget, say)."""
    doc = """
providers: [{name: m, type: mock, models: [m], prices: {m: {input: 1000000, output: 1000000}}}]
routes: [{match: "*", targets: [m]}]
tenants:
  - {id: huge, keys: [{key: sk-huge, name: k}], rate_limit: {max_parallel: 1},
     budget: {daily_usd: 1000000000}}
"""
    store = RedisStore(redis_server.url, prefix='huge-usage', timeout_ms=2000)
    limiter = Limiter(parse_config(doc, env={}), store)
    request = parse_chat_request(
        {'model': 'm', 'max_tokens': 5, 'messages': [{'role': 'user', 'content': 'x'}]}
    )
    decision, _ = limiter.admit('huge', 'k', 'm', 'm', request, None)
    assert decision.admitted
    spend = next(c.check for c in decision.charges if c.check.kind == SPEND)
    for _ in range(3):  # 4e18 nano-USD each: a fourth INCRBY would pass 2^63
        limiter.settle(decision, 'm', 'm', 2**32 - 1, 2**32 - 1)
    assert int(store.client.get(store._key(spend))) == 8 * 10**18
    again, _ = limiter.admit('huge', 'k', 'm', 'm', request, None)
    assert not again.admitted and again.refused.kind == SPEND  # the slot is free
