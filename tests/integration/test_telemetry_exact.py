"""Exact numbers across workers: 4 workers, concurrent load, a SIGKILLed worker, a
reload under load, a shutdown; the metrics of every worker and the SQLite ledger agree.
"""

import os
import signal
import sqlite3
import threading

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.gateway import wait_until
from tests.support.load import run_load
from tests.support.metrics import scrape
from tests.support.metrics import total

CONFIG = """
server: {workers: 4, threads: 8}
providers:
  - {name: mock, type: mock, models: [mock, mock-fast]}
routes:
  - {match: "*", targets: [mock]}
tenants:
  - id: acme
    keys: [{key: "sk-acme-1", name: ci}]
storage: {sqlite_path: usage.sqlite}
telemetry: {access_log: false, flush_interval_ms: 100}
"""
BODY = {'model': 'mock', 'messages': [{'role': 'user', 'content': 'count me'}]}
HEADERS = {'Authorization': 'Bearer sk-acme-1'}


def _requests_total(gw):
    return total(scrape(gw.url), 'aegisflow_requests_total')


def _settle(gw, expected, timeout=15):
    """Wait for the aggregator to publish `expected`, then demand it 10 times over."""
    wait_until(
        lambda: _requests_total(gw) == expected,
        timeout=timeout,
        what=f'requests_total == {expected}',
    )
    seen = [_requests_total(gw) for _ in range(10)]  # fresh connection each time
    assert seen == [expected] * 10


def _load(gw, n, concurrency=32, stream_every=0):
    statuses = run_load(
        gw.base_url + '/chat/completions',
        n,
        concurrency,
        body=BODY,
        headers=HEADERS,
        stream_every=stream_every,
    )
    assert statuses == {200: n}, statuses


def test_counts_are_exact_through_load_kill_and_shutdown(tmp_path):
    gw = GatewayProcess(CONFIG, tmp_path).start()
    try:
        _load(gw, 2000, stream_every=10)
        _settle(gw, 2000)
        text = scrape(gw.url)
        assert (
            total(
                text,
                'aegisflow_requests_total',
                tenant='acme',
                model='mock',
                provider='mock',
                status='200',
            )
            == 2000
        )
        assert total(text, 'aegisflow_request_duration_seconds_count') == 2000
        assert total(text, 'aegisflow_time_to_first_token_seconds_count') == 200
        assert total(text, 'aegisflow_ring_dropped_total') == 0
        prompt = total(text, 'aegisflow_tokens_total', direction='prompt')
        assert prompt == 2000 * (3 + 3 + 2)  # the mock's arithmetic for "count me"

        # kill -9 one worker: what it served stays counted, nothing twice.
        victims = gw.worker_pids()
        assert len(victims) == 4
        gw_victim = victims[0]
        os.kill(gw_victim, signal.SIGKILL)
        wait_until(
            lambda: gw_victim not in gw.worker_pids() and len(gw.worker_pids()) == 4,
            timeout=30,
            what='respawn',
        )
        wait_until(
            lambda: total(scrape(gw.url), 'aegisflow_workers_reaped_total') >= 1,
            timeout=10,
            what='reap',
        )
        _settle(gw, 2000)
        _load(gw, 1000)
        _settle(gw, 3000)
        text = scrape(gw.url)
    finally:
        assert gw.stop() == 0
    # After a graceful stop, the ledger holds every request exactly once.
    db = sqlite3.connect(tmp_path / 'usage.sqlite')
    rows, prompt_sum, completion_sum, cost = db.execute(
        'SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) '
        'FROM usage'
    ).fetchone()
    assert rows == 3000
    assert len({r for (r,) in db.execute('SELECT request_id FROM usage')}) == 3000
    assert prompt_sum == total(text, 'aegisflow_tokens_total', direction='prompt')
    assert completion_sum == total(
        text, 'aegisflow_tokens_total', direction='completion'
    )
    assert cost == pytest.approx(total(text, 'aegisflow_cost_usd_total'), rel=1e-9)
    assert (
        db.execute('SELECT count(*) FROM usage WHERE streamed = 1').fetchone()[0] == 200
    )


def test_reload_under_load_keeps_exact_counts(tmp_path):
    gw = GatewayProcess(CONFIG, tmp_path).start()
    try:
        done = {}
        loader = threading.Thread(
            target=lambda: done.update(
                run_load(
                    gw.base_url + '/chat/completions',
                    1500,
                    16,
                    body=BODY,
                    headers=HEADERS,
                )
            )
        )
        before = gw.worker_pids()
        loader.start()
        wait_until(lambda: _requests_total(gw) >= 300, timeout=20, what='load started')
        gw.signal(signal.SIGHUP)
        wait_until(
            lambda: not set(before) & set(gw.worker_pids()),
            timeout=30,
            what='workers replaced',
        )
        loader.join(60)
        assert done == {200: 1500}, done
        _settle(gw, 1500)
    finally:
        assert gw.stop() == 0
    db = sqlite3.connect(tmp_path / 'usage.sqlite')
    assert db.execute('SELECT count(*) FROM usage').fetchone()[0] == 1500
