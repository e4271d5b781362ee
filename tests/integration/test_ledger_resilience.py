"""Nothing lost when the ledger cannot be written, and retention of per-request rows."""

import resource
import sqlite3
import time

import requests

from tests.support.gateway import GatewayProcess
from tests.support.gateway import wait_until
from tests.support.ledger import ledger_row
from tests.support.metrics import scrape
from tests.support.metrics import total

CONFIG = """
server: {workers: 2}
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: sk-ledger}]}]
storage: {sqlite_path: usage.sqlite, retention_days: 1}
telemetry: {flush_interval_ms: 50, access_log: false}
"""


def ask(gw):
    return requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer sk-ledger'},
        json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}]},
    )


def rows(path):
    db = sqlite3.connect(path, timeout=10)
    try:
        return db.execute('SELECT count(*) FROM usage').fetchone()[0]
    finally:
        db.close()


def test_locked_ledger_loses_nothing_and_serving_goes_on(tmp_path):
    gw = GatewayProcess(CONFIG, tmp_path).start()
    path = tmp_path / 'usage.sqlite'
    try:
        assert ask(gw).status_code == 200
        wait_until(lambda: rows(path) == 1, timeout=10, what='first row written')
        blocker = sqlite3.connect(path, isolation_level=None, timeout=10)
        blocker.execute('BEGIN EXCLUSIVE')  # as a stuck writer or a full disk would
        try:
            assert [ask(gw).status_code for _ in range(30)] == [200] * 30
            wait_until(
                lambda: (
                    total(scrape(gw.url), 'aegisflow_ledger_errors_total') >= 1
                    and total(scrape(gw.url), 'aegisflow_ledger_rows_pending') == 30
                ),
                timeout=20,
                what='rows kept pending while the ledger is locked',
            )
        finally:
            blocker.execute('COMMIT')
            blocker.close()
        wait_until(lambda: rows(path) == 31, timeout=20, what='pending rows written')
        assert total(scrape(gw.url), 'aegisflow_requests_total') == 31
    finally:
        gw.stop()
    assert rows(path) == 31


def test_unwritable_ledger_file_loses_nothing_and_serving_goes_on(tmp_path):
    """The ledger's file stops taking writes, as on a full disk: the master (which
    writes the ledger) gets a file-size limit of one byte, so every write SQLite
    makes fails (EFBIG; a root process ignores file modes, so modes cannot do it).
    Requests are served, the rows wait in memory, and all of them are written, once
    and intact, when the file takes writes again. (The master's log lines go to a
    file too and are lost while the limit holds; the errors show in the metrics.)"""
    gw = GatewayProcess(CONFIG, tmp_path).start()
    path = tmp_path / 'usage.sqlite'
    master = gw.proc.pid
    unlimited = resource.prlimit(master, resource.RLIMIT_FSIZE)
    try:
        assert ask(gw).status_code == 200
        wait_until(lambda: rows(path) == 1, timeout=10, what='first row written')
        resource.prlimit(master, resource.RLIMIT_FSIZE, (1, unlimited[1]))
        try:
            answers = [ask(gw) for _ in range(40)]
            assert [r.status_code for r in answers] == [200] * 40
            wait_until(
                lambda: (
                    total(scrape(gw.url), 'aegisflow_ledger_errors_total') >= 2
                    and total(scrape(gw.url), 'aegisflow_ledger_rows_pending') == 40
                ),
                timeout=20,
                what='rows kept pending while the file takes no writes',
            )
            assert rows(path) == 1
        finally:
            resource.prlimit(master, resource.RLIMIT_FSIZE, unlimited)
        wait_until(lambda: rows(path) == 41, timeout=20, what='pending rows written')
        wait_until(
            lambda: total(scrape(gw.url), 'aegisflow_ledger_rows_pending') == 0,
            timeout=10,
            what='nothing pending',
        )
    finally:
        gw.stop()
    db = sqlite3.connect(path)
    try:
        assert db.execute('PRAGMA integrity_check').fetchone() == ('ok',)
        ids = [r[0] for r in db.execute('SELECT request_id FROM usage')]
    finally:
        db.close()
    assert len(ids) == len(set(ids)) == 41
    assert set(ids) >= {r.headers['X-Request-ID'] for r in answers}


def test_retention_prunes_old_rows_at_start(tmp_path):
    from aegisflow.usage.ledger import Ledger

    path = tmp_path / 'usage.sqlite'
    ledger = Ledger(str(path))
    old = time.time_ns() - 3 * 86400 * 10**9
    for i in range(5):
        ledger.add(ledger_row(ts_ns=old + i, request_id=f'old-{i}'))
    ledger.add(ledger_row(ts_ns=time.time_ns(), request_id='recent'))
    ledger.close()
    assert rows(path) == 6
    gw = GatewayProcess(CONFIG, tmp_path).start()
    try:
        wait_until(lambda: rows(path) == 1, timeout=10, what='old rows pruned')
        wait_until(
            lambda: total(scrape(gw.url), 'aegisflow_ledger_rows_pruned_total') == 5,
            timeout=10,
            what='prune counted',
        )
    finally:
        gw.stop()
