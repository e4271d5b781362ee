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
