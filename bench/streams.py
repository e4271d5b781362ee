"""Many slow streams in flight at once: how many the gateway holds, and at what memory.

A fake upstream, in a process of its own, answers every streaming chat request
with `--chunks` SSE chunks, one every `--interval` seconds (an LLM-like stream,
seconds long), then usage and [DONE], chunked on a connection kept alive; a
short request gets its answer at once. A client opens `--streams` streaming
requests through the gateway (`--rate` a second, or all at once), reads each to
its end, and sends `--short-rate` short requests a second beside them. Reported:
how many completed correctly (every chunk, then [DONE]), the most streams in
flight at the same moment (first byte received, end not yet), the time for all to
finish, the first byte's p50 and p99 (timed from when the request was sent), the
short requests' latency, the gateway's CPU per relayed chunk (all its work over
the run, stream starts included, over the chunks), and its RSS (process group).

    python bench/streams.py --streams 1000 --append bench/RESULTS.md

`--tls` puts the fake upstream behind TLS (a certificate made for the run, which
the gateway trusts through ``SSL_CERT_FILE``), as every hosted provider is;
`--tree` runs the gateway from another checkout, to compare two versions.
"""

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import ssl
import sys
import tempfile
import time
from asyncio import FIRST_COMPLETED
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from load import ROOT  # noqa: E402
from load import TICK  # noqa: E402
from load import Target  # noqa: E402
from load import free_port  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402
from load import stat_fields  # noqa: E402

from aegisflow.config.model import ServerConfig  # noqa: E402
from tests.support.tls import self_signed  # noqa: E402

CONFIG = """
server: {{workers: 2, timeout_s: 120}}
providers:
  - {{name: slow, type: openai_compatible, base_url: "{scheme}://127.0.0.1:{port}/v1",
     models: [slow]}}
routes: [{{match: "*", targets: [slow]}}]
tenants: [{{id: bench, keys: [{{key: sk-bench, name: load}}]}}]
telemetry: {{log_level: warning}}
"""


def _chunk(i, chunks):
    """The SSE bytes of chunk `i` of `chunks` (``chunks``: the usage and [DONE])."""
    if i < chunks:
        body = {
            'id': 'chatcmpl-slow',
            'object': 'chat.completion.chunk',
            'created': 1700000000,
            'model': 'slow',
            'choices': [
                {'index': 0, 'delta': {'content': f'w{i} '}, 'finish_reason': None}
            ],
        }
        return b'data: ' + json.dumps(body).encode() + b'\n\n'
    done = {
        'id': 'chatcmpl-slow',
        'object': 'chat.completion.chunk',
        'created': 1700000000,
        'model': 'slow',
        'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}],
        'usage': {
            'prompt_tokens': 5,
            'completion_tokens': chunks,
            'total_tokens': 5 + chunks,
        },
    }
    return b'data: ' + json.dumps(done).encode() + b'\n\ndata: [DONE]\n\n'


SHORT_ANSWER = json.dumps(
    {
        'id': 'chatcmpl-short',
        'object': 'chat.completion',
        'created': 1700000000,
        'model': 'slow',
        'choices': [
            {
                'index': 0,
                'message': {'role': 'assistant', 'content': 'ok'},
                'finish_reason': 'stop',
            }
        ],
        'usage': {'prompt_tokens': 5, 'completion_tokens': 1, 'total_tokens': 6},
    }
).encode()


class Upstream(asyncio.Protocol):
    """One connection to the fake upstream, kept alive as an LLM API keeps it: a
    streaming request gets its chunks `interval` apart, chunked (each written as
    it falls due: one send per chunk, as such an API does); a short one its answer
    at once."""

    def __init__(self, pieces, interval):
        self.pieces = [b'%x\r\n%s\r\n' % (len(p), p) for p in pieces]
        self.pieces[-1] += b'0\r\n\r\n'
        self.interval = interval
        self.buf = b''
        self.next = 0
        self.transport = None
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        head, sep, body = self.buf.partition(b'\r\n\r\n')
        if not sep:
            return
        length = 0
        for line in head.split(b'\r\n'):
            if line[:15].lower() == b'content-length:':
                length = int(line[15:])
        if len(body) < length:
            return
        self.buf = body[length:]
        if b'"stream":true' in body[:length].replace(b' ', b''):
            self.transport.write(
                b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n'
                b'Transfer-Encoding: chunked\r\n\r\n'
            )
            self.next = 0
            self.send()
        else:
            self.transport.write(
                b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                + f'Content-Length: {len(SHORT_ANSWER)}\r\n\r\n'.encode()
                + SHORT_ANSWER
            )

    def send(self):
        self.timer = None
        if self.transport.is_closing():
            return
        self.transport.write(self.pieces[self.next])
        self.next += 1
        if self.next < len(self.pieces):
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.interval, self.send)

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()


