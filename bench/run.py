"""`make bench`: the gateway against the limit of its stack, in one interleaved run.

Targets, all started by this script on loopback ports and measured in turn, round
after round (a noisy neighbour hits them alike):

    direct       the static upstream itself (nginx: a fixed chat.completion and a
                 fixed SSE stream, `bench/upstream/`)
    falcon       a bare Falcon app that reads the body and answers the same fixed
                 JSON or SSE (`bench/bare_app.py`): the limit of the stack
    passthrough  Falcon plus urllib3 forwarding to the upstream, nothing else
                 (`bench/passthrough_app.py`): the limit of the stack for a proxy
    aegisflow    the gateway with its full pipeline (`bench/upstream/gateway.yaml`:
                 auth, limits on every request, the default policies, routing,
                 usage, metrics), once on its in-process mock provider
                 (aegisflow-mock) and once through the upstream (aegisflow-upstream)

at 1 and 64 connections, JSON and streaming (SSE), under each worker class asked
for (2 workers each). `--other NAME=URL` adds another gateway, started by you and
configured to forward models `static` (JSON) and `static-sse` (SSE) to the upstream's
fixed ports (`--upstream-port`, `--upstream-sse-port`), to every round; with
`--other-pgid NAME=PGID` its CPU and memory are read too.

Figures: requests/s, p50/p90/p99, server CPU ms per request
(user+system of every process of the target), RSS. The targets of the performance
work are ratios taken within each round; the report gives each round's value and
the median.

    python bench/run.py --rounds 3 --duration 10 --append bench/RESULTS.md
"""

import argparse
import datetime
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import ServerConfig  # noqa: E402
from load import Target  # noqa: E402
from load import machine  # noqa: E402
from load import measure  # noqa: E402
from load import publish  # noqa: E402
from load import wrk  # noqa: E402
from upstream import Nginx  # noqa: E402
from upstream import gateway_config  # noqa: E402

BODY = '{"model":"MODEL","stream":STREAM,"messages":[{"role":"user","content":"Hi"}]}'
KINDS = (('json', 'false'), ('sse', 'true'))


def model_for(name, kind):
    """The model a request names: the mock for aegisflow-mock; for every other
    gateway, `static` or `static-sse`, which it routes to the upstream."""
    if name == 'aegisflow-mock':
        return 'mock'
    return 'static-sse' if kind == 'sse' else 'static'


# target: (what, goal, how it is read off one round)
GOALS = (
    ('aegisflow-mock / falcon req/s, JSON, 64 conns', 0.50, '>='),
    ('aegisflow-upstream / passthrough req/s, JSON, 64 conns', 0.70, '>='),
    ('aegisflow-upstream CPU ms/req, JSON, 64 conns', 0.35, '<='),
    ('aegisflow-upstream p50 - direct p50 (ms), JSON, 1 conn', 0.5, '<='),
)


# a cooperative class against gthread, same round: (what, goal, op, value of a round)
CLASS_GOALS = (
    ("req/s via the upstream, JSON, 64 conns, over gthread's", 1.8, '>=', 'rps'),
    ("CPU ms/req via the upstream, JSON, 64 conns, over gthread's", 0.55, '<=', 'cpu'),
    (
        'aegisflow-upstream / passthrough req/s (same class), JSON, 64 conns',
        0.75,
        '>=',
        'pass',
    ),
    ('aegisflow-upstream p50 - direct p50 (ms), JSON, 1 conn', 1.0, '<=', 'p50'),
)


def class_goal_values(results, wc, rounds):
    """Per round, `wc` against gthread on the issue's targets for a worker class."""
    out = []
    for i in range(rounds):

        def at(cls, name, conns, i=i):
            return results[(cls, name, 'json', conns)][i]

        mine, theirs = (
            at(wc, 'aegisflow-upstream', 64),
            at('gthread', 'aegisflow-upstream', 64),
        )
        out.append(
            {
                'rps': mine['rps'] / theirs['rps'],
                'cpu': mine['cpu_ms'] / theirs['cpu_ms'],
                'pass': mine['rps'] / at(wc, 'passthrough', 64)['rps'],
                'p50': at(wc, 'aegisflow-upstream', 1)['p50']
                - results[('direct', 'direct', 'json', 1)][i]['p50'],
            }
        )
    return out


