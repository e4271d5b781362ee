"""Latency the gateway adds over calling the upstream directly.

A static upstream (nginx from Debian, `bench/upstream/nginx.conf`) answers a fixed
chat.completion and a fixed SSE stream. wrk measures, in interleaved rounds, the
upstream called directly and through AegisFlow (full pipeline: auth, validation,
routing, the OpenAI-compatible adapter, telemetry), at 1 and 64 connections,
streaming and not. The table gives p50/p99 of each and the difference.

    python bench/upstream.py --rounds 3 --duration 10 --append bench/RESULTS.md
"""

import argparse
import datetime
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Target  # noqa: E402
from load import free_port  # noqa: E402
from load import machine  # noqa: E402
from load import wrk  # noqa: E402

HERE = Path(__file__).resolve().parent / 'upstream'
BODY = '{"model":"MODEL","stream":STREAM,"messages":[{"role":"user","content":"Hi"}]}'


class Nginx:
    def __init__(self, workdir):
        self.dir = Path(workdir) / 'nginx'
        (self.dir / 'tmp').mkdir(parents=True, exist_ok=True)
        self.port, self.sse_port = free_port(), free_port()
        shutil.copy(HERE / 'stream.sse', self.dir / 'stream.sse')
        # NOTE: nginx's worker runs as an unprivileged user; mkdtemp makes 0700.
        for path in (Path(workdir), self.dir, self.dir / 'stream.sse'):
            path.chmod(0o755)
        conf = (
            (HERE / 'nginx.conf')
            .read_text()
            .replace('UPSTREAM_SSE_PORT', str(self.sse_port))
            .replace('UPSTREAM_PORT', str(self.port))
            .replace('ROOT', str(self.dir))
        )
        (self.dir / 'nginx.conf').write_text(conf)
        self.proc = None

    def start(self):
        binary = shutil.which('nginx') or '/usr/sbin/nginx'
        self.proc = subprocess.Popen(
            [
                binary,
                '-p',
                str(self.dir),
                '-c',
                str(self.dir / 'nginx.conf'),
                '-g',
                'daemon off;',
            ],
            start_new_session=True,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError('nginx did not start')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', default='1,64')
    parser.add_argument('--append')
    args = parser.parse_args()
    conns = [int(c) for c in args.conns.split(',')]
    workdir = tempfile.mkdtemp(prefix='aegisflow-upstream-')
    nginx = Nginx(workdir)
    config = Path(workdir) / 'gateway.yaml'
    config.write_text(
        (HERE / 'gateway.yaml')
        .read_text()
        .replace('UPSTREAM_SSE_PORT', str(nginx.sse_port))
        .replace('UPSTREAM_PORT', str(nginx.port))
    )
    gateway = Target(
        'aegisflow-gthread', 'aegisflow', 'gthread', workdir, config=config
    )
    cases = [
        ('json', 'static', 'false', nginx.port),
        ('sse', 'static-sse', 'true', nginx.sse_port),
    ]
    results = {}
    try:
        nginx.start()
        gateway.start()
        for rnd in range(args.rounds):
            for c in conns:
                for kind, model, stream, port in cases:
                    env = {
                        'BENCH_KEY': 'sk-bench',
                        'BENCH_BODY': BODY.replace('MODEL', model).replace(
                            'STREAM', stream
                        ),
                    }
                    for name, url in (
                        ('direct', f'http://127.0.0.1:{port}'),
                        ('gateway', gateway.url),
                    ):
                        wrk(url, c, 1, env)
                        r = wrk(url, c, args.duration, env)
                        results.setdefault((kind, c, name), []).append(r)
                        print(
                            f'round {rnd + 1} {kind:4} c={c:<3} {name:8} '
                            f'{r["rps"]:>9,.0f} req/s p50 {r["p50"]:.3f} ms '
                            f'p99 {r["p99"]:.3f} ms bad {r["bad"]}',
                            flush=True,
                        )
    finally:
        gateway.stop()
        nginx.stop()
    lines = [
        '| response | conns | direct p50 ms | gateway p50 ms | added p50 ms | '
        'direct p99 ms | gateway p99 ms | added p99 ms | gateway req/s | '
        'non-2xx |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for kind, *_ in cases:
        for c in conns:
            d, g = results[(kind, c, 'direct')], results[(kind, c, 'gateway')]
            added50 = statistics.median(
                y['p50'] - x['p50'] for x, y in zip(d, g, strict=True)
            )
            added99 = statistics.median(
                y['p99'] - x['p99'] for x, y in zip(d, g, strict=True)
            )
            med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
            lines.append(
                f'| {"stream (SSE)" if kind == "sse" else "JSON"} | {c} | '
                f'{med(d, "p50"):.3f} | {med(g, "p50"):.3f} | {added50:.3f} | '
                f'{med(d, "p99"):.3f} | {med(g, "p99"):.3f} | {added99:.3f} | '
                f'{med(g, "rps"):,.0f} | {sum(r["bad"] for r in g)} |'
            )
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/upstream.py'] + sys.argv[1:])
    report = (
        f'### Added latency over a static upstream, {stamp}\n\nMachine: '
        f'{machine()}. Command: `{cmd}` ({args.rounds} interleaved rounds of '
        f'{args.duration} s; "added" is the median over rounds of gateway minus '
        'direct, measured back to back). Gateway: 2 gthread workers, full '
        'pipeline without limits.\n\n' + '\n'.join(lines) + '\n'
    )
    print('\n' + report)
    if args.append:
        with open(args.append, 'a') as f:
            f.write('\n' + report)


if __name__ == '__main__':
    main()
