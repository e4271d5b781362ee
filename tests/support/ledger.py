"""Read a test gateway's usage ledger (the SQLite default beside its config)."""

import sqlite3

from tests.support.gateway import wait_until

COLUMNS = (
    'streamed, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens'
)


def _rows(path, tenant, columns=COLUMNS):
    if not path.exists():
        return []
    db = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        return db.execute(
            f'SELECT {columns} FROM usage WHERE tenant = ? ORDER BY id', (tenant,)
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def usage_rows(gw, tenant, count, *, timeout=10, columns=COLUMNS):
    """The tenant's ledger rows (streamed, prompt, completion, cached, cache_write,
    or the `columns` named), once there are `count` of them."""
    path = gw.workdir / 'aegisflow.sqlite'
    wait_until(
        lambda: len(_rows(path, tenant, columns)) >= count,
        timeout=timeout,
        what='ledger rows',
    )
    return _rows(path, tenant, columns)


_DEFAULTS = {
    'ts_ns': 1,
    'request_id': 'r1',
    'tenant': 'acme',
    'key_name': 'k',
    'model': 'mock',
    'requested_model': 'mock',
    'response_model': 'mock',
    'provider': 'mock',
    'status': 200,
    'streamed': 0,
    'outcome': 'ok',
    'prompt_tokens': 1,
    'completion_tokens': 1,
    'cached_tokens': 0,
    'reasoning_tokens': 0,
    'cost_usd': 0.0,
    'duration_ms': 1.0,
    'ttft_ms': None,
    'attempts': 1,
    'cache_write_tokens': 0,
    'endpoint': 'chat',
    'cache_hit': 0,
    'saved_usd': 0.0,
}


def ledger_row(**values):
    """A row for `Ledger.add`, in the ledger's column order."""
    from aegisflow.usage.ledger import COLUMNS as LEDGER_COLUMNS

    unknown = set(values) - set(_DEFAULTS)
    assert not unknown, unknown
    merged = {**_DEFAULTS, **values}
    return tuple(merged[c] for c in LEDGER_COLUMNS)


HOUR_NS = 3600 * 10**9
SPREAD_BASE = 1_800_000_000 * 10**9 - (1_800_000_000 * 10**9) % HOUR_NS


def spread_rows(n=60, prefix='r'):
    """Ledger rows over three hours from `SPREAD_BASE`, two tenants, two models, some
    errors and broken streams, every token count and a cost."""
    return [
        ledger_row(
            ts_ns=SPREAD_BASE + (i % 3) * HOUR_NS + i * 10**9,
            request_id=f'{prefix}{i}',
            tenant=('acme', 'globex')[i % 2],
            model=('m1', 'm2')[i % 4 // 2],
            status=500 if i % 7 == 0 else 200,
            outcome='stream_error' if i % 11 == 0 else 'ok',
            prompt_tokens=i,
            completion_tokens=2 * i,
            cached_tokens=i % 5,
            cache_write_tokens=i % 3,
            reasoning_tokens=i % 2,
            cost_usd=i * 1e-6,
        )
        for i in range(n)
    ]


# usage queries that whole-hour rollups must answer exactly as the rows do
HOURLY_QUERIES = [
    {},
    {'group_by': 'hour'},
    {'group_by': 'day,tenant,model'},
    {'group_by': 'provider,key', 'tenant': 'acme'},
    {'group_by': 'hour', 'model': 'm2', 'from': '2027-01-15T08:00:00Z'},
]
