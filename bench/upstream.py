"""The gateway through a static upstream, against the limit of its stack.

A static upstream (nginx from Debian, `bench/upstream/nginx.conf`) answers a fixed
chat.completion and a fixed SSE stream. wrk measures, in interleaved rounds, the
upstream called directly, through a minimal pass-through proxy on the same stack
(Falcon and urllib3 under the same Gunicorn worker class: `bench/passthrough_app.py`)
and through AegisFlow with its full pipeline (`bench/upstream/gateway.yaml`: auth,
validation, limits, the default policies, routing, usage, metrics), at 1 and 64
connections, streaming and not. The tables give p50/p99, requests/s, CPU per
request (the whole Gunicorn process group) and memory, and the ratios taken within
each round.

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
from load import measure  # noqa: E402
from load import publish  # noqa: E402
from load import wrk  # noqa: E402

HERE = Path(__file__).resolve().parent / 'upstream'
BODY = '{"model":"MODEL","stream":STREAM,"messages":[{"role":"user","content":"Hi"}]}'


class Nginx:
    def __init__(self, workdir, port=None, sse_port=None):
        self.dir = Path(workdir) / 'nginx'
        (self.dir / 'tmp').mkdir(parents=True, exist_ok=True)
        self.port, self.sse_port = port or free_port(), sse_port or free_port()
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


def gateway_config(workdir, port, sse_port):
    """`bench/upstream/gateway.yaml` with the upstream's ports, written to `workdir`."""
    path = Path(workdir) / 'gateway.yaml'
    path.write_text(
        (HERE / 'gateway.yaml')
        .read_text()
        .replace('UPSTREAM_SSE_PORT', str(sse_port))
        .replace('UPSTREAM_PORT', str(port))
    )
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', default='1,64')
    parser.add_argument('--append')
    parser.add_argument(
        '--worker-class', default='gthread', choices=('gthread', 'meinheld')
    )
    args = parser.parse_args()
    conns = [int(c) for c in args.conns.split(',')]
    workdir = tempfile.mkdtemp(prefix='aegisflow-upstream-')
    nginx = Nginx(workdir)
    config = gateway_config(workdir, nginx.port, nginx.sse_port)
    gateway = Target(
        f'aegisflow-{args.worker_class}',
        'aegisflow',
        args.worker_class,
        workdir,
        config=config,
    )
    passthrough = Target(
        f'passthrough-{args.worker_class}',
        'passthrough',
        args.worker_class,
        workdir,
        env={
            'PASSTHROUGH_JSON': f'http://127.0.0.1:{nginx.port}/v1',
            'PASSTHROUGH_SSE': f'http://127.0.0.1:{nginx.sse_port}/v1',
        },
    )
    cases = [
        ('json', 'static', 'false', nginx.port),
        ('sse', 'static-sse', 'true', nginx.sse_port),
    ]
    results = {}
    try:
        nginx.start()
        gateway.start()
        passthrough.start()
        for rnd in range(args.rounds):
            for c in conns:
                for kind, model, stream, port in cases:
                    env = {
                        'BENCH_KEY': 'sk-bench',
                        'BENCH_BODY': BODY.replace('MODEL', model).replace(
                            'STREAM', stream
                        ),
                    }
                    for name, target in (
                        ('direct', f'http://127.0.0.1:{port}'),
                        ('passthrough', passthrough),
                        ('gateway', gateway),
                    ):
                        if isinstance(target, str):
                            wrk(target, c, 1, env)
                            r = wrk(target, c, args.duration, env)
                        else:
                            r = measure(target, c, args.duration, env)
                        results.setdefault((kind, c, name), []).append(r)
                        print(
                            f'round {rnd + 1} {kind:4} c={c:<3} {name:8} '
                            f'{r["rps"]:>9,.0f} req/s p50 {r["p50"]:.3f} ms '
                            f'p99 {r["p99"]:.3f} ms bad {r["bad"]}',
                            flush=True,
                        )
    finally:
        gateway.stop()
        passthrough.stop()
        nginx.stop()
    lines = [
        '| response | conns | direct p50 ms | pass-through p50 ms | gateway p50 ms | '
        'added p50 ms (vs direct) | gateway p99 ms | pass-through req/s | '
        'gateway req/s | ratio | gateway CPU ms/req | pass-through CPU ms/req | '
        'gateway RSS MB | non-2xx |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    med = statistics.median
    for kind, *_ in cases:
        for c in conns:
            d = results[(kind, c, 'direct')]
            p = results[(kind, c, 'passthrough')]
            g = results[(kind, c, 'gateway')]
            added = med(y['p50'] - x['p50'] for x, y in zip(d, g, strict=True))
            ratio = med(y['rps'] / x['rps'] for x, y in zip(p, g, strict=True))
            lines.append(
                f'| {"stream (SSE)" if kind == "sse" else "JSON"} | {c} | '
                f'{med(r["p50"] for r in d):.3f} | {med(r["p50"] for r in p):.3f} | '
                f'{med(r["p50"] for r in g):.3f} | {added:.3f} | '
                f'{med(r["p99"] for r in g):.3f} | '
                f'{med(r["rps"] for r in p):,.0f} | {med(r["rps"] for r in g):,.0f} | '
                f'{ratio:.2f} | {med(r["cpu_ms"] for r in g):.3f} | '
                f'{med(r["cpu_ms"] for r in p):.3f} | {med(r["rss"] for r in g):.0f} | '
                f'{sum(r["bad"] for r in g)} |'
            )
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/upstream.py'] + sys.argv[1:])
    report = (
        f'### Through a static upstream: gateway vs pass-through proxy, {stamp}\n\n'
        f'Machine: {machine()}. Command: `{cmd}` ({args.rounds} interleaved rounds '
        f'of {args.duration} s; "added" and "ratio" (gateway req/s over '
        'pass-through req/s) are medians over rounds of figures measured back to '
        f'back). Both under Gunicorn, 2 {args.worker_class} workers; the gateway '
        'runs its full pipeline (limits, default policies, usage, metrics).\n\n'
        + '\n'.join(lines)
        + '\n'
    )
    publish(report, args.append)


if __name__ == '__main__':
    main()
