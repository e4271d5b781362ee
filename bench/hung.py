"""Short requests beside requests held by an upstream that never answers.

A worker whose upstream hangs must keep serving its other clients. A silent
upstream (in a process of its own: it accepts connections, reads requests and never
answers) holds `--held` chat requests sent through the gateway, spread over its
workers by the kernel; meanwhile wrk measures short requests through the static
upstream (nginx, as `bench/upstream.py`) at `--conns` connections. Each round
measures once with nothing held and once with every held request in flight (in an
order that alternates between rounds), then the silent upstream drops what it
holds and each held request must come back as a 502. Reported: requests/s, p50 and
p99 of the short requests, and the ratios held / not held taken within each round.

    python bench/hung.py --rounds 3 --duration 8 --held 400 --append bench/RESULTS.md
"""

import argparse
import asyncio
import datetime
import multiprocessing
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Target  # noqa: E402
from load import free_port  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402
from load import wrk  # noqa: E402
from upstream import Nginx  # noqa: E402
from upstream import gateway_config  # noqa: E402

SILENT = """  - {{name: silent, type: openai_compatible, base_url: "http://127.0.0.1:{port}/v1",
     models: [hang], timeout_s: 300}}
"""
HELD_BODY = b'{"model":"hang","messages":[{"role":"user","content":"Hi"}]}'
HELD_REQUEST = (
    b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
    b'Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n'
    b'Content-Length: %d\r\n\r\n%s' % (len(HELD_BODY), HELD_BODY)
)
SHORT = {
    'BENCH_BODY': '{"model":"static","stream":false,'
    '"messages":[{"role":"user","content":"Hi"}]}'
}


def serve_silent(port, held, drop, dropped):
    """The silent upstream: counts the requests it holds in `held`; when `drop`
    is set, closes every connection and sets `dropped`."""

    async def main():
        loop = asyncio.get_running_loop()
        transports = set()

        class Silent(asyncio.Protocol):
            def connection_made(self, transport):
                transports.add(transport)
                self.transport, self.buf = transport, b''

            def data_received(self, data):
                self.buf += data
                if b'\r\n\r\n' in self.buf and b'"hang"' in self.buf:
                    self.buf = b''
                    with held.get_lock():
                        held.value += 1

            def connection_lost(self, exc):
                transports.discard(self.transport)

        await loop.create_server(Silent, '127.0.0.1', port, backlog=4096)
        while True:
            await loop.run_in_executor(None, drop.wait)
            for transport in list(transports):
                transport.abort()
            transports.clear()
            drop.clear()
            dropped.set()

    asyncio.run(main())


class Silent:
    def __init__(self):
        self.port = free_port()
        self.held = multiprocessing.Value('i', 0)
        self.drop, self.dropped = multiprocessing.Event(), multiprocessing.Event()
        self.proc = multiprocessing.Process(
            target=serve_silent,
            args=(self.port, self.held, self.drop, self.dropped),
            daemon=True,
        )

    def start(self):
        self.proc.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('the silent upstream did not start')

    def release(self):
        self.dropped.clear()
        self.drop.set()
        if not self.dropped.wait(30):
            raise RuntimeError('the silent upstream did not drop its connections')

    def stop(self):
        self.proc.kill()


def hold(gateway, silent, n):
    """`n` requests through the gateway, all held by the silent upstream: their
    sockets, once it counts every one."""
    silent.held.value = 0
    socks = []
    for _ in range(n):
        s = socket.create_connection(('127.0.0.1', gateway.port), timeout=30)
        s.sendall(HELD_REQUEST)
        socks.append(s)
    deadline = time.monotonic() + 60
    while silent.held.value < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f'only {silent.held.value} of {n} requests were held')
        time.sleep(0.05)
    return socks


def answers(socks):
    """The status of each held request's answer, once the upstream dropped it."""
    codes = {}
    for s in socks:
        try:
            head = s.recv(64)
            code = head.split(b' ', 2)[1].decode() if head else 'closed'
        except (OSError, IndexError):
            code = 'error'
        finally:
            s.close()
        codes[code] = codes.get(code, 0) + 1
    return codes


