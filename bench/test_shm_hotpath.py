"""Per-request shared-memory work, measured with pytest-benchmark.

    .venv/bin/pytest bench/test_shm_hotpath.py --benchmark-only

`test_bench_request_accounting` is everything a finished request does to shared
memory (counter cells, histogram buckets, two ring records); the target is 10 us.
"""

import time

import pytest

from aegisflow.config import parse_config
from aegisflow.pricing import PriceTable
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.labels import LabelSpace
from aegisflow.telemetry.recorder import Attempt
from aegisflow.telemetry.recorder import Recorder
from aegisflow.telemetry.tracecontext import Sampler
from shm.cells import CellWriter
from shm.layout import Layout
from shm.locks import StripedLocks
from shm.ring import Ring
from shm.segment import Segment
from shm.table import KeyedTable
from workers.context import ShmSink
from workers.runtime import RECORD_SIZE

CONFIG = parse_config(
    """
providers:
  - {name: mock, type: mock, models: [mock], prices: {mock: {input: 1, output: 2}}}
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: k, name: ci}]}]
""",
    env={},
)


@pytest.fixture(scope='module')
def seg():
    return Segment.create(Layout(slots=4, ring_capacity=4096, record_size=RECORD_SIZE))


def test_bench_ring_push(benchmark, seg):
    ring = Ring(seg, 0)
    payload = bytes(248)

    def push():
        if not ring.push(payload):
            ring.drain()

    benchmark(push)


def test_bench_counter_increment(benchmark, seg):
    writer = CellWriter(seg, 1)
    writer.reserve(1)
    words = seg.words
    key = ev.key(ev.F_REQUESTS, 5, 6, 7, 200)

    def incr():
        words[writer.cell(key, 1)] += 1

    benchmark(incr)


def test_bench_stripe_lock_round_trip(benchmark, seg):
    locks = StripedLocks(seg)

    def round_trip():
        locks.acquire(7, 0.02)
        locks.release(7)

    benchmark(round_trip)


def test_bench_table_update(benchmark, seg):
    table = KeyedTable(seg, StripedLocks(seg))

    def incr(words, base, created):
        words[base] += 1

    benchmark(lambda: table.update(0xDEADBEEF, 42, incr, time.monotonic_ns()))


def test_bench_request_accounting(benchmark, seg):
    labels = LabelSpace(CONFIG)
    recorder = Recorder(
        ShmSink(seg, 2),
        labels,
        PriceTable(CONFIG.prices, CONFIG.providers),
        Sampler(1.0),
    )
    ring = Ring(seg, 2)
    ids = (
        labels.tenants.id('acme'),
        labels.keys.id('acme/ci'),
        labels.models.id('mock'),
        labels.providers.id('mock'),
    )
    usage = {'prompt_tokens': 120, 'completion_tokens': 80}

    def one_request():
        obs = recorder.begin('0123456789abcdef01234567', None, 1)
        obs.tenant, obs.key, obs.model, obs.provider = ids
        attempt = Attempt(obs.provider, 'mock')
        obs.attempts.append(attempt)
        attempt.end(200)
        obs.usage(usage)
        obs.response_model = 'mock'
        recorder.finish(obs, 200)
        if ring.produced - ring.consumed > 4000:
            ring.drain()

    benchmark(one_request)


def test_bench_request_shm_writes(benchmark, seg):
    """Only the shared-memory writes one request makes: 5 counter cells (request,
    tokens, duration histogram, ttft histogram, upstream attempt) and 2 ring records."""
    sink = ShmSink(seg, 3)
    for family in ev.FAMILIES:
        sink.reserve(ev.fallback(family))
    ring = Ring(seg, 3)
    words, cell = sink.words, sink.cell
    keys = [ev.key(f, 2, 3, 2, 200) for f in ev.FAMILIES]
    fb = [ev.fallback(f) for f in ev.FAMILIES]
    record = bytes(248)

    def writes():
        b = cell(keys[0], fb[0])
        words[b] += 1
        b = cell(keys[1], fb[1])
        words[b] += 120
        words[b + 1] += 80
        words[b + 3] += 280_000
        b = cell(keys[2], fb[2])
        words[b + 4] += 1
        words[b + 13] += 1200
        b = cell(keys[3], fb[3])
        words[b + 2] += 1
        words[b + 13] += 300
        b = cell(keys[4], fb[4])
        words[b] += 1
        sink.push(record)
        sink.push(record)
        if ring.produced - ring.consumed > 4000:
            ring.drain()

    benchmark(writes)
