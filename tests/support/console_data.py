"""A ledger sized like a busy gateway's, for the console at scale: 100 run-time
tenants, 10,000 run-time keys (all of one tenant: the longest list), and 30 days of
hourly rollups for every tenant and two models, ending at the current hour.
Written as the gateway writes them, before the gateway starts."""

import hashlib
import random
import sqlite3
import time

import orjson

from aegisflow.usage.keystore import KeyStore
from aegisflow.usage.ledger import HOUR_NS
from aegisflow.usage.ledger import Ledger

TENANTS = 100
KEYS = 10_000
DAYS = 30
MODELS = ('gpt-4o-mini', 'claude-sonnet')
# the gateway over the seeded ledger (the admin key in $CONSOLE_SCALE_ADMIN)
CONFIG = """
server: {workers: 2, admin_key_env: CONSOLE_SCALE_ADMIN}
state: {shm: {limit_entries: 65536, runtime_names: 16384}}
providers:
  - {name: mock, type: mock, models: ["*"]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-acme-scale, name: config-key}]
storage: {sqlite_path: usage.sqlite}
telemetry: {log_level: warning, access_log: false}
"""
ADMIN_ENV = 'CONSOLE_SCALE_ADMIN'
KEY_SCOPE = orjson.dumps({'rate_limit': {'requests_per_minute': 60}}).decode()


def tenant_ids():
    return [f'team-{i:03d}' for i in range(TENANTS)]


def seed(path):
    """Fill the SQLite ledger at `path`; returns the rollups' request total."""
    path = str(path)
    Ledger(path).ensure()
    store = KeyStore(path)
    for i, tenant in enumerate(tenant_ids()):
        spec = {
            'id': tenant,
            'rate_limit': {'requests_per_minute': 1000 + i},
            'budget': {'daily_usd': 25.0, 'warn_at': 0.8},
        }
        assert store.create_tenant(tenant, spec)
    db = sqlite3.connect(path)
    db.executemany(
        'INSERT INTO api_keys (id, tenant, name, digest, created_ns, scope, '
        'updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
            (
                f'key_scale{i:05d}',
                tenant_ids()[0],
                f'svc-{i:05d}',
                hashlib.sha256(f'sk-scale-{i}'.encode()).hexdigest(),
                1 + i,
                KEY_SCOPE,
                1,
            )
            for i in range(KEYS)
        ],
    )
    rng = random.Random(7)
    now_hour = time.time_ns() // HOUR_NS * HOUR_NS
    rows, total = [], 0
    for h in range(DAYS * 24):
        hour_ns = now_hour - h * HOUR_NS
        for t, tenant in enumerate(tenant_ids()):
            for model in MODELS:
                requests = rng.randint(0, 40 + t)
                total += requests
                prompt, completion = requests * 300, requests * 80
                rows.append(
                    (hour_ns, tenant, 'svc', model, 'mock', requests, requests // 50)
                    + (prompt, completion, prompt // 4, 0, 0)
                    + (round(requests * 0.0011, 9), requests * 420.0)
                )
    db.executemany(
        'INSERT INTO usage_hourly (hour_ns, tenant, key_name, model, provider, '
        'requests, errors, prompt_tokens, completion_tokens, cached_tokens, '
        'cache_write_tokens, reasoning_tokens, cost_usd, duration_ms) '
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        rows,
    )
    db.commit()
    db.close()
    return total
