"""Memory under a long load: the gateway's RSS after 100,000 requests and after
1,000,000 (no growth: within 10%).

Starts AegisFlow with its full pipeline (`bench/upstream/gateway.yaml` on the mock
provider: auth, limits, default policies, usage rows into SQLite, metrics) under its
default worker class, drives it with wrk at 64 connections in segments, and after
each segment reads the RSS and open file descriptors of every process of the
gateway (the master with its aggregator, and the workers). Every tenth request is
a stream.

    python bench/memory.py --requests 1000000 --append bench/RESULTS.md

`make soak` runs it for at least 20 minutes as well (`--minutes 20`).
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Target  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402
from load import wrk  # noqa: E402
from upstream import gateway_config  # noqa: E402

BODY = '{"model":"mock","stream":STREAM,"messages":[{"role":"user","content":"Hi"}]}'


def fds(target):
    n = 0
    for pid in target.pids():
        try:
            n += len(os.listdir(f'/proc/{pid}/fd'))
        except OSError:
            pass
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--requests', type=int, default=1_000_000)
    parser.add_argument('--first', type=int, default=100_000)
    parser.add_argument('--segment', type=int, default=20, help='seconds per wrk run')
    parser.add_argument(
        '--minutes', type=float, default=0, help='and run at least this long'
    )
    parser.add_argument('--append')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='aegisflow-memory-')
    # NOTE: only the mock model is used; the upstream ports stay unused
    config = gateway_config(workdir, 9, 9)
    gateway = Target('aegisflow-memory', 'aegisflow', 'gthread', workdir, config=config)
    rows, total, first = [], 0, None
    json_env = {'BENCH_KEY': 'sk-bench', 'BENCH_BODY': BODY.replace('STREAM', 'false')}
    sse_env = {'BENCH_KEY': 'sk-bench', 'BENCH_BODY': BODY.replace('STREAM', 'true')}
    gateway.start()
    try:
        start_rss, start_fds = gateway.rss_mb(), fds(gateway)
        rows.append((0, start_rss, start_fds, 0))
        segment = 0
        ends = time.monotonic() + args.minutes * 60
        while total < args.requests or time.monotonic() < ends:
            segment += 1
            env = sse_env if segment % 10 == 0 else json_env
            r = wrk(gateway.url, 64, args.segment, env)
            total += r['requests']
            rss, n = gateway.rss_mb(), fds(gateway)
            rows.append((total, rss, n, r['bad']))
            print(
                f'{total:>10,} requests RSS {rss:6.1f} MB fds {n} non-2xx {r["bad"]}',
                flush=True,
            )
            if first is None and total >= args.first:
                first = rows[-1]
        # NOTE: descriptors at rest: wait (up to 10 s) for wrk's connections to close
        deadline = time.monotonic() + 10
        while fds(gateway) > start_fds and time.monotonic() < deadline:
            time.sleep(0.2)
        end_fds = fds(gateway)
    finally:
        gateway.stop()
    last = rows[-1]
    growth = (last[1] - first[1]) / first[1]
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/memory.py'] + sys.argv[1:])
    lines = [
        '| requests served | RSS MB (all processes) | open fds | non-2xx in segment |',
        '|---:|---:|---:|---:|',
    ]
    step = max(1, len(rows) // 12)
    shown = rows[::step] + ([last] if rows[::step][-1] is not last else [])
    if first not in shown:
        shown = sorted(shown + [first])
    for total_n, rss, n, bad in shown:
        lines.append(f'| {total_n:,} | {rss:.1f} | {n} | {bad} |')
    report = (
        f'### RSS after {last[0]:,} requests vs after {first[0]:,}, {stamp}\n\n'
        f'Machine: {machine()}. Command: `{cmd}` (wrk, 64 connections, '
        f'{args.segment} s segments, every tenth segment streaming). Gateway: '
        'default worker class and threads, full pipeline on the mock provider.\n\n'
        + '\n'.join(lines)
        + f'\n\nRSS after {last[0]:,}: {last[1]:.1f} MB; after {first[0]:,}: '
        f'{first[1]:.1f} MB; growth {growth:+.1%} (goal: within 10%). Open file '
        f'descriptors at rest: {start_fds} before the load, {end_fds} after it (in '
        'the table: just after each segment, while its connections close).\n'
    )
    publish(report, args.append)


if __name__ == '__main__':
    main()
