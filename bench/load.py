"""Whole-gateway load benchmark with wrk, interleaved over rounds.

Each target is a server this script starts in its own process group on a loopback
port: the bare Falcon app (the limit of the stack) and AegisFlow on the mock
provider, each under the worker classes asked for. All targets stay up for the whole
run and are measured in turn, round after round, so a noisy neighbour hits every
target alike; the table reports medians over the rounds and, for each round, the
ratio of AegisFlow to the bare app on the same worker class.

    python bench/load.py --rounds 3 --duration 10 --conns 1,64 --append bench/RESULTS.md

Figures per target and connection count: requests/s, p50/p90/p99 latency, server
CPU milliseconds per request (user+system time of every process in the target's
group, over the measured window), and the group's RSS at the end.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from aegisflow.config.model import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
TICK = os.sysconf('SC_CLK_TCK')
PAGE = os.sysconf('SC_PAGE_SIZE')
# the apps that stand for the limit of the stack (no gateway)
APPS = {
    'falcon': 'bench.bare_app:application',
    'passthrough': 'bench.passthrough_app:application',
}
THREADS = '{threads}'
WORKER_ARGS = {
    # NOTE: the target's thread count (default: the gateway's)
    'gthread': ['-k', 'gthread', '--threads', THREADS],
    'meinheld': ['-k', 'egg:meinheld#gunicorn_worker'],
    # NOTE: Gunicorn's own gevent worker for the bare apps (the gateway runs its
    # project class, workers.gevent), as many connections as the gateway's default
    'gevent': ['-k', 'gevent', '--worker-connections', '10000'],
}


def stat_fields(pid):
    """The fields of ``/proc/<pid>/stat`` after the command's name (the process
    group is [2], user and system CPU ticks [11] and [12], RSS pages [21])."""
    return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()


def process_group(pgid):
    """[(pid, CPU ticks, RSS pages)] of every process in process group `pgid`."""
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                fields = stat_fields(entry)
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(
                    (int(entry), int(fields[11]) + int(fields[12]), int(fields[21]))
                )
    return pids


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Target:
    def __init__(
        self,
        name,
        kind,
        worker_class,
        workdir,
        tree=ROOT,
        config=None,
        env=None,
        threads=None,
    ):
        self.name, self.kind, self.worker_class = name, kind, worker_class
        self.threads = threads or ServerConfig().threads
        self.env = env or {}
        self.tree = Path(tree)
        self.config = Path(config) if config else HERE / 'gateway.yaml'
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def command(self):
        py = [sys.executable, '-m', 'gunicorn', '--bind', f'127.0.0.1:{self.port}']
        if self.kind in APPS:
            # NOTE: an explicit empty config, or Gunicorn reads ./gunicorn.conf.py.
            empty = Path(self.workdir) / 'empty_conf.py'
            empty.write_text('')
            return py + [
                '-c',
                str(empty),
                '--workers',
                '2',
                '--no-control-socket',
                '--log-level',
                'warning',
                *[
                    str(self.threads) if a == THREADS else a
                    for a in WORKER_ARGS[self.worker_class]
                ],
                APPS[self.kind],
            ]
        return py + ['-c', str(self.tree / 'gunicorn.conf.py')]

    def start(self):
        env = dict(os.environ, **self.env)
        if self.kind == 'aegisflow':
            text = self.config.read_text().replace(
                'server: {workers: 2,',
                f'server: {{workers: 2, worker_class: {self.worker_class}, '
                f'threads: {self.threads},',
            )
            cfg = Path(self.workdir) / f'{self.name}.yaml'
            cfg.write_text(text)
            env['AEGISFLOW_CONFIG'] = str(cfg)
        log = open(Path(self.workdir) / f'{self.name}.log', 'wb')
        env['PYTHONPATH'] = str(self.tree)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + '/healthz', timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f'{self.name} did not start')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def group(self):
        return process_group(self.proc.pid)

    def pids(self):
        return [pid for pid, _, _ in self.group()]

    def cpu_seconds(self):
        return sum(t for _, t, _ in self.group()) / TICK

    def rss_mb(self):
        return sum(r for _, _, r in self.group()) * PAGE / 1e6


_UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1e3}


def _ms(text):
    m = re.match(r'([\d.]+)(us|ms|s)', text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, conns, duration, env, path='/v1/chat/completions'):
    threads = 1 if conns == 1 else 2
    out = subprocess.run(
        [
            'wrk',
            '-t',
            str(threads),
            '-c',
            str(conns),
            '-d',
            f'{duration}s',
            '--latency',
            '-s',
            str(HERE / 'post.lua'),
            url + path,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=duration + 60,
    )
    text = out.stdout
    pct = dict(re.findall(r'^\s+(50|90|99)%\s+(\S+)', text, re.M))
    bad = re.search(r'BENCH non2xx=(\d+) errors=(\d+)', text)
    return {
        'rps': float(re.search(r'Requests/sec:\s+([\d.]+)', text).group(1)),
        'requests': int(re.search(r'(\d+) requests in', text).group(1)),
        'p50': _ms(pct['50']),
        'p90': _ms(pct['90']),
        'p99': _ms(pct['99']),
        'bad': int(bad.group(1)) + int(bad.group(2)) if bad else -1,
    }


def measure(target, conns, duration, env, path='/v1/chat/completions'):
    wrk(target.url, conns, 1, env, path)  # warm-up: connections, caches, imports
    cpu0 = target.cpu_seconds()
    result = wrk(target.url, conns, duration, env, path)
    result['cpu_ms'] = (target.cpu_seconds() - cpu0) * 1000 / max(1, result['requests'])
    result['rss'] = target.rss_mb()
    return result


def machine():
    cpu = 'unknown cpu'
    for line in Path('/proc/cpuinfo').read_text().splitlines():
        if line.startswith('model name'):
            cpu = line.split(':', 1)[1].strip()
            break
    return (
        f'{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, '
        f'Linux {platform.release()}'
    )


def table(results, rounds, conns_list, targets):
    lines = [
        '| target | conns | req/s | p50 ms | p90 ms | p99 ms | CPU ms/req | RSS MB |'
        ' non-2xx |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for t in targets:
        for c in conns_list:
            runs = results[(t.name, c)]
            med = {
                k: statistics.median(r[k] for r in runs)
                for k in ('rps', 'p50', 'p90', 'p99', 'cpu_ms', 'rss')
            }
            bad = sum(r['bad'] for r in runs)
            lines.append(
                f'| {t.name} | {c} | {med["rps"]:,.0f} | {med["p50"]:.2f} | '
                f'{med["p90"]:.2f} | {med["p99"]:.2f} | {med["cpu_ms"]:.3f} | '
                f'{med["rss"]:.0f} | {bad} |'
            )
    lines += [
        '',
        '| ratio (same round, same worker class) | conns | per-round | median |',
        '|---|---:|---|---:|',
    ]
    pairs = []
    for wc in sorted({t.worker_class for t in targets}):
        pairs += [
            (f'aegisflow-{wc}', t.name)
            for t in targets
            if t.worker_class == wc and t.name != f'aegisflow-{wc}'
        ]
    for a, b in pairs:
        if (a, conns_list[0]) not in results or (b, conns_list[0]) not in results:
            continue
        for c in conns_list:
            ratios = [
                x['rps'] / y['rps']
                for x, y in zip(results[(a, c)], results[(b, c)], strict=True)
            ]
            shown = ', '.join(f'{r:.2f}' for r in ratios)
            lines.append(
                f'| {a} / {b} req/s | {c} | {shown} | {statistics.median(ratios):.2f} |'
            )
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--conns', default='1,64')
    parser.add_argument('--worker-classes', default='gthread,meinheld')
    parser.add_argument('--append', help='append the dated table to this markdown file')
    parser.add_argument(
        '--baseline-tree',
        help='also run the gateway from this checkout '
        '(e.g. a git worktree of an older commit), as aegisflow-NAME',
    )
    parser.add_argument('--baseline-name', default='baseline')
    parser.add_argument(
        '--extra-config',
        action='append',
        default=[],
        metavar='NAME=PATH',
        help='also run the gateway with this config, as aegisflow-NAME (repeatable)',
    )
    parser.add_argument('--title', default='Gateway vs bare Falcon')
    parser.add_argument(
        '--also-threads',
        type=int,
        help='also run both under gthread with this many threads per worker '
        "(the others: the gateway's default)",
    )
    args = parser.parse_args()
    if not shutil.which('wrk'):
        sys.exit('wrk is not installed (apt-get install wrk)')
    conns_list = [int(c) for c in args.conns.split(',')]
    workdir = tempfile.mkdtemp(prefix='aegisflow-bench-')
    targets = []
    for wc in args.worker_classes.split(','):
        targets += [
            Target(f'falcon-{wc}', 'falcon', wc, workdir),
            Target(f'aegisflow-{wc}', 'aegisflow', wc, workdir),
        ]
        if args.also_threads and wc == 'gthread':
            n = args.also_threads
            targets += [
                Target(f'falcon-{wc}-{n}', 'falcon', wc, workdir, threads=n),
                Target(f'aegisflow-{wc}-{n}', 'aegisflow', wc, workdir, threads=n),
            ]
        for extra in args.extra_config:
            name, _, path = extra.partition('=')
            targets.append(
                Target(f'aegisflow-{name}-{wc}', 'aegisflow', wc, workdir, config=path)
            )
        if args.baseline_tree:
            targets.append(
                Target(
                    f'aegisflow-{args.baseline_name}-{wc}',
                    'aegisflow',
                    wc,
                    workdir,
                    tree=args.baseline_tree,
                )
            )
    env = {'BENCH_KEY': 'sk-bench'}
    results = {}
    try:
        for t in targets:
            t.start()
        for rnd in range(args.rounds):
            for c in conns_list:
                for t in targets:
                    r = measure(t, c, args.duration, env)
                    results.setdefault((t.name, c), []).append(r)
                    print(
                        f'round {rnd + 1} {t.name:20} c={c:<3} {r["rps"]:>9,.0f} req/s '
                        f'p50 {r["p50"]:.2f} ms cpu {r["cpu_ms"]:.3f} ms/req',
                        flush=True,
                    )
    finally:
        for t in targets:
            t.stop()
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/load.py'] + sys.argv[1:])
    report = (
        f'### {args.title}, {stamp}\n\nMachine: {machine()}. Command: '
        f'`{cmd}` ({args.rounds} interleaved rounds of {args.duration} s; medians).\n\n'
        + table(results, args.rounds, conns_list, targets)
        + '\n'
    )
    publish(report, args.append)


def publish(report, append=None):
    """Print a dated report and, with `append`, add it to that file."""
    print('\n' + report)
    if append:
        with open(append, 'a') as f:
            f.write('\n' + report)


if __name__ == '__main__':
    main()