class Other(Target):
    """A gateway this script did not start: measured at its URL, and its CPU and
    RSS read from its process group when given."""

    def __init__(self, spec, pgids):
        self.name, _, url = spec.partition('=')
        self.base = url.rstrip('/')
        pgid = dict(p.split('=', 1) for p in pgids).get(self.name)
        self.proc = _Group(int(pgid)) if pgid else None

    @property
    def url(self):
        return self.base


class _Group:
    def __init__(self, pid):
        self.pid = pid  # NOTE: Target.group() reads the processes of this group


def body(model, stream):
    return BODY.replace('MODEL', model).replace('STREAM', stream)


def goal_values(results, wc, rounds):
    """Per round, the value of each goal (same round, same worker class)."""
    r = {k: v for k, v in results.items() if k[0] in ('direct', wc)}
    out = []
    for i in range(rounds):

        def at(name, kind, conns, i=i):
            key = (
                ('direct', name, kind, conns)
                if name == 'direct'
                else (wc, name, kind, conns)
            )
            return r[key][i]

        out.append(
            (
                at('aegisflow-mock', 'json', 64)['rps']
                / at('falcon', 'json', 64)['rps'],
                at('aegisflow-upstream', 'json', 64)['rps']
                / at('passthrough', 'json', 64)['rps'],
                at('aegisflow-upstream', 'json', 64)['cpu_ms'],
                at('aegisflow-upstream', 'json', 1)['p50']
                - at('direct', 'json', 1)['p50'],
            )
        )
    return out


def _goal_row(wc, what, goal, op, per):
    """A target's table row: its value in each round, their median, met or not."""
    m = statistics.median(per)
    met = m >= goal if op == '>=' else m <= goal
    return (
        f'| {wc} | {what} | {op} {goal:g} | {", ".join(f"{x:.2f}" for x in per)} '
        f'| {m:.2f} | {"yes" if met else "**no**"} |'
    )


