"""The two stores the local response cache could stand on, measured side by side
(the choice is recorded in bench/RESULTS.md): LMDB (what `aegisflow.cache.local`
uses) and SQLite in WAL mode, both in /dev/shm, read and written with 8 KB values
(a 4 KB answer's entry, compressed or not, with its header) from one process.

    .venv/bin/pytest bench/test_cache_stores.py --benchmark-only
"""

import hashlib
import os
import shutil
import sqlite3
import tempfile

import pytest

from aegisflow.cache.local import LocalStore

VALUE = os.urandom(8192)
N = 2000


def _key(i):
    return hashlib.sha256(str(i).encode()).digest()


class SqliteStore:
    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=OFF')
        self.db.execute(
            'CREATE TABLE IF NOT EXISTS c (k BLOB PRIMARY KEY, v BLOB, exp REAL)'
        )

    def get(self, key):
        row = self.db.execute('SELECT v, exp FROM c WHERE k = ?', (key,)).fetchone()
        return row[0] if row else None

    def put(self, key, value, ttl_s):
        self.db.execute(
            'INSERT OR REPLACE INTO c VALUES (?, ?, ?)', (key, value, ttl_s)
        )
        return True

    def close(self):
        self.db.close()


@pytest.fixture(params=['lmdb', 'sqlite'], scope='module')
def store(request):
    parent = '/dev/shm' if os.path.isdir('/dev/shm') else None
    workdir = tempfile.mkdtemp(prefix='aegisflow-stores-', dir=parent)
    if request.param == 'lmdb':
        s = LocalStore(os.path.join(workdir, 'lmdb'), 256 << 20)
    else:
        s = SqliteStore(os.path.join(workdir, 'cache.sqlite'))
    for i in range(N):
        s.put(_key(i), VALUE, 3600)
    yield s
    s.close()
    shutil.rmtree(workdir, ignore_errors=True)


def test_bench_store_read_8k(benchmark, store):
    keys = iter(range(10**9))

    def read():
        return store.get(_key(next(keys) % N))

    assert benchmark(read) is not None


def test_bench_store_write_8k(benchmark, store):
    keys = iter(range(10**9))

    def write():
        return store.put(_key(N + next(keys) % N), VALUE, 3600)

    assert benchmark(write)
