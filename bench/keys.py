"""Run-time keys at scale, in one interleaved run: the mock pipeline's requests/s
with 10 run-time keys and with 10,000 (each with its own rate limit and budget,
requests spread over all of them, `bench/keys.lua`), and how long a key created
through the admin API takes to work on every worker.

    python bench/keys.py --rounds 3 --duration 10 --append bench/RESULTS.md
"""

import argparse
import datetime
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from load import Target  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402

from aegisflow.usage.keystore import KeyStore  # noqa: E402

CONFIG = """
server: {workers: 2, admin_key_env: BENCH_ADMIN}
state: {shm: {limit_entries: 65536, runtime_names: 16384}}
providers:
  - {name: mock, type: mock, models: [mock], prices: {mock: {input: 1, output: 1}}}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: bench
    keys: [{key: sk-bench, name: load}]
storage: {sqlite_path: usage.sqlite}
telemetry: {log_level: warning, access_log: false}
"""
SCOPE = orjson.dumps(
    {
        'rate_limit': {'requests_per_minute': 10**9, 'tokens_per_minute': 10**12},
        'budget': {'daily_usd': 10**6},
    }
).decode()
ADMIN = 'adm-bench-keys'


def seeded(workdir, count):
    path = Path(workdir) / 'usage.sqlite'
    KeyStore(str(path)).listing('bench')
    db = sqlite3.connect(path)
    db.executemany(
        'INSERT INTO api_keys (id, tenant, name, digest, created_ns, scope, '
        'updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
            (
                f'key_{i}',
                'bench',
                f'k{i}',
                hashlib.sha256(f'sk-keys-{i}'.encode()).hexdigest(),
                1,
                SCOPE,
                1,
            )
            for i in range(count)
        ],
    )
    db.commit()
    db.close()
    config = Path(workdir) / 'gateway.yaml'
    config.write_text(CONFIG)
    return config


def wrk(url, keys, conns, duration):
    out = subprocess.run(
        [
            'wrk',
            '-t',
            '2',
            '-c',
            str(conns),
            '-d',
            f'{duration}s',
            '--latency',
            '-s',
            str(HERE / 'keys.lua'),
            url + '/v1/chat/completions',
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, BENCH_KEYS=str(keys)),
        timeout=duration + 60,
    ).stdout
    rps = float(out.split('Requests/sec:')[1].split()[0])
    bad = out.split('BENCH non2xx=')[1].split()[0]
    return rps, int(bad)


def propagation(target, samples=20):
    """Seconds from an admin call creating a key to the key answering on every
    worker: the first success, then 16 in a row on fresh connections."""
    out = []
    for n in range(samples):
        t0 = time.perf_counter()
        made = requests.post(
            f'{target.url}/admin/v1/tenants/bench/keys',
            json={'name': f'fresh{n}'},
            headers={'Authorization': f'Bearer {ADMIN}'},
            timeout=10,
        ).json()
        ok = 0
        while ok < 16:
            r = requests.post(
                f'{target.url}/v1/chat/completions',
                json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}]},
                headers={
                    'Authorization': f'Bearer {made["key"]}',
                    'Connection': 'close',
                },
                timeout=10,
            )
            ok = ok + 1 if r.status_code == 200 else 0
        out.append(time.perf_counter() - t0)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', type=int, default=64)
    parser.add_argument('--append')
    args = parser.parse_args()
    targets = {}
    for count in (10, 10_000):
        workdir = tempfile.mkdtemp(prefix=f'aegisflow-keys-{count}-')
        targets[count] = Target(
            f'keys-{count}',
            'aegisflow',
            'gevent',
            workdir,
            config=seeded(workdir, count),
            env={'BENCH_ADMIN': ADMIN},
        )
    results = {c: [] for c in targets}
    try:
        for t in targets.values():
            t.start()
        for rnd in range(args.rounds):
            for count, t in targets.items():
                # NOTE: every key is used once before the measure (its first
                # request creates its counters and its name: a one-time cost)
                wrk(t.url, count, args.conns, 1 if rnd else 6)
                rps, bad = wrk(t.url, count, args.conns, args.duration)
                results[count].append(rps)
                print(
                    f'round {rnd + 1} {count:>6} keys {rps:>9,.0f} req/s bad {bad}',
                    flush=True,
                )
        spread = propagation(targets[10_000])
    finally:
        for t in targets.values():
            t.stop()
    ratios = [b / a for a, b in zip(results[10], results[10_000], strict=True)]
    today = datetime.date.today()
    lines = [
        f'## {today}: 10,000 run-time keys against 10 (bench/keys.py)',
        '',
        f'Machine: {machine()}. Command: `python bench/keys.py --rounds '
        f'{args.rounds} --duration {args.duration}`; {args.conns} connections, 2 '
        'gevent workers, the mock pipeline, each key with its own rate limit and '
        'budget, requests spread over every key (`bench/keys.lua`), after a '
        'warm-up that used every key.',
        '',
        '| keys | req/s (median) | rounds |',
        '|---:|---:|---|',
    ]
    for c, r in results.items():
        rounds = ', '.join(f'{x:,.0f}' for x in r)
        lines.append(f'| {c:,} | {statistics.median(r):,.0f} | {rounds} |')
    median_ms = statistics.median(spread) * 1000
    lines += [
        '',
        '10,000 / 10 per round: '
        + ', '.join(f'{x:.2f}' for x in ratios)
        + f'; median {statistics.median(ratios):.2f} (target >= 0.95).',
        '',
        'A key created through the admin API (10,000 loaded), from the call to '
        'the first of 16 successes in a row on fresh connections: median '
        f'{median_ms:.0f} ms, max {max(spread) * 1000:.0f} ms over {len(spread)} '
        'keys.',
        '',
    ]
    report = '\n'.join(lines)
    publish(report, args.append)


if __name__ == '__main__':
    main()
