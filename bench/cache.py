"""The response cache under load, in one interleaved run.

Targets (2 workers each, the default worker class), measured in turn, round after
round, at 64 connections with wrk and `bench/post.lua` (the same body every time):

    mock-nocache   the gateway on its in-process mock provider, cache off
    cache-hit      the gateway with the cache on, the model routed to the static
                   upstream (nginx): after the first request every one is a hit

Both run the full pipeline of `bench/upstream/gateway.yaml` (auth, limits, the
default policies, usage, metrics). Reported: requests/s, p50/p99, server CPU ms
per request, the ratio of the two in each round, and, from a 4-worker gateway
sent the same repeated request, the hit ratio and the upstream calls.

    python bench/cache.py --rounds 3 --duration 10 --append bench/RESULTS.md
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Target  # noqa: E402
from load import machine  # noqa: E402
from load import measure  # noqa: E402
from load import publish  # noqa: E402
from upstream import Nginx  # noqa: E402
from upstream import gateway_config  # noqa: E402

BODY = '{"model":"MODEL","messages":[{"role":"user","content":"Hi"}]}'
CACHE = """
cache: {enabled: true, ttl_s: 3600}
"""


def cached_config(workdir, nginx, workers):
    path = gateway_config(workdir, nginx.port, nginx.sse_port)
    text = path.read_text().replace('workers: 2', f'workers: {workers}')
    out = Path(workdir) / f'gateway-cache-{workers}.yaml'
    out.write_text(text + CACHE)
    return out


def counters(url):
    """(hits, misses, upstream calls to `static`) from /metrics."""
    text = urllib.request.urlopen(url + '/metrics', timeout=10).read().decode()
    hits = misses = calls = 0.0
    for line in text.splitlines():
        if line.startswith('aegisflow_cache_requests_total{'):
            value = float(line.rsplit(' ', 1)[1])
            if 'result="hit"' in line:
                hits += value
            elif 'result="miss"' in line:
                misses += value
        elif line.startswith('aegisflow_upstream_attempts_total{') and (
            'provider="static"' in line
        ):
            calls += float(line.rsplit(' ', 1)[1])
    return hits, misses, calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', type=int, default=64)
    parser.add_argument('--append')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='aegisflow-bench-cache-')
    nginx = Nginx(workdir)
    nginx.start()
    plain = gateway_config(workdir, nginx.port, nginx.sse_port)
    targets = {
        'mock-nocache': (
            Target('mock-nocache', 'aegisflow', 'gevent', workdir, config=plain),
            'mock',
        ),
        'cache-hit': (
            Target(
                'cache-hit',
                'aegisflow',
                'gevent',
                workdir,
                config=cached_config(workdir, nginx, 2),
            ),
            'static',
        ),
    }
    four = Target(
        'cache-4-workers',
        'aegisflow',
        'gevent',
        workdir,
        config=cached_config(workdir, nginx, 4),
    )
    results = {name: [] for name in targets}
    try:
        for target, _ in targets.values():
            target.start()
        four.start()
        for rnd in range(args.rounds):
            for name, (target, model) in targets.items():
                env = {
                    'BENCH_KEY': 'sk-bench',
                    'BENCH_BODY': BODY.replace('MODEL', model),
                }
                r = measure(target, args.conns, args.duration, env)
                results[name].append(r)
                print(
                    f'round {rnd + 1} {name:13} {r["rps"]:>9,.0f} req/s '
                    f'p50 {r["p50"]:.3f} ms cpu {r["cpu_ms"]:.3f} ms/req '
                    f'bad {r["bad"]}',
                    flush=True,
                )
        env = {'BENCH_KEY': 'sk-bench', 'BENCH_BODY': BODY.replace('MODEL', 'static')}
        r4 = measure(four, args.conns, args.duration, env)
        hits, misses, calls = counters(four.url)
    finally:
        for target, _ in targets.values():
            target.stop()
        four.stop()
        nginx.stop()
    ratios = [
        h['rps'] / m['rps']
        for h, m in zip(results['cache-hit'], results['mock-nocache'], strict=True)
    ]
    lines = [
        f'## {datetime.date.today()}: response cache hits vs the in-process mock '
        f'(bench/cache.py)',
        '',
        f'Machine: {machine()}. Command: `python bench/cache.py --rounds '
        f'{args.rounds} --duration {args.duration}`; {args.conns} connections, '
        '2 gevent workers each, medians of the rounds.',
        '',
        '| target | req/s | p50 ms | p99 ms | CPU ms/req | non-2xx |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for name, runs in results.items():
        med = {
            k: statistics.median(r[k] for r in runs)
            for k in ('rps', 'p50', 'p99', 'cpu_ms')
        }
        bad = sum(r['bad'] for r in runs)
        lines.append(
            f'| {name} | {med["rps"]:,.0f} | {med["p50"]:.2f} | '
            f'{med["p99"]:.2f} | {med["cpu_ms"]:.3f} | {bad} |'
        )
    lines += [
        '',
        'Hits / mock (cache off), per round: '
        + ', '.join(f'{x:.2f}' for x in ratios)
        + f'; median {statistics.median(ratios):.2f} (target >= 0.9).',
        '',
        f'4 workers, the same request {hits + misses:,.0f} times (a 1-second '
        f'warm-up, then {r4["requests"]:,} at {r4["rps"]:,.0f} req/s): '
        f'{hits:,.0f} hits, {misses:,.0f} misses, '
        f'{calls:,.0f} upstream calls; hit ratio {hits / max(1, hits + misses):.5f} '
        '(misses past the first are concurrent first requests: misses are not '
        'coalesced).',
        '',
    ]
    publish('\n'.join(lines), args.append)


if __name__ == '__main__':
    main()