def report(results, args, conns, worker_classes):
    med = statistics.median
    lines = [
        '| worker class | target | response | conns | req/s | p50 ms | p90 ms | '
        'p99 ms | CPU ms/req | RSS MB | non-2xx |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for (wc, name, kind, c), runs in results.items():
        measured = 'cpu_ms' in runs[0]
        cpu = f'{med(r["cpu_ms"] for r in runs):.3f}' if measured else '-'
        rss = f'{med(r["rss"] for r in runs):.0f}' if measured else '-'
        lines.append(
            f'| {"nginx" if wc == "direct" else wc} | {name} | '
            f'{"SSE" if kind == "sse" else "JSON"} | {c} | '
            f'{med(r["rps"] for r in runs):,.0f} | {med(r["p50"] for r in runs):.2f} | '
            f'{med(r["p90"] for r in runs):.2f} | {med(r["p99"] for r in runs):.2f} | '
            f'{cpu} | {rss} | {sum(r["bad"] for r in runs)} |'
        )
    lines += [
        '',
        '| worker class | target (ratio or figure in one round) | goal | per round | '
        'median | met |',
        '|---|---|---:|---|---:|---|',
    ]
    if 1 in conns and 64 in conns:
        for wc in worker_classes:
            values = goal_values(results, wc, args.rounds)
            for j, (what, goal, op) in enumerate(GOALS):
                lines.append(_goal_row(wc, what, goal, op, [v[j] for v in values]))
    others = [wc for wc in worker_classes if wc != 'gthread']
    if 1 in conns and 64 in conns and 'gthread' in worker_classes and others:
        lines += [
            '',
            '| worker class | target against gthread (one round) | goal | per round '
            '| median | met |',
            '|---|---|---:|---|---:|---|',
        ]
        for wc in others:
            values = class_goal_values(results, wc, args.rounds)
            for what, goal, op, key in CLASS_GOALS:
                lines.append(_goal_row(wc, what, goal, op, [v[key] for v in values]))
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/run.py'] + sys.argv[1:])
    return (
        f'### make bench: the gateway against the limit of its stack, {stamp}\n\n'
        f'Machine: {machine()}. Command: `{cmd}` ({args.rounds} interleaved rounds '
        f'of {args.duration} s; medians; each ratio is taken within one round). '
        'Every server: Gunicorn, 2 workers of the class shown (gthread: '
        f'{args.threads or ServerConfig().threads} threads each); the gateway runs '
        'its full pipeline.\n\n' + '\n'.join(lines) + '\n'
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', default='1,64')
    parser.add_argument('--worker-classes', default='gevent,gthread')
    parser.add_argument(
        '--threads', type=int, help="gthread threads per worker (the gateway's default)"
    )
    parser.add_argument('--append', help='append the dated report to this file')
    parser.add_argument(
        '--other',
        action='append',
        default=[],
        metavar='NAME=URL',
        help='another gateway to measure in every round (repeatable)',
    )
    parser.add_argument('--other-key', default='sk-bench', help='its API key')
    parser.add_argument(
        '--other-pgid',
        action='append',
        default=[],
        metavar='NAME=PGID',
        help="its process group, to read that gateway's CPU and RSS",
    )
    parser.add_argument('--upstream-port', type=int)
    parser.add_argument('--upstream-sse-port', type=int)
    args = parser.parse_args()
    for tool in ('wrk', 'nginx'):
        if not shutil.which(tool) and not Path(f'/usr/sbin/{tool}').exists():
            sys.exit(f'{tool} is not installed (make bench installs it)')
    conns = [int(c) for c in args.conns.split(',')]
    worker_classes = args.worker_classes.split(',')
    workdir = tempfile.mkdtemp(prefix='aegisflow-bench-')
    nginx = Nginx(workdir, args.upstream_port, args.upstream_sse_port)
    others = [Other(spec, args.other_pgid) for spec in args.other]
    config = gateway_config(workdir, nginx.port, nginx.sse_port)
    upstream_env = {
        'PASSTHROUGH_JSON': f'http://127.0.0.1:{nginx.port}/v1',
        'PASSTHROUGH_SSE': f'http://127.0.0.1:{nginx.sse_port}/v1',
    }
    servers = {}
    for wc in worker_classes:
        servers[wc] = {
            'falcon': Target(
                f'falcon-{wc}', 'falcon', wc, workdir, threads=args.threads
            ),
            'passthrough': Target(
                f'passthrough-{wc}',
                'passthrough',
                wc,
                workdir,
                env=upstream_env,
                threads=args.threads,
            ),
            'aegisflow': Target(
                f'aegisflow-{wc}',
                'aegisflow',
                wc,
                workdir,
                config=config,
                threads=args.threads,
            ),
        }
    ports = {'json': nginx.port, 'sse': nginx.sse_port}
    results = {}
    try:
        nginx.start()
        for group in servers.values():
            for t in group.values():
                t.start()
        for rnd in range(args.rounds):
            for c in conns:
                for kind, stream in KINDS:
                    runs = [('direct', 'direct', f'http://127.0.0.1:{ports[kind]}')]
                    for wc, group in servers.items():
                        runs += [
                            (wc, 'falcon', group['falcon']),
                            (wc, 'passthrough', group['passthrough']),
                            (wc, 'aegisflow-mock', group['aegisflow']),
                            (wc, 'aegisflow-upstream', group['aegisflow']),
                        ]
                    runs += [('other', o.name, o) for o in others]
                    for wc, name, target in runs:
                        env = {
                            'BENCH_KEY': args.other_key
                            if wc == 'other'
                            else 'sk-bench',
                            'BENCH_BODY': body(model_for(name, kind), stream),
                        }
                        if isinstance(target, Other) and target.proc is None:
                            target = target.url
                        if isinstance(target, str):
                            wrk(target, c, 1, env)
                            r = wrk(target, c, args.duration, env)
                        else:
                            r = measure(target, c, args.duration, env)
                        results.setdefault((wc, name, kind, c), []).append(r)
                        cpu = f'{r["cpu_ms"]:.3f}' if 'cpu_ms' in r else '-'
                        print(
                            f'round {rnd + 1} {wc:8} {name:18} {kind:4} c={c:<3} '
                            f'{r["rps"]:>9,.0f} req/s p50 {r["p50"]:.3f} ms '
                            f'cpu {cpu} ms/req bad {r["bad"]}',
                            flush=True,
                        )
    finally:
        for group in servers.values():
            for t in group.values():
                t.stop()
        nginx.stop()
    ordered = dict(sorted(results.items(), key=lambda kv: _order(kv[0])))
    publish(report(ordered, args, conns, worker_classes), args.append)


def _order(key):
    wc, name, kind, c = key
    names = ('direct', 'falcon', 'passthrough', 'aegisflow-mock', 'aegisflow-upstream')
    rank = names.index(name) if name in names else len(names)
    return (wc != 'direct', wc == 'other', wc, kind, c, rank, name)


if __name__ == '__main__':
    main()
