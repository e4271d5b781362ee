"""Read a test gateway's usage ledger (the SQLite default beside its config)."""

import sqlite3

from tests.support.gateway import wait_until

COLUMNS = (
    'streamed, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens'
)


def _rows(path, tenant):
    if not path.exists():
        return []
    db = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        return db.execute(
            f'SELECT {COLUMNS} FROM usage WHERE tenant = ? ORDER BY id', (tenant,)
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def usage_rows(gw, tenant, count, *, timeout=10):
    """The tenant's ledger rows (streamed, prompt, completion, cached, cache_write),
    once there are `count` of them."""
    path = gw.workdir / 'aegisflow.sqlite'
    wait_until(
        lambda: len(_rows(path, tenant)) >= count, timeout=timeout, what='ledger rows'
    )
    return _rows(path, tenant)


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
}


def ledger_row(**values):
    """A row for `Ledger.add`, in the ledger's column order."""
    from aegisflow.usage.ledger import COLUMNS as LEDGER_COLUMNS

    unknown = set(values) - set(_DEFAULTS)
    assert not unknown, unknown
    merged = {**_DEFAULTS, **values}
    return tuple(merged[c] for c in LEDGER_COLUMNS)
