"""Faults under load: workers killed with SIGKILL in the middle of a burst. No limit
admits more than it may, no lock stays held, and the gateway serves at once after."""

import concurrent.futures
import os
import random
import signal
import threading
import time

import pytest
import requests

from tests.support.gateway import wait_until

CONFIG = """
server: {workers: 3, threads: 16}
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
    return gateway_factory(CONFIG)


def post(gw, key):
    try:
        r = requests.post(
            gw.base_url + '/chat/completions',
            headers={'Authorization': f'Bearer {key}', 'Connection': 'close'},
            json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]},
            timeout=15,
        )
        return r.status_code
    except requests.RequestException:
        return 'cut'  # NOTE: the worker serving it was killed


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
    # was admitted was charged but not answered, so answered <= admitted <= limit
    assert 1 <= ok <= 40 + int(elapsed / 1.5) + 1, (ok, elapsed)
    assert set(capped) <= {200, 429, 'cut'}
    assert set(opened) <= {200, 429, 'cut'}
    assert opened.count(200) >= 40
    # no lock left held: the next requests are served at once by every worker
    # (Connection: close spreads them over the workers)
    t0 = time.monotonic()
    assert [post(gw, 'sk-par') for _ in range(12)] == [200] * 12
    assert time.monotonic() - t0 < 10
    # no parallel slot lost with the killed workers: 4 at once are admitted again
    wait_until(lambda: _four_at_once(gw), timeout=10, what='parallel slots back')


def _four_at_once(gw):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda _: post(gw, 'sk-par'), range(4))) == [200] * 4
