"""Admission plus settlement of one request, per store, with pytest-benchmark.

    .venv/bin/pytest bench/test_limits_admission.py --benchmark-only

A request under a tenant with requests, tokens and parallel limits, a key limit and a
daily budget: five counters decided together, then settled.
"""

import pytest

from aegisflow.chat_request import parse_chat_request
from aegisflow.config import parse_config
from aegisflow.limits.limiter import Limiter
from aegisflow.limits.local import LocalStore
from aegisflow.limits.redis_store import RedisStore
from shm.layout import Layout
from shm.locks import StripedLocks
from shm.segment import Segment
from shm.slots import SlotTable
from tests.support.redis_server import RedisServer
from workers.shm_store import ShmStore

CONFIG = parse_config(
    """
providers: [{name: m, type: mock, models: ["*"], prices: {m: {input: 1, output: 1}}}]
routes: [{match: "*", targets: [m]}]
tenants:
  - id: acme
    keys: [{key: k, name: ci, rate_limit: {requests_per_minute: 1000000000}}]
    rate_limit: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000,
                 max_parallel: 1000000}
    budget: {daily_usd: 1000000000}
""",
    env={},
)
CHAT = parse_chat_request(
    {
        'model': 'm',
        'max_tokens': 50,
        'messages': [{'role': 'user', 'content': 'Hello there'}],
    }
)


class _Runtime:
    def __init__(self):
        self.segment = Segment.create(Layout(slots=2))
        self.locks = StripedLocks(self.segment)
        self.slots = SlotTable(self.segment)


def _cycle(limiter):
    decision, _ = limiter.admit('acme', 'ci', 'm', 'm', CHAT, None)
    assert decision.admitted
    limiter.settle(decision, 'm', 'm', 9, 50)


def test_bench_admission_local(benchmark):
    benchmark(_cycle, Limiter(CONFIG, LocalStore()))


def test_bench_admission_shm(benchmark):
    runtime = _Runtime()
    store = ShmStore(runtime, None, None, 0.25)
    benchmark(_cycle, Limiter(CONFIG, store))


@pytest.fixture(scope='module')
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    yield server.url
    server.stop()


def test_bench_admission_redis(benchmark, redis_url):
    store = RedisStore(redis_url, prefix='bench', timeout_ms=1000)
    benchmark(_cycle, Limiter(CONFIG, store))
