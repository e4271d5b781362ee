"""A/B of the gateway from two source trees, in interleaved rounds through the
static upstream (the full pipeline, `bench/upstream/gateway.yaml`).

    git worktree add /tmp/before HEAD~1
    python bench/ab.py --a /tmp/before --rounds 6 --duration 8 --conns 64

Each round measures both (the order alternates), so the machine's drift falls on
both alike, and half the rounds run with the servers started in the other order
(the one started second measures faster here, whatever its code); it prints each
round and the medians of requests/s, CPU per request (the whole Gunicorn process
group) and p50. Run it A against A first to see the noise.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import ROOT  # noqa: E402
from load import Target  # noqa: E402
from load import measure  # noqa: E402
from load import wrk  # noqa: E402
from run import body  # noqa: E402
from run import gateway_config  # noqa: E402
from upstream import Nginx  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--a', required=True, help='the tree measured as A')
    parser.add_argument('--b', default=str(ROOT), help='the tree measured as B')
    parser.add_argument('--worker-class', default='gevent')
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--duration', type=int, default=8)
    parser.add_argument('--conns', type=int, default=64)
    parser.add_argument('--sse', action='store_true', help='a stream, not JSON')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='aegisflow-ab-')
    nginx = Nginx(workdir)
    config = gateway_config(workdir, nginx.port, nginx.sse_port)
    model, stream = ('static-sse', 'true') if args.sse else ('static', 'false')
    env = {'BENCH_KEY': 'sk-bench', 'BENCH_BODY': body(model, stream)}
    trees = {'A': args.a, 'B': args.b}
    results = {'A': [], 'B': []}
    try:
        nginx.start()
        # NOTE: the server started second measures ~5% faster here whatever its
        # code (an A/A run shows it): half the rounds start A first, half B
        for half, order in enumerate((('A', 'B'), ('B', 'A'))):
            targets = {
                name: Target(
                    f'{name}{half}',
                    'aegisflow',
                    args.worker_class,
                    workdir,
                    tree=trees[name],
                    config=config,
                )
                for name in order
            }
            try:
                for t in targets.values():
                    t.start()
                    wrk(t.url, args.conns, 2, env)  # warm up
                for rnd in range(
                    half * args.rounds // 2, (half + 1) * args.rounds // 2
                ):
                    for name in ('A', 'B') if rnd % 2 == 0 else ('B', 'A'):
                        r = measure(targets[name], args.conns, args.duration, env)
                        results[name].append(r)
                        print(
                            f'round {rnd + 1} {name} {r["rps"]:>8,.0f} req/s '
                            f'cpu {r["cpu_ms"]:.3f} ms/req p50 {r["p50"]:.2f} ms '
                            f'p99 {r["p99"]:.2f} ms '
                            f'bad {r["bad"]}',
                            flush=True,
                        )
            finally:
                for t in targets.values():
                    t.stop()
    finally:
        nginx.stop()
    for name, rs in results.items():
        rps, cpu, p50, p99 = (
            statistics.median(r[k] for r in rs) for k in ('rps', 'cpu_ms', 'p50', 'p99')
        )
        print(
            f'{name} ({trees[name]}): median {rps:,.0f} req/s, '
            f'{cpu:.3f} ms CPU/req, p50 {p50:.2f} ms, p99 {p99:.2f} ms'
        )


if __name__ == '__main__':
    main()
