"""The shared ledger on a real PostgreSQL server: the same schema and answers as the
embedded SQLite ledger, nothing lost while the database is away, and two gateways
on one database reporting the same totals and seeing each other's keys."""

import threading

import openai
import psycopg
import pytest
import requests

from aegisflow.usage.database import Database
from aegisflow.usage.keystore import KeyStore
from aegisflow.usage.ledger import COLUMNS
from aegisflow.usage.ledger import HOUR_NS
from aegisflow.usage.ledger import Ledger
from aegisflow.usage.ledger import spent_since
from aegisflow.usage.query import UsageQuery
from aegisflow.usage.query import run_usage
from tests.support.gateway import wait_until
from tests.support.ledger import HOURLY_QUERIES
from tests.support.ledger import SPREAD_BASE
from tests.support.ledger import spread_rows

BASE = SPREAD_BASE


@pytest.fixture(scope='module')
def both(postgres, tmp_path_factory):
    """The same rows in an embedded and a PostgreSQL ledger."""
    rows = spread_rows(90)
    sqlite = Database.sqlite(tmp_path_factory.mktemp('pg') / 'u.sqlite')
    pg = Database.postgresql(postgres.create_database('ledger_same'))
    for database in (sqlite, pg):
        ledger = Ledger(database)
        for row in rows:
            ledger.add(row)
        assert ledger.flush(batch=40) == len(rows)
        ledger.close()
    return sqlite, pg, rows


def _same(a, b):
    """Usage answers equal, costs to the nano-dollar (float sums may differ in
    their last bit between engines)."""
    (rows_a, totals_a), (rows_b, totals_b) = a, b
    assert len(rows_a) == len(rows_b)
    for x, y in zip(rows_a + [totals_a], rows_b + [totals_b], strict=True):
        x, y = dict(x), dict(y)
        assert x.pop('cost_usd') == pytest.approx(y.pop('cost_usd'), abs=1e-9)
        assert x == y


@pytest.mark.parametrize(
    'params',
    [
        *HOURLY_QUERIES,
        {
            'group_by': 'tenant',
            'from': str(BASE / 1e9 + 30),
            'to': str(BASE / 1e9 + 4e3),
        },
    ],
)
def test_postgresql_answers_every_usage_query_like_sqlite(both, params):
    sqlite, pg, _ = both
    query = UsageQuery.from_params(params)
    from_sqlite, from_pg = run_usage(sqlite, query), run_usage(pg, query)
    assert from_pg[1]['requests'] > 0
    _same(from_sqlite, from_pg)
    if query.hourly:  # the rollups and the rows agree on PostgreSQL too
        db = pg.connect(readonly=True)
        try:
            _same(query.run(db, hourly=False, database=pg), from_pg)
        finally:
            db.close()


def test_postgresql_hour_and_day_labels_match_sqlite(both):
    sqlite, pg, _ = both
    query = UsageQuery.from_params({'group_by': 'hour,day'})
    labels = [
        [(r['hour'], r['day']) for r in run_usage(db, query)[0]] for db in both[:2]
    ]
    assert labels[0] == labels[1]
    assert labels[1][0] == ('2027-01-15T08:00:00Z', '2027-01-15')


