"""The master's cost of persisting usage, per request, with pytest-benchmark.

    .venv/bin/pytest bench/test_ledger_flush.py --benchmark-only

A batch of 5,000 ledger rows (10 tenants, 3 models): the hourly rollup computed in
Python, and the whole flush (rows and rollups in one SQLite WAL transaction).
"""

import time

import pytest

from aegisflow.usage.ledger import Ledger
from aegisflow.usage.ledger import rollup
from tests.support.ledger import ledger_row

BATCH = 5000


@pytest.fixture(scope='module')
def rows():
    now = time.time_ns()
    return [
        ledger_row(
            ts_ns=now + i, request_id=f'r{i}', tenant=f't{i % 10}', model=f'm{i % 3}'
        )
        for i in range(BATCH)
    ]


def test_bench_rollup_of_a_batch(benchmark, rows):
    out = benchmark(rollup, rows)
    assert sum(r[5] for r in out) == BATCH


def test_bench_flush_of_a_batch(benchmark, rows, tmp_path):
    ledger = Ledger(str(tmp_path / 'usage.sqlite'))

    def flush():
        ledger.pending.extend(rows)
        return ledger.flush()

    assert benchmark(flush) == BATCH
    ledger.close()