def run(args, gateway, silent, results, codes, round_no):
    order = ('free', 'held') if round_no % 2 == 0 else ('held', 'free')
    wrk(gateway.url, args.conns, 1, SHORT)  # warm-up
    for phase in order:
        socks = hold(gateway, silent, args.held) if phase == 'held' else []
        cpu0 = gateway.cpu_seconds()
        result = wrk(gateway.url, args.conns, args.duration, SHORT)
        result['cpu_ms'] = (
            (gateway.cpu_seconds() - cpu0) * 1000 / max(1, result['requests'])
        )
        results[(gateway.worker_class, phase)].append(result)
        if socks:
            silent.release()
            for code, n in answers(socks).items():
                key = (gateway.worker_class, code)
                codes[key] = codes.get(key, 0) + n


def report(args, results, codes, classes, cmd):
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    lines = [
        f'### Short requests beside {args.held} held by a silent upstream, {stamp}',
        '',
        f'Machine: {machine()}. Command: `{cmd}`. Gateway: 2 workers of each class, '
        'the full pipeline (`bench/upstream/gateway.yaml` plus a provider that '
        f'never answers); wrk at {args.conns} connections, {args.duration} s a '
        f'phase, {args.rounds} rounds; medians.',
        '',
        '| worker class | held | req/s | p50 ms | p99 ms | CPU ms/req | non-2xx |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for wc in classes:
        for phase in ('free', 'held'):
            runs = results[(wc, phase)]
            med = {
                k: statistics.median(r[k] for r in runs)
                for k in ('rps', 'p50', 'p99', 'cpu_ms')
            }
            lines.append(
                f'| {wc} | {args.held if phase == "held" else 0} | '
                f'{med["rps"]:,.0f} | {med["p50"]:.2f} | {med["p99"]:.2f} | '
                f'{med["cpu_ms"]:.3f} | {sum(r["bad"] for r in runs)} |'
            )
    lines += [
        '',
        '| worker class | held / not held, same round | per round | median |',
        '|---|---|---|---:|',
    ]
    for wc in classes:
        for key, name in (('rps', 'req/s'), ('p50', 'p50'), ('p99', 'p99')):
            ratios = [
                h[key] / f[key]
                for h, f in zip(
                    results[(wc, 'held')], results[(wc, 'free')], strict=True
                )
            ]
            shown = ', '.join(f'{r:.2f}' for r in ratios)
            lines.append(
                f'| {wc} | {name} | {shown} | {statistics.median(ratios):.2f} |'
            )
    held = '; '.join(
        f'{wc}: '
        + ', '.join(f'{n} x {code}' for (c, code), n in codes.items() if c == wc)
        for wc in classes
    )
    lines += ['', f'The held requests, once the upstream dropped them: {held}.', '']
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=8)
    parser.add_argument('--held', type=int, default=400)
    parser.add_argument('--conns', type=int, default=16)
    parser.add_argument('--worker-classes', default='gevent,gthread')
    parser.add_argument('--append', help='append the dated table to this markdown file')
    args = parser.parse_args()
    if not shutil.which('wrk'):
        sys.exit('wrk is not installed (apt-get install wrk)')
    workdir = tempfile.mkdtemp(prefix='aegisflow-hung-')
    nginx = Nginx(workdir)
    silent = Silent()
    config = gateway_config(workdir, nginx.port, nginx.sse_port)
    text = config.read_text()
    text = text.replace('routes:\n', SILENT.format(port=silent.port) + 'routes:\n', 1)
    text = text.replace(
        'routes:\n', 'routes:\n  - {match: "hang", targets: [silent]}\n'
    )
    text += 'retry: {max_attempts: 1}\ncircuit_breaker: {enabled: false}\n'
    config.write_text(text)
    classes = args.worker_classes.split(',')
    results = {(wc, p): [] for wc in classes for p in ('free', 'held')}
    codes = {}
    nginx.start()
    silent.start()
    try:
        for round_no in range(args.rounds):
            for wc in classes:
                gateway = Target(
                    f'aegisflow-{wc}', 'aegisflow', wc, workdir, config=config
                )
                gateway.start()
                try:
                    run(args, gateway, silent, results, codes, round_no)
                finally:
                    gateway.stop()
    finally:
        silent.stop()
        nginx.stop()
    cmd = ' '.join(['python bench/hung.py'] + sys.argv[1:])
    publish(report(args, results, codes, classes, cmd), args.append)


if __name__ == '__main__':
    main()
