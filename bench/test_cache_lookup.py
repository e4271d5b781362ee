"""The response cache's cost on the request path, measured with pytest-benchmark.

    .venv/bin/pytest bench/test_cache_lookup.py --benchmark-only

A miss costs the key (SHA-256 over the canonical request) and one lookup; a hit
costs the key, the lookup and decoding the stored answer. Targets: 30 us each for a
4 KB request and a 4 KB answer, on the local (LMDB) store.
"""

import pytest

from aegisflow.cache import ResponseCache
from aegisflow.config import parse_config
from aegisflow.providers import build_providers
from aegisflow.routing.router import Router

CONFIG = parse_config(
    """
providers:
  - {name: mock, type: mock, models: [mock]}
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: k, name: ci}]}]
cache: {enabled: true, max_bytes: 67108864}
""",
    env={},
)


class _Principal:
    tenant_id = 'acme'
    key_name = 'ci'
    tenant = CONFIG.tenants[0]


def _body(i):
    return {
        'model': 'mock',
        'temperature': 0,
        'messages': [
            {'role': 'system', 'content': 'You are terse. ' * 40},
            {'role': 'user', 'content': f'question {i} ' + 'context words ' * 240},
        ],
    }


@pytest.fixture(scope='module')
def cache():
    c = ResponseCache.build(CONFIG)
    yield c
    c.close()


@pytest.fixture(scope='module')
def resolution():
    return Router(CONFIG, build_providers(CONFIG)).resolve('mock')


def _ticket(cache, resolution, body):
    return cache.ticket('chat', _Principal, resolution, None, None, body, None)


def test_bench_cache_miss_4k_request(benchmark, cache, resolution):
    body = _body('miss')
    assert len(str(body)) > 4000

    def miss():
        return cache.get(_ticket(cache, resolution, body))

    assert benchmark(miss) is None


def test_bench_cache_hit_4k_answer(benchmark, cache, resolution):
    body = _body('hit')
    ticket = _ticket(cache, resolution, body)
    answer = {
        'id': 'chatcmpl-1',
        'object': 'chat.completion',
        'model': 'mock',
        'choices': [
            {
                'index': 0,
                'message': {'role': 'assistant', 'content': 'answer words ' * 320},
                'finish_reason': 'stop',
            }
        ],
        'usage': {'prompt_tokens': 900, 'completion_tokens': 640},
    }
    cache.put(ticket, {'tenant': 'acme', 'model': 'mock', 'body': answer})

    def hit():
        return cache.get(_ticket(cache, resolution, body))

    assert benchmark(hit).entry['body'] == answer
