"""The telemetry core without processes: recorder, aggregation, ids, trace context."""

import sqlite3

import pytest

from aegisflow.config import parse_config
from aegisflow.pricing import PriceTable
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.aggregate import Aggregator
from aegisflow.telemetry.labels import LabelSpace
from aegisflow.telemetry.metrics import Totals
from aegisflow.telemetry.metrics import unpack
from aegisflow.telemetry.recorder import Attempt
from aegisflow.telemetry.recorder import LocalSink
from aegisflow.telemetry.recorder import Recorder
from aegisflow.telemetry.tracecontext import Sampler
from aegisflow.telemetry.tracecontext import parse_traceparent
from aegisflow.usage.ledger import COLUMNS
from aegisflow.usage.ledger import Ledger
from aegisflow.usage.ledger import spent_since
from aegisflow.usage.query import UsageQuery
from tests.support.ledger import HOURLY_QUERIES
from tests.support.ledger import SPREAD_BASE
from tests.support.ledger import ledger_row
from tests.support.ledger import spread_rows
from tests.support.metrics import total

CONFIG = parse_config(
    """
providers:
  - {name: mock, type: mock, models: [mock], prices: {mock: {input: 1, output: 2}}}
routes: [{match: "*", targets: [mock]}]
aliases: {fast: mock}
tenants: [{id: acme, keys: [{key: k, name: ci}]}]
""",
    env={},
)


def recorder(sink=None):
    labels = LabelSpace(CONFIG)
    return Recorder(
        sink or LocalSink(),
        labels,
        PriceTable(CONFIG.prices, CONFIG.providers),
        Sampler(1.0),
    ), labels


def _observed(rec, labels, status=200, **usage):
    obs = rec.begin('req-1', None, ev.ROUTE_IDS['chat'])
    obs.tenant = labels.tenants.id('acme')
    obs.key = labels.keys.id('acme/ci')
    obs.model = labels.models.id('mock')
    obs.provider = labels.providers.id('mock')
    attempt = Attempt(obs.provider, 'mock')
    attempt.end(status)
    obs.attempts.append(attempt)
    obs.usage(
        usage
        or {
            'prompt_tokens': 10,
            'completion_tokens': 5,
            'prompt_tokens_details': {'cached_tokens': 4},
        }
    )
    rec.finish(obs, status)
    return obs


def test_recorder_counts_once_and_prices_exactly():
    rec, labels = recorder()
    obs = _observed(rec, labels)
    rec.finish(obs, 500)  # a second finish must not count again
    agg = Aggregator(CONFIG, labels)
    agg.ingest(rec.sink.records)
    text = unpack(agg.render(Totals().add(rec.sink.cells()))).decode()
    assert total(text, 'aegisflow_requests_total', status='200', tenant='acme') == 1
    assert total(text, 'aegisflow_requests_total') == 1
    assert total(text, 'aegisflow_tokens_total', direction='cached') == 4
    # (10 - 4 cached) x $1/M + 4 x $1/M (no cached price) + 5 x $2/M
    assert total(text, 'aegisflow_cost_usd_total') == pytest.approx(20e-6)
    assert total(text, 'aegisflow_upstream_attempts_total', provider='mock') == 1
    assert len(rec.sink.records) == 2  # one attempt span, one request span


def test_recorder_ignores_nonsense_usage():
    rec, labels = recorder()
    obs = _observed(rec, labels, prompt_tokens=-5, completion_tokens='many')
    assert (obs.prompt, obs.completion) == (0, 0)


def test_event_record_round_trip():
    rec, labels = recorder()
    obs = _observed(rec, labels)
    event = ev.Event(rec.sink.records[-1])
    assert event.kind == ev.REQUEST and event.request_id == 'req-1'
    assert (event.prompt, event.completion, event.cached) == (10, 5, 4)
    assert event.trace_id == obs.trace_id and event.span_id == obs.span_id
    assert event.cost_nano == 20_000
    attempt = ev.Event(rec.sink.records[0])
    assert attempt.kind == ev.ATTEMPT and attempt.parent_id == obs.span_id
    assert ev.fixed('é' * 40) == ('é' * 24).encode()  # never half a character