def test_postgresql_spend_equals_sqlite_spend(both):
    sqlite, pg, rows = both
    acme = sum(r[COLUMNS.index('cost_usd')] for r in rows if r[2] == 'acme')
    start, end = (BASE - HOUR_NS // 2) / 1e9, (BASE + 3 * HOUR_NS + 5) / 1e9
    for database in (sqlite, pg):
        assert spent_since(database, 'acme', None, start, end) == round(acme * 1e9)
        assert spent_since(database, 'acme', 'nobody', start, end) == 0


def test_rows_wait_for_an_unreachable_database_and_are_written_later(postgres):
    dsn = postgres.dsn('ledger_late')  # not created yet: every write is refused
    ledger = Ledger(Database.postgresql(dsn))
    rows = spread_rows(12, prefix='late')
    for row in rows:
        ledger.add(row)
    assert ledger.flush() == 0
    assert ledger.errors == 1 and len(ledger.pending) == 12
    assert ledger.prune(BASE) is None and ledger.errors == 2
    postgres.create_database('ledger_late')
    assert ledger.flush() == 12 and not ledger.pending
    ledger.close()
    with psycopg.connect(dsn) as db:
        ids = [r for (r,) in db.execute('SELECT request_id FROM usage ORDER BY id')]
    assert ids == [f'late{i}' for i in range(12)]


def test_two_ledgers_flushing_into_one_database_sum_exactly(postgres):
    """Two masters upserting the same hourly rows at once: no deadlock, no lost
    increment."""
    database = Database.postgresql(postgres.create_database('ledger_race'))
    Ledger(database).ensure()
    errors = []

    def write(prefix):
        ledger = Ledger(database)
        for round_ in range(15):
            for row in spread_rows(30, prefix=f'{prefix}{round_}-'):
                ledger.add(row)
            if ledger.flush() != 30:
                errors.append(ledger.errors)
        ledger.close()

    threads = [threading.Thread(target=write, args=(p,)) for p in 'ab']
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    _, totals = run_usage(database, UsageQuery.from_params({}))  # the rollups
    db = database.connect(readonly=True)
    try:
        _, from_rows = UsageQuery.from_params({}).run(
            db, hourly=False, database=database
        )
    finally:
        db.close()
    assert totals['requests'] == from_rows['requests'] == 2 * 15 * 30
    assert totals['prompt_tokens'] == 2 * 15 * sum(range(30))


def test_keys_and_audit_in_postgresql(postgres):
    database = Database.postgresql(postgres.create_database('ledger_keys'))
    store, other_host = KeyStore(database), KeyStore(database)
    before = other_host.version()
    key_id, key = store.create('acme', 'ci', taken_names=set())
    assert key.startswith('sk-af-')
    assert store.create('acme', 'ci', taken_names=set()) == (None, None)
    assert other_host.version() != before
    [row] = other_host.active()
    assert (row.tenant, row.name, row.id) == ('acme', 'ci', key_id)
    assert key.encode() not in row.digest and len(row.digest) == 32
    # a scope change and a rotation move the version other hosts poll
    seen = other_host.version()
    assert store.update(key_id, {'rate_limit': {'requests_per_minute': 5}}) == 'acme'
    assert other_host.version() != seen
    assert other_host.active()[0].scope == {'rate_limit': {'requests_per_minute': 5}}
    seen = other_host.version()
    tenant, new_key = store.rotate(key_id, grace_s=30)
    assert tenant == 'acme' and new_key != key
    assert other_host.version() != seen
    [rotated] = other_host.active()
    assert rotated.prev_digest == row.digest and rotated.digest != row.digest
    assert other_host.revoke(key_id) == 'acme'
    assert store.revoke(key_id) is None  # revoked once only
    assert store.active() == []
    store.audit('admin', 'key.create', tenant='acme', target=key_id, name='ci')
    [entry] = other_host.audit_rows(tenant='acme')
    assert entry['action'] == 'key.create' and entry['detail'] == {'name': 'ci'}


# -- two gateways, one ledger -------------------------------------------------------

GATEWAY = """
server: {{workers: 2, admin_key_env: ADMIN_KEY}}
providers:
  - {{name: mock, type: mock, models: [mock],
     prices: {{mock: {{input: 1000, output: 2000}}}}}}
routes: [{{match: "*", targets: [mock]}}]
tenants:
  - {{id: acme, keys: [{{key: sk-acme-1, name: ci}}]}}
  - {{id: globex, keys: [{{key: sk-globex-1, name: svc}}]}}
storage: {{backend: postgresql, dsn_env: LEDGER_DSN}}
telemetry: {{flush_interval_ms: 50}}
"""
ADMIN = {'Authorization': 'Bearer admin-secret-pg'}


@pytest.fixture(scope='module')
def pair(postgres, gateway_factory):
    dsn = postgres.create_database('ledger_shared')
    env = {'ADMIN_KEY': 'admin-secret-pg', 'LEDGER_DSN': dsn}
    a = gateway_factory(GATEWAY.format(), env=env)
    b = gateway_factory(GATEWAY.format(), env=env)
    return a, b, postgres.password


def _usage(gw, **params):
    r = requests.get(
        gw.url + '/admin/v1/usage', params=params, headers=ADMIN, timeout=5
    )
    assert r.status_code == 200, r.text
    return r.json()


def _chat(gw, key, *, stream=False):
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    messages = [{'role': 'user', 'content': 'one two three'}]
    if not stream:
        return client.chat.completions.create(model='mock', messages=messages).usage
    chunks = client.chat.completions.create(
        model='mock',
        messages=messages,
        stream=True,
        stream_options={'include_usage': True},
    )
    return [c for c in chunks if c.usage][-1].usage


def test_two_gateways_on_one_postgresql_report_the_same_totals(pair):
    a, b, password = pair
    expected = {'acme': 0, 'globex': 0}
    tokens = 0
    for i in range(24):
        gw, (tenant, key) = (
            (a, b)[i % 2],
            (('acme', 'sk-acme-1'), ('globex', 'sk-globex-1'))[i % 3 == 0],
        )
        usage = _chat(gw, key, stream=i % 4 == 1)
        expected[tenant] += 1
        tokens += usage.total_tokens
    want = sum(expected.values())
    wait_until(
        lambda: all(_usage(gw)['totals']['requests'] == want for gw in (a, b)),
        timeout=10,
        what='both gateways to report every request',
    )
    by_a, by_b = (_usage(gw, group_by='tenant') for gw in (a, b))
    assert by_a == by_b
    assert {r['tenant']: r['requests'] for r in by_a['rows']} == expected
    totals = by_a['totals']
    assert totals['prompt_tokens'] + totals['completion_tokens'] == tokens
    assert totals['cost_usd'] == pytest.approx(
        (totals['prompt_tokens'] * 1000 + totals['completion_tokens'] * 2000) / 1e6
    )
    for gw in (a, b):
        assert password not in gw.log()


def _fresh(gw, key):
    return requests.get(
        gw.base_url + '/models',
        headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
        timeout=5,
    ).status_code


def test_a_key_created_on_one_host_works_on_the_other_within_a_second(pair):
    a, b, _ = pair
    r = requests.post(
        a.url + '/admin/v1/tenants/acme/keys',
        headers=ADMIN,
        json={'name': 'x'},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    key, key_id = r.json()['key'], r.json()['id']
    wait_until(
        lambda: all(_fresh(b, key) == 200 for _ in range(6)),
        timeout=1.0,
        what='the new key on the other gateway',
    )
    listing = requests.get(
        b.url + '/admin/v1/tenants/acme/keys', headers=ADMIN, timeout=5
    )
    assert key_id in {k.get('id') for k in listing.json()['keys']}
    gone = requests.delete(b.url + f'/admin/v1/keys/{key_id}', headers=ADMIN, timeout=5)
    assert gone.status_code == 200
    wait_until(
        lambda: all(_fresh(a, key) == 401 for _ in range(6)),
        timeout=1.0,
        what='the revoked key refused on the first gateway',
    )
    actions = [
        e['action']
        for e in requests.get(
            a.url + '/admin/v1/audit', headers=ADMIN, timeout=5
        ).json()['entries']
    ]
    assert actions[:2] == ['key.revoke', 'key.create']
