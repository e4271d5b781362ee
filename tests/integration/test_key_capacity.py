"""10,000 keys created at run time, each with its own rate limit and budget, on one
host: every one is enforced exactly (one request each admitted, a second refused
within the minute), no limits entry is evicted and nothing fails open."""

import hashlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import orjson
import requests

from tests.support.gateway import GatewayProcess
from tests.support.metrics import scrape
from tests.support.metrics import total

KEYS = 10_000
CONFIG = """
server: {workers: 2}
state: {shm: {limit_entries: 65536, runtime_names: 16384}}
providers:
  - {name: mock, type: mock, models: [mock], prices: {mock: {input: 1, output: 1}}}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: many
    keys: [{key: sk-many-config}]
storage: {sqlite_path: usage.sqlite}
telemetry: {access_log: false, flush_interval_ms: 200}
"""
SCOPE = orjson.dumps(
    {'rate_limit': {'requests_per_minute': 1}, 'budget': {'daily_usd': 1}}
).decode()


def _seed(path):
    """10,000 run-time keys written as the admin API writes them."""
    from aegisflow.usage.keystore import KeyStore

    KeyStore(str(path)).listing('many')  # NOTE: creates the tables
    db = sqlite3.connect(path)
    db.executemany(
        'INSERT INTO api_keys (id, tenant, name, digest, created_ns, scope, '
        'updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
            (
                f'key_cap{i}',
                'many',
                f'k{i}',
                hashlib.sha256(f'sk-cap-{i}'.encode()).hexdigest(),
                1,
                SCOPE,
                1,
            )
            for i in range(KEYS)
        ],
    )
    db.commit()
    db.close()


def _send_all(gw):
    local = threading.local()

    def one(i):
        session = getattr(local, 'session', None)
        if session is None:
            session = local.session = requests.Session()
        return session.post(
            gw.base_url + '/chat/completions',
            json={
                'model': 'mock',
                'max_tokens': 5,
                'messages': [{'role': 'user', 'content': 'x'}],
            },
            headers={'Authorization': f'Bearer sk-cap-{i}'},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(KEYS)))


def test_ten_thousand_keys_each_held_to_its_own_limit(tmp_path):
    _seed(tmp_path / 'usage.sqlite')
    gw = GatewayProcess(CONFIG, tmp_path).start()
    try:
        first = _send_all(gw)
        assert first.count(200) == KEYS, {s: first.count(s) for s in set(first)}
        second = _send_all(gw)  # within the minute: every key's entry is still there
        assert second.count(429) == KEYS, {s: second.count(s) for s in set(second)}
        text = scrape(gw.url)
        assert total(text, 'aegisflow_limits_degraded_total') == 0
        assert total(text, 'aegisflow_lock_timeouts_total') == 0
    finally:
        assert gw.stop() == 0
