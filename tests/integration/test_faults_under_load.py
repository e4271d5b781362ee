"""Faults under load: workers killed with SIGKILL in the middle of a burst. No limit
admits more than it may, no answered request's usage is lost, no lock stays held, no
parallel slot stays taken, and the gateway serves at once after."""

import concurrent.futures
import os
import random
import signal
import sqlite3
import threading
import time

import pytest
import requests

from tests.support.gateway import wait_until
from tests.support.metrics import scrape
from tests.support.metrics import total

ADMIN = 'adm-faults-secret'
CONFIG = """
server: {workers: 3, threads: 16, admin_key_env: FAULTS_ADMIN}
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50}
providers:
  - {name: mock, type: mock, models: [mock, mock-slow], latency_ms: 20}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: capped
    keys: [{key: sk-capped}]
    rate_limit: {requests_per_minute: 40}
  - id: par
    keys: [{key: sk-par}]
    rate_limit: {max_parallel: 4}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'FAULTS_ADMIN': ADMIN})


def post(gw, key):
    try:
        r = requests.post(
            gw.base_url + '/chat/completions',
            headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
            json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]},
            timeout=15,
        )
    except requests.RequestException:
        return 'cut'  # NOTE: the worker serving it was killed
    if r.status_code == 200:
        ANSWERED.append(r.headers['X-Request-ID'])
    return r.status_code


ANSWERED = []  # request ids of every 200 in this module


def ledger_ids(gw):
    db = sqlite3.connect(gw.workdir / 'usage.sqlite', timeout=10)
    try:
        return {row[0] for row in db.execute('SELECT request_id FROM usage')}
    except sqlite3.OperationalError:
        return set()  # NOTE: not created yet
    finally:
        db.close()


def in_flight(gw, tenant):
    r = requests.get(
        f'{gw.url}/admin/v1/tenants/{tenant}',
        headers={'Authorization': f'Bearer {ADMIN}'},
        timeout=10,
    )
    r.raise_for_status()
    (parallel,) = [c for c in r.json()['counters'] if c['kind'] == 'parallel']
    return parallel['in_flight']


def test_kill_9_of_random_workers_mid_burst_keeps_limits_exact_and_no_lock_stuck(gw):
    rng = random.Random(7)
    started = time.monotonic()
    killed = []
    go = threading.Event()

    def killer():
        go.wait(10)
        for _ in range(2):
            pids = gw.worker_pids()
            pid = rng.choice(pids)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            wait_until(
                lambda pid=pid: (
                    pid not in gw.worker_pids() and len(gw.worker_pids()) == 3
                ),
                timeout=20,
                what='respawn',
            )

    k = threading.Thread(target=killer)
    k.start()
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(post, gw, 'sk-capped') for _ in range(150)]
        futures += [pool.submit(post, gw, 'sk-par') for _ in range(150)]
        go.set()
        capped = [f.result() for f in futures[:150]]
        opened = [f.result() for f in futures[150:]]
    k.join(60)
    elapsed = time.monotonic() - started
    assert len(killed) == 2
    ok = capped.count(200)
    # GCRA: a burst of 40, then one per 1.5 s; a request whose worker died after it
    # was admitted was charged but not answered, so answered <= admitted <= limit.
    # NOTE: between a holder's death and the master giving its stripe back, a
    # request that needs that stripe is admitted without limits (fail_open, the
    # default) and counted as degraded: those are allowed on top, and only those
    settled = len(capped) - capped.count('cut')

    def page():
        text = scrape(gw.url)
        return (
            text
            if total(text, 'aegisflow_requests_total', tenant='capped') >= (settled)
            else None
        )

    degraded = total(
        wait_until(page, timeout=15, what='every capped request on the page'),
        'aegisflow_limits_degraded_total',
        tenant='capped',
    )
    assert 1 <= ok <= 40 + int(elapsed / 1.5) + 1 + degraded, (ok, elapsed, degraded)
    assert set(capped) <= {200, 429, 'cut'}
    assert set(opened) <= {200, 429, 'cut'}
    assert opened.count(200) >= 1
    # NOTE: how many of the burst's parallel-limited requests got a slot depends
    # on scheduling; what must hold exactly is that none was lost: four clients at
    # once (the limit) are never refused, now that the killed workers are gone
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(lambda _: post(gw, 'sk-par'), range(4))) == [200] * 4
    # no lock left held: the next requests are served at once by every worker
    # (Connection: close spreads them over the workers)
    t0 = time.monotonic()
    assert [post(gw, 'sk-par') for _ in range(12)] == [200] * 12
    assert time.monotonic() - t0 < 10
    # no parallel slot lost with the killed workers: none is taken at rest
    wait_until(
        lambda: in_flight(gw, 'par') == 0, timeout=10, what='parallel slots back'
    )
    # every answered request is in the usage ledger, once
    wait_until(
        lambda: ledger_ids(gw) >= set(ANSWERED),
        timeout=15,
        what='usage of every answered request written',
    )
    assert len(ANSWERED) == len(set(ANSWERED)) >= 12 + 12 + ok + 1