def serve_upstream(port, chunks, interval, ready, tls=None):
    """The fake upstream, in a process of its own: the client's work and its own
    must not share one event loop (at 100,000 chunks a second either alone fills a
    core, and the gateway would be measured behind them)."""
    pieces = [_chunk(i, chunks) for i in range(chunks + 1)]

    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[1], tls[0])

    async def main():
        loop = asyncio.get_running_loop()
        await loop.create_server(
            lambda: Upstream(pieces, interval),
            '127.0.0.1',
            port,
            backlog=4096,
            ssl=context,
        )
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class Stats:
    def __init__(self):
        self.in_flight = 0
        self.peak = 0
        self.ok = 0
        self.bad = 0
        self.reasons = {}
        self.ttfb = []
        self.opened = []  # when each stream in `ttfb` was sent (monotonic)
        self.short = []  # latency of each short request sent beside the streams
        self.cpu_s = 0.0  # the gateway's (master and workers) over the run
        self.client_cpu_s = 0.0  # this process's (the load's client)
        self.upstream_cpu_s = 0.0  # the fake upstream's

    def fail(self, reason):
        self.bad += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _request(body):
    return (
        b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
        b'Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n'
        b'Connection: close\r\n'
        + f'Content-Length: {len(body)}\r\n\r\n'.encode()
        + body
    )


MESSAGES = [{'role': 'user', 'content': 'hi'}]
STREAM_REQUEST = _request(
    json.dumps({'model': 'slow', 'stream': True, 'messages': MESSAGES}).encode()
)
SHORT_REQUEST = _request(json.dumps({'model': 'slow', 'messages': MESSAGES}).encode())


class Client(asyncio.Protocol):
    """One request through the gateway, read to its end; `done` is set when the
    connection closes."""

    def __init__(self, request, t0):
        self.request, self.t0 = request, t0
        self.first = None
        self.pieces = []
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.done = loop.create_future()

    def connection_made(self, transport):
        transport.write(self.request)

    def data_received(self, data):
        if self.first is None:
            self.first = time.monotonic()
            self.started.set_result(None)
        self.pieces.append(data)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


async def stream(port, stats, chunks):
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_connection(
            lambda: Client(STREAM_REQUEST, t0), '127.0.0.1', port
        )
    except OSError as exc:
        stats.fail(type(exc).__name__)
        return
    # in flight: from its first byte to its end
    await asyncio.wait((proto.started, proto.done), return_when=FIRST_COMPLETED)
    if proto.first is None:
        exc = proto.done.result()
        why = f' ({type(exc).__name__})' if exc is not None else ''
        stats.fail('closed before any byte' + why)
        return
    stats.ttfb.append(proto.first - t0)
    stats.opened.append(t0)
    stats.in_flight += 1
    stats.peak = max(stats.peak, stats.in_flight)
    exc = await proto.done
    stats.in_flight -= 1
    transport.close()
    text = b''.join(proto.pieces).decode('utf-8', 'replace')
    words = text.count('"content": "w') + text.count('"content":"w')
    if text.startswith('HTTP/1.1 200') and words == chunks and 'data: [DONE]' in text:
        stats.ok += 1
    elif exc is not None:
        stats.fail(type(exc).__name__)
    else:
        stats.fail(f'{text[:12]!r}... {words} of {chunks} chunks')


async def short(port, stats):
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_connection(
            lambda: Client(SHORT_REQUEST, t0), '127.0.0.1', port
        )
        await proto.done
    except OSError as exc:
        stats.fail(f'short: {type(exc).__name__}')
        return
    transport.close()
    answer = b''.join(proto.pieces)
    if answer.startswith(b'HTTP/1.1 200'):
        stats.short.append(time.monotonic() - t0)
    elif not answer and proto.done.result() is not None:
        stats.fail(f'short: {type(proto.done.result()).__name__}')
    else:
        stats.fail('short: ' + repr(answer[:12]))


async def run(args, gateway):
    stats = Stats()
    peak_rss = 0
    loop = asyncio.get_running_loop()

    async def sample():
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, gateway.rss_mb())
            await asyncio.sleep(0.25)

    async def opened(i, start, rate, fn, *fn_args):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()) if rate else 0)
        await fn(*fn_args)

    sampler = asyncio.create_task(sample())
    t0 = loop.time()
    streams = [
        opened(i, t0, args.rate, stream, gateway.port, stats, args.chunks)
        for i in range(args.streams)
    ]
    # short requests beside the streams, for as long as the streams are opened
    # and one stream's length after
    span = (args.streams / args.rate if args.rate else 0) + args.chunks * args.interval
    shorts = [
        opened(i, t0, args.short_rate, short, gateway.port, stats)
        for i in range(int(span * args.short_rate))
    ]
    await asyncio.gather(*streams, *shorts)
    elapsed = loop.time() - t0
    sampler.cancel()
    return stats, elapsed, peak_rss


def _cpu_seconds(pid):
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


