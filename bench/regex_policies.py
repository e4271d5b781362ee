"""A regex input policy through the whole gateway, by its number of patterns.

    python bench/regex_policies.py [--rounds 3] [--duration 8] [--append RESULTS.md]
        [--other-tree DIR]

Starts AegisFlow (`bench/gateway.yaml`, 2 gthread workers, the mock provider) once
without a policy and once per pattern count (1, 10, 50: the patterns of
`bench/test_regex_policies.py`), drives each in turn with `wrk` (one connection,
`bench/post.lua`: a small one-message request that matches no pattern) in
interleaved rounds, and reports the median p50 latency and CPU per request, and
each count's added latency over no policy, taken within a round. With
`--other-tree`, the same targets from another checkout run in the same rounds.
"""

import argparse
import datetime
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.load import Target  # noqa: E402
from bench.load import machine  # noqa: E402
from bench.load import measure  # noqa: E402
from bench.test_regex_policies import PATTERNS  # noqa: E402

COUNTS = (0, 1, 10, 50)


def config(workdir, n):
    text = (HERE / 'gateway.yaml').read_text()
    if n:
        quoted = ', '.join("'" + p.replace("'", "''") + "'" for p in PATTERNS[:n])
        text += (
            'policies:\n  input:\n'
            f'    - {{name: codes, type: regex, action: block, patterns: [{quoted}]}}\n'
        )
    path = Path(workdir) / f'regex-{n}.yaml'
    path.write_text(text)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--duration', type=int, default=8)
    ap.add_argument('--other-tree')
    ap.add_argument('--append')
    args = ap.parse_args()
    env = {'BENCH_KEY': 'sk-bench'}
    trees = [('this', HERE.parent)]
    if args.other_tree:
        trees.append(('other', Path(args.other_tree)))
    with tempfile.TemporaryDirectory() as workdir:
        targets = [
            Target(
                f'{tag}-{n}', 'aegisflow', 'gthread', workdir, tree=tree,
                config=config(workdir, n),
            )
            for tag, tree in trees
            for n in COUNTS
        ]  # fmt: skip
        results = {t.name: [] for t in targets}
        try:
            for t in targets:
                t.start()
            for _ in range(args.rounds):
                for t in targets:
                    results[t.name].append(measure(t, 1, args.duration, env))
        finally:
            for t in targets:
                t.stop()
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f'### Regex policy by pattern count, {now:%Y-%m-%d %H:%M} UTC',
        '',
        f'Machine: {machine()}. Command: `python bench/regex_policies.py --rounds '
        f'{args.rounds} --duration {args.duration}'
        + (' --other-tree OLD`' if args.other_tree else '`')
        + ' (1 connection, medians of the rounds).',
        '',
        '| target | patterns | req/s | p50 ms | CPU ms/req '
        '| p50 added over no policy, per round (ms) |',
        '|---|---:|---:|---:|---:|---|',
    ]  # fmt: skip
    for tag, _ in trees:
        base = results[f'{tag}-0']
        for n in COUNTS:
            runs = results[f'{tag}-{n}']
            added = [r['p50'] - b['p50'] for r, b in zip(runs, base, strict=True)]
            lines.append(
                f'| {tag} | {n} | {statistics.median(r["rps"] for r in runs):,.0f} | '
                f'{statistics.median(r["p50"] for r in runs):.3f} | '
                f'{statistics.median(r["cpu_ms"] for r in runs):.3f} | '
                + ', '.join(f'{a:+.3f}' for a in added)
                + ' |'
            )
    report = '\n'.join(lines) + '\n'
    print(report)
    if args.append:
        with open(args.append, 'a') as f:
            f.write('\n' + report)


if __name__ == '__main__':
    main()
