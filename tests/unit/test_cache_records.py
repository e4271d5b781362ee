"""A cache hit's request record: the ledger row spends nothing and says what it
saved, the span says hit and reports no tokens spent, the access log says hit."""

from aegisflow.config import parse_config
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.aggregate import Aggregator
from aegisflow.telemetry.labels import LabelSpace
from aegisflow.telemetry.spans import SpanBuilder
from aegisflow.usage.ledger import COLUMNS

CONFIG = parse_config(
    """
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: k, name: ci}]}]
""",
    env={},
)


def record(cache, prompt=100, completion=50, cost_nano=250_000):
    labels = LabelSpace(CONFIG)
    return labels, ev.Event(
        ev.RECORD.pack(
            ev.REQUEST,
            ev.VERSION,
            ev.SAMPLED,
            1_700_000_000 * 10**9,
            1_000_000,
            0,
            b'\1' * 16,
            b'\2' * 8,
            bytes(8),
            labels.tenants.id('acme'),
            0,
            labels.models.id('mock'),
            labels.providers.id('mock'),
            200,
            0,
            prompt,
            completion,
            7,
            0,
            cost_nano,
            ev.ROUTE_IDS['chat'],
            0,
            0,
            cache,
            3,
            b'req-1',
            b'mock',
            b'mock',
            bytes(16),
        )
    )


def test_a_hit_spends_nothing_and_says_what_it_saved():
    labels, event = record(ev.CACHE_HIT)
    row = dict(zip(COLUMNS, Aggregator(CONFIG, labels)._row(event), strict=True))
    assert (row['prompt_tokens'], row['completion_tokens'], row['cost_usd']) == (
        0,
        0,
        0.0,
    )
    assert row['cached_tokens'] == row['cache_write_tokens'] == 0
    assert row['cache_hit'] == 1 and row['saved_usd'] == 0.00025
    span = SpanBuilder(labels, {'mock': 'mock'}).build(event)
    assert span.attributes['aegisflow.cache.hit'] is True
    assert span.attributes['aegisflow.cache.result'] == 'hit'
    assert span.attributes['gen_ai.usage.input_tokens'] == 0
    assert 'gen_ai.usage.cache_read.input_tokens' not in span.attributes


def test_a_miss_spends_its_tokens():
    labels, event = record(ev.CACHE_RESULTS.index('miss') + 1)
    row = dict(zip(COLUMNS, Aggregator(CONFIG, labels)._row(event), strict=True))
    assert row['prompt_tokens'] == 100 and row['cost_usd'] == 0.00025
    assert row['cache_hit'] == 0 and row['saved_usd'] == 0.0
    span = SpanBuilder(labels, {'mock': 'mock'}).build(event)
    assert span.attributes['aegisflow.cache.hit'] is False
    assert span.attributes['gen_ai.usage.input_tokens'] == 100