def test_labels_are_stable_and_bounded():
    labels = LabelSpace(CONFIG)
    before = labels.models.id('mock')
    labels.extend(
        parse_config(
            """
providers: [{name: other-p, type: mock, models: [zeta, mock]}]
routes: [{match: "*", targets: [other-p]}]
tenants: [{id: beta, keys: [{key: k2}]}]
""",
            env={},
        )
    )
    assert labels.models.id('mock') == before and labels.models.id('zeta') > before
    assert labels.models.id('never-configured') == 1  # other
    assert labels.models.id('fast') > 1  # aliases are known names
    small = LabelSpace()
    small.providers.limit = 3
    for name in ('a', 'b', 'c'):
        small.providers.add(name)
    assert small.providers.id('a') == 2 and small.providers.id('b') == 3
    assert small.providers.id('c') == 1


def test_cells_table_full_keeps_totals_exact():
    class TinySink(LocalSink):
        def cell(self, key, fallback):
            if key not in self.index and len(self.index) >= len(ev.FAMILIES) + 4:
                return self.index[fallback]
            return super().cell(key, fallback)

    rec, labels = recorder(TinySink())
    for status in (200, 201, 202, 203, 204, 205, 206):
        _observed(rec, labels, status=status)
    text = unpack(
        Aggregator(CONFIG, labels).render(Totals().add(rec.sink.cells()))
    ).decode()
    assert total(text, 'aegisflow_requests_total') == 7
    assert total(text, 'aegisflow_requests_total', tenant='other') > 0


@pytest.mark.parametrize(
    'header, expected',
    [
        ('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', True),
        ('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00', False),
        ('00-00000000000000000000000000000000-b7ad6b7169203331-01', None),
        ('00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', None),
        ('ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', None),
        ('garbage', None),
        ('', None),
    ],
)
def test_traceparent_parsing(header, expected):
    parsed = parse_traceparent(header)
    assert (parsed[2] if parsed else None) == expected


def test_sampler_ratio_is_applied_to_new_traces():
    assert all(Sampler(1.0).start(None)[2] for _ in range(50))
    assert not any(Sampler(0.0).start(None)[2] for _ in range(50))
    half = sum(Sampler(0.5).start(None)[2] for _ in range(2000))
    assert 800 < half < 1200


def test_ledger_keeps_rows_while_locked_and_writes_them_later(tmp_path):
    path = tmp_path / 'u.sqlite'
    ledger = Ledger(str(path))
    row = ledger_row(key_name='ci', completion_tokens=2)
    ledger.add(row)
    assert ledger.flush() == 1
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute('BEGIN EXCLUSIVE')
    ledger.add(ledger_row(request_id='r2'))
    assert ledger.flush() == 0 and ledger.errors == 1 and len(ledger.pending) == 1
    blocker.execute('COMMIT')
    assert ledger.flush() == 1 and not ledger.pending
    ids = [r for (r,) in sqlite3.connect(path).execute('SELECT request_id FROM usage')]
    assert ids == ['r1', 'r2']


def test_ledger_pending_rows_are_capped(tmp_path):
    ledger = Ledger(str(tmp_path / 'nodir' / 'file-not-dir'), max_pending=3)
    (tmp_path / 'nodir').write_text('a file where a directory should be')
    for i in range(5):
        ledger.add((i,))
    assert ledger.flush() == 0 and ledger.errors == 1
    assert [r[0] for r in ledger.pending] == [2, 3, 4] and ledger.dropped == 2


