"""Retries, fallback, circuit breakers and strategies against fake upstreams that are
real HTTP servers, through real Gunicorn with 4 workers."""

import collections
import time

import pytest
import requests

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import free_port


@pytest.fixture(scope='module')
def primary():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def backup():
    fake = FakeOpenAI(healthy=True).start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, primary, backup):
    closed = free_port()  # nothing listens here: connection refused
    return gateway_factory(f'''
server: {{workers: 4, threads: 8}}
providers:
  - {{name: primary, type: openai_compatible, base_url: "{primary.base_url}",
     models: [{MODELS}, "*"], timeout_s: 0.5}}
  - {{name: backup, type: openai_compatible, base_url: "{backup.base_url}",
     models: [rr-model, w-model, "*"]}}
  - {{name: dead, type: openai_compatible, base_url: "http://127.0.0.1:{closed}/v1",
     models: ["*"], connect_timeout_s: 0.5}}
routes:
  - {{match: "dead-*", targets: [dead, backup]}}
  - {{match: "solo-*", targets: [dead]}}
  - {{match: "rr-model", targets: [primary, backup], strategy: round_robin}}
  - {{match: "w-model", targets: [{{provider: primary, weight: 3}}, {{provider: backup,
      weight: 1}}], strategy: weighted}}
  - {{match: "*", targets: [primary, backup]}}
tenants:
  - {{id: t, keys: [{{key: sk-t}}]}}
retry: {{max_attempts: 3, initial_backoff_ms: 10, max_backoff_ms: 40,
        max_retry_after_s: 2, total_timeout_s: 20}}
circuit_breaker: {{consecutive_failures: 3, min_calls: 100, open_s: 30}}
telemetry: {{access_log: false}}
''')


# Each scenario has a configured model name, so it has a breaker of its own.
MODELS = (
    'rr-model, w-model, flaky-2-a, err-500-b, err-400-c, once429-d, slow-f, '
    'err-503-g0, err-503-g1, cut, err-503-brk'
)


def ask(gw, model, stream=False):
    return requests.post(
        gw.base_url + '/chat/completions',
        timeout=30,
        headers={'Authorization': 'Bearer sk-t', 'Connection': 'close'},
        json={
            'model': model,
            'stream': stream,
            'messages': [{'role': 'user', 'content': 'hi'}],
        },
    )


def served(r):
    return r.headers.get('X-AegisFlow-Provider'), int(r.headers['X-AegisFlow-Attempts'])


def test_retry_then_success_on_the_same_target(gw, primary):
    r = ask(gw, 'flaky-2-a')
    assert r.status_code == 200 and served(r) == ('primary', 3)
    assert primary.calls['flaky-2-a'] == 3


def test_exhausted_retries_fall_back_to_the_next_target(gw, primary, backup):
    r = ask(gw, 'err-500-b')
    assert r.status_code == 200 and served(r) == ('backup', 4)
    assert primary.calls['err-500-b'] == 3 and backup.calls['err-500-b'] == 1
    assert r.json()['choices'][0]['message']['content'] == 'echo: hi'


def test_not_retryable_failure_is_answered_at_once(gw, primary, backup):
    r = ask(gw, 'err-400-c')
    assert r.status_code == 400 and r.json()['error']['code'] == 'upstream_rejected'
    assert primary.calls['err-400-c'] == 1 and backup.calls['err-400-c'] == 0


def test_upstream_retry_after_is_honoured(gw, primary):
    started = time.monotonic()
    r = ask(gw, 'once429-d')
    assert r.status_code == 200 and served(r) == ('primary', 2)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1, not the 10 ms backoff


def test_connection_refused_falls_back(gw, backup):
    r = ask(gw, 'dead-e')
    assert r.status_code == 200 and served(r) == ('backup', 4)


def test_read_timeout_is_retried_then_falls_back(gw, primary):
    r = ask(gw, 'slow-f')
    assert r.status_code == 200 and served(r)[0] == 'backup'
    assert primary.calls['slow-f'] == 3


@pytest.mark.parametrize('stream', [False, True])
def test_streams_fail_over_before_the_first_byte(gw, stream):
    r = ask(gw, f'err-503-g{int(stream)}', stream=stream)
    assert r.status_code == 200 and served(r) == ('backup', 4)
    if stream:
        assert r.text.rstrip().endswith('data: [DONE]')


def test_stream_cut_after_first_byte_is_not_retried(gw, primary, backup):
    r = ask(gw, 'cut', stream=True)
    assert r.status_code == 200 and served(r) == ('primary', 1)
    assert '[DONE]' not in r.text and '"error"' in r.text.strip().splitlines()[-1]
    assert backup.calls['cut'] == 0


def test_breaker_opened_in_any_worker_makes_every_worker_skip(gw, primary, backup):
    model = 'err-503-brk'
    answers = [ask(gw, model) for _ in range(12)]  # fresh connections: all workers
    assert all(r.status_code == 200 for r in answers)
    assert all(served(r)[0] == 'backup' for r in answers)
    # Three failures in a row opened the breaker (whichever worker saw them); after
    # that no worker called the primary again.
    assert primary.calls[model] == 3
    assert [served(r)[1] for r in answers[1:]] == [1] * 11


def test_every_target_open_is_503_with_retry_after(gw):
    first = ask(gw, 'solo-m')  # fails (connection refused) and opens "dead", if not yet
    assert first.status_code in (502, 503)
    r = ask(gw, 'solo-m')
    assert r.status_code == 503
    assert r.json()['error']['code'] == 'no_healthy_target'
    assert 1 <= int(r.headers['Retry-After']) <= 30


def test_round_robin_rotation_is_shared_by_all_workers(gw):
    # Fresh connections spread over the 4 workers; one shared rotation alternates
    # exactly, where per-worker rotations would each start with the first target.
    providers = [served(ask(gw, 'rr-model'))[0] for _ in range(8)]
    assert collections.Counter(providers) == {'primary': 4, 'backup': 4}
    assert all(a != b for a, b in zip(providers, providers[1:], strict=False))


def test_weighted_strategy_picks_by_weight(gw):
    counts = collections.Counter(served(ask(gw, 'w-model'))[0] for _ in range(120))
    assert 65 <= counts['primary'] <= 115  # expected 90 (weight 3 of 4)
    assert counts['primary'] + counts['backup'] == 120


def test_circuit_state_metric(gw):
    from tests.support.gateway import wait_until
    from tests.support.metrics import samples
    from tests.support.metrics import scrape

    def states():
        found = {
            labels['target']: v
            for labels, v in samples(scrape(gw.url), 'aegisflow_circuit_state')
        }
        return found if found.get('primary/err-503-brk') == 1 else None

    found = wait_until(states, timeout=10, what='breakers in metrics')
    assert found['backup/*'] == 0 and found['primary/rr-model'] == 0
    assert found['dead/*'] == 1  # opened by the connection-refused tests
    assert {'primary/err-503-brk', 'primary/*', 'backup/w-model'} <= set(found)
    assert all(t.split('/')[0] in ('primary', 'backup', 'dead') for t in found)


def test_stream_slow_first_token_times_out_and_falls_back(gw, primary):
    r = ask(gw, 'slow-f', stream=True)
    assert r.status_code == 200 and served(r)[0] == 'backup'
    assert r.text.rstrip().endswith('data: [DONE]')