async def main_async(args, port, workdir, tls, upstream_pid):
    config = Path(workdir) / 'gateway.yaml'
    config.write_text(CONFIG.format(port=port, scheme='https' if tls else 'http'))
    gateway = Target(
        'aegisflow-streams',
        'aegisflow',
        args.worker_class,
        workdir,
        config=config,
        threads=args.threads,
        tree=args.tree or ROOT,
        env={'SSL_CERT_FILE': str(tls[1])} if tls else None,
    )
    await asyncio.to_thread(gateway.start)
    try:
        idle_rss = gateway.rss_mb()
        cpu0 = gateway.cpu_seconds()
        client0, upstream0 = time.process_time(), _cpu_seconds(upstream_pid)
        stats, elapsed, peak_rss = await run(args, gateway)
        stats.cpu_s = gateway.cpu_seconds() - cpu0
        stats.client_cpu_s = time.process_time() - client0
        stats.upstream_cpu_s = _cpu_seconds(upstream_pid) - upstream0
    finally:
        await asyncio.to_thread(gateway.stop)
    return stats, elapsed, idle_rss, peak_rss


def _quantile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--streams', type=int, default=1000)
    parser.add_argument(
        '--threads', type=int, help='threads per worker (default: the config default)'
    )
    parser.add_argument(
        '--worker-class', default='gevent', choices=('gevent', 'gthread')
    )
    parser.add_argument(
        '--rate',
        type=float,
        default=0,
        help='new streams opened per second (default: all at once)',
    )
    parser.add_argument('--chunks', type=int, default=20)
    parser.add_argument('--interval', type=float, default=0.1)
    parser.add_argument('--append')
    parser.add_argument(
        '--short-rate',
        type=float,
        default=20,
        help='short (non-streaming) requests a second sent beside the streams',
    )
    parser.add_argument(
        '--tls', action='store_true', help='the fake upstream behind TLS'
    )
    parser.add_argument('--tree', help='run the gateway from this checkout')
    args = parser.parse_args()
    port = free_port()
    workdir = tempfile.mkdtemp(prefix='aegisflow-streams-')
    tls = self_signed(workdir, 'upstream') if args.tls else None
    ready = multiprocessing.Event()
    upstream = multiprocessing.Process(
        target=serve_upstream,
        args=(port, args.chunks, args.interval, ready, tls),
        daemon=True,
    )
    upstream.start()
    if not ready.wait(30):
        raise SystemExit('the fake upstream did not start')
    try:
        stats, elapsed, idle_rss, peak_rss = asyncio.run(
            main_async(args, port, workdir, tls, upstream.pid)
        )
    finally:
        upstream.kill()
    threads = args.threads or ServerConfig().threads
    workers = (
        f'gthread workers of {threads} threads'
        if args.worker_class == 'gthread'
        else 'gevent workers'
    )
    one = args.chunks * args.interval
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/streams.py'] + sys.argv[1:])
    p50, p99 = _quantile(stats.ttfb, 0.5), _quantile(stats.ttfb, 0.99)
    short50, short99 = _quantile(stats.short, 0.5), _quantile(stats.short, 0.99)
    # every cost of the run (stream starts, short requests) over the chunks relayed
    per_chunk = stats.cpu_s * 1e6 / max(1, args.streams * (args.chunks + 1))
    report = (
        f'### {args.streams} slow streams at once, {stamp}\n\nMachine: {machine()}. '
        f'Command: `{cmd}`. Each stream: {args.chunks} chunks {args.interval} s apart '
        f'({one:.1f} s), opened '
        + (f'{args.rate:g} per second' if args.rate else 'all at once')
        + f'; {args.short_rate:g} short requests a second beside them. The fake '
        'upstream runs in a process of its own'
        + (', behind TLS. ' if args.tls else '. ')
        + f'Gateway: 2 {workers}.\n\n'
        '| streams | completed correctly | failed | most in flight at once | '
        'all done in s | first byte p50 s | first byte p99 s | short requests | '
        'short p50 ms | short p99 ms | gateway CPU us per chunk | RSS idle MB | '
        'RSS peak MB |\n'
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
        f'| {args.streams} | {stats.ok} | {stats.bad} | {stats.peak} | {elapsed:.1f} | '
        f'{p50:.3f} | {p99:.3f} | {len(stats.short)} | {short50 * 1e3:.1f} | '
        f'{short99 * 1e3:.1f} | {per_chunk:.0f} | {idle_rss:.0f} | {peak_rss:.0f} |\n'
    )
    if stats.opened:
        first = min(stats.opened)
        by_second = {}
        for opened, ttfb in zip(stats.opened, stats.ttfb, strict=True):
            by_second.setdefault(int(opened - first), []).append(ttfb)
        report += '\nFirst byte p50 in s, by the second the stream was opened: ' + (
            ', '.join(
                f'{_quantile(v, 0.5):.3f}' for _, v in sorted(by_second.items())[:30]
            )
            + '.\n'
        )
    report += (
        f'\nCPU over the run ({elapsed:.1f} s), in cores used on average: the '
        f"gateway {stats.cpu_s / elapsed:.2f}, the load's client "
        f'{stats.client_cpu_s / elapsed:.2f}, the fake upstream '
        f'{stats.upstream_cpu_s / elapsed:.2f} (the machine has {os.cpu_count()}).\n'
    )
    if stats.reasons:
        report += (
            '\nFailures: '
            + '; '.join(f'{n} x {why}' for why, n in sorted(stats.reasons.items()))
            + '\n'
        )
    publish(report, args.append)


if __name__ == '__main__':
    main()