def test_log_formats_carry_extra_fields_and_exceptions():
    import io
    import json
    import logging

    from aegisflow import logs
    from aegisflow.config.model import TelemetryConfig

    for fmt in ('json', 'text'):
        out = io.StringIO()
        logger = logs.configure(TelemetryConfig(log_format=fmt), stream=out)
        try:
            raise ValueError('boom')
        except ValueError:
            logging.getLogger('aegisflow.x').error(
                'failed', exc_info=True, extra={'request_id': 'r-7'}
            )
        line = out.getvalue()
        if fmt == 'json':
            entry = json.loads(line.splitlines()[0])
            assert entry['request_id'] == 'r-7' and entry['level'] == 'error'
            assert (
                'ValueError: boom' in entry['exc'] and entry['logger'] == 'aegisflow.x'
            )
        else:
            assert 'ERROR aegisflow.x failed request_id=r-7' in line
            assert 'ValueError: boom' in line
        logger.handlers.clear()


def test_ledger_from_an_older_release_gains_cache_write_and_keeps_its_rows(tmp_path):
    path = tmp_path / 'old.sqlite'
    old = sqlite3.connect(path)
    old.execute(
        'CREATE TABLE usage (id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, '
        'request_id TEXT NOT NULL, tenant TEXT NOT NULL, key_name TEXT NOT NULL, '
        'model TEXT NOT NULL, requested_model TEXT NOT NULL, '
        'response_model TEXT NOT NULL, provider TEXT NOT NULL, '
        'status INTEGER NOT NULL, streamed INTEGER NOT NULL, outcome TEXT NOT NULL, '
        'prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, '
        'cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, '
        'cost_usd REAL NOT NULL, duration_ms REAL NOT NULL, ttft_ms REAL, '
        'attempts INTEGER NOT NULL)'
    )
    old.execute(
        "INSERT INTO usage VALUES (1, 5, 'before', 'acme', 'k', 'm', 'm', 'm', 'p', "
        "200, 0, 'ok', 10, 2, 3, 0, 0.5, 1.0, NULL, 1)"
    )
    old.commit()
    old.close()
    ledger = Ledger(str(path))
    ledger.add(
        (6, 'after', 'acme', 'k', 'm', 'm', 'm', 'p', 200, 0, 'ok', 10, 2, 3, 0)
        + (0.0, 1.0, None, 1, 4, 'responses', 1, 0.5)
    )
    assert ledger.flush() == 1
    ledger.close()
    got = sqlite3.connect(path).execute(
        'SELECT request_id, cached_tokens, cache_write_tokens, endpoint, cache_hit, '
        'saved_usd FROM usage ORDER BY id'
    )
    # the endpoint of a row written before it was recorded is unknown: empty
    assert got.fetchall() == [
        ('before', 3, 0, '', 0, 0.0),
        ('after', 3, 4, 'responses', 1, 0.5),
    ]
    hourly = sqlite3.connect(path).execute(
        'SELECT requests, prompt_tokens, cached_tokens, cache_write_tokens, '
        'duration_ms FROM usage_hourly'
    )
    assert hourly.fetchall() == [(2, 20, 6, 4, 2.0)]  # the old row was rolled up too


def test_rollups_of_a_schema_4_ledger_keep_pruned_hours_and_gain_durations(tmp_path):
    """Upgrading keeps the rollups of hours whose rows were pruned (they are the
    only record left) and fills durations from the rows still kept."""
    path = tmp_path / 'v4.sqlite'
    ledger = Ledger(str(path))
    hour = 3600 * 10**9
    for ts, duration in ((5, 100.0), (hour + 5, 40.0), (hour + 6, 60.0)):
        ledger.add(
            (ts, f'r{ts}', 'acme', 'k', 'm', 'm', 'm', 'p', 200, 0, 'ok', 1, 1, 0, 0)
            + (0.0, duration, None, 1, 0, 'chat', 0, 0.0)
        )
    assert ledger.flush() == 3
    assert ledger.prune(hour) == 1  # the first hour survives only as its rollup
    ledger.close()
    db = sqlite3.connect(path)
    db.execute('ALTER TABLE usage_hourly DROP COLUMN duration_ms')  # as schema 4 was
    db.execute('PRAGMA user_version = 4')
    db.commit()
    db.close()
    Ledger(str(path)).ensure()
    rows = sqlite3.connect(path).execute(
        'SELECT hour_ns, requests, duration_ms FROM usage_hourly ORDER BY hour_ns'
    )
    assert rows.fetchall() == [(0, 1, 0.0), (hour, 2, 100.0)]


def test_cache_writes_are_counted_priced_and_carried_in_the_record():
    prices = parse_config(
        """
providers:
  - name: mock
    type: mock
    models: [mock]
    prices: {mock: {input: 3, output: 15, cached_input: 0.3, cache_write_input: 3.75}}
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: k, name: ci}]}]
""",
        env={},
    )
    table = PriceTable(prices.prices, prices.providers)
    # 100 prompt = 60 fresh + 30 read + 10 written; 20 completion
    cost, priced = table.cost_nano('mock', 'mock', 100, 20, 30, 10)
    assert priced and cost == round((60 * 3 + 30 * 0.3 + 10 * 3.75 + 20 * 15) * 1000)
    # reads and writes never exceed the prompt they are part of
    assert table.cost_nano('mock', 'mock', 10, 0, 8, 50)[0] == round(
        (8 * 0.3 + 2 * 3.75) * 1000
    )
    rec, labels = recorder()
    _observed(
        rec,
        labels,
        prompt_tokens=100,
        completion_tokens=20,
        prompt_tokens_details={'cached_tokens': 30, 'cache_write_tokens': 10},
    )
    event = ev.Event(rec.sink.records[-1])
    assert (event.cached, event.cache_write) == (30, 10)
    agg = Aggregator(CONFIG, labels)
    agg.ingest(rec.sink.records)
    text = unpack(agg.render(Totals().add(rec.sink.cells()))).decode()
    assert total(text, 'aegisflow_tokens_total', direction='cache_write') == 10
    assert total(text, 'aegisflow_tokens_total', direction='cached') == 30


HOUR = 3600 * 10**9


def _spread_ledger(path):
    """Rows over three hours, two tenants, two models, some errors."""
    ledger = Ledger(str(path))
    rows = spread_rows()
    for row in rows:
        ledger.add(row)
    assert ledger.flush() == 60
    return ledger, SPREAD_BASE, rows


@pytest.mark.parametrize('params', HOURLY_QUERIES)
def test_hourly_rollups_answer_exactly_what_the_rows_answer(tmp_path, params):
    ledger, base, _ = _spread_ledger(tmp_path / 'u.sqlite')
    ledger.close()
    query = UsageQuery.from_params(params)
    assert query.hourly
    db = sqlite3.connect(tmp_path / 'u.sqlite')
    from_rows, from_rollups = query.run(db, hourly=False), query.run(db, hourly=True)
    assert from_rows == from_rollups
    assert from_rows[1]['requests'] > 0 or 'from' in params
    assert not UsageQuery.from_params({'from': '1800000001'}).hourly


def test_retention_keeps_rollups_so_totals_and_spend_outlive_rows(tmp_path):
    path = tmp_path / 'u.sqlite'
    ledger, base, rows = _spread_ledger(path)
    expected = sum(r[COLUMNS.index('cost_usd')] for r in rows if r[2] == 'acme')
    assert ledger.prune(base + 3 * HOUR) == 60  # every per-request row gone
    ledger.close()
    db = sqlite3.connect(path)
    assert db.execute('SELECT COUNT(*) FROM usage').fetchone() == (0,)
    _, totals = UsageQuery.from_params({'tenant': 'acme'}).run(db)
    assert totals['requests'] == 30
    assert totals['cost_usd'] == pytest.approx(expected)
    # spend over whole hours comes from the rollups, the partial ends from rows
    start, end = (base - HOUR // 2) / 1e9, (base + 3 * HOUR + 5) / 1e9
    assert spent_since(str(path), 'acme', None, start, end) == round(expected * 1e9)
    assert spent_since(str(path), 'acme', 'nobody', start, end) == 0
