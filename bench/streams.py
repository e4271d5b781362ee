"""Many slow streams in flight at once: how many the gateway holds, and at what memory.

An asyncio upstream answers every streaming chat request with `--chunks` SSE chunks,
one every `--interval` seconds (an LLM-like stream, seconds long), then usage and
[DONE]. An asyncio client opens `--streams` streaming requests at once through the
gateway and reads each to its end. Reported: how many completed correctly (every
chunk, then [DONE]), the most streams in flight at the same moment (first byte
received, end not yet), the time for all to finish, and the gateway's RSS (process
group) at its peak.

    python bench/streams.py --streams 1000 --append bench/RESULTS.md
"""

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Target  # noqa: E402
from load import free_port  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402

from aegisflow.config.model import ServerConfig  # noqa: E402

CONFIG = """
server: {{workers: 2, timeout_s: 120}}
providers:
  - {{name: slow, type: openai_compatible, base_url: "http://127.0.0.1:{port}/v1",
     models: [slow]}}
routes: [{{match: "*", targets: [slow]}}]
tenants: [{{id: bench, keys: [{{key: sk-bench, name: load}}]}}]
telemetry: {{log_level: warning}}
"""


async def upstream_handler(reader, writer, chunks, interval):
    try:
        head = await reader.readuntil(b'\r\n\r\n')
        length = 0
        for line in head.split(b'\r\n'):
            if line.lower().startswith(b'content-length:'):
                length = int(line.split(b':', 1)[1])
        await reader.readexactly(length)
        writer.write(
            b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n'
            b'Connection: close\r\n\r\n'
        )
        for i in range(chunks):
            chunk = {
                'id': 'chatcmpl-slow',
                'object': 'chat.completion.chunk',
                'created': 1700000000,
                'model': 'slow',
                'choices': [
                    {'index': 0, 'delta': {'content': f'w{i} '}, 'finish_reason': None}
                ],
            }
            writer.write(b'data: ' + json.dumps(chunk).encode() + b'\n\n')
            await writer.drain()
            await asyncio.sleep(interval)
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
        writer.write(b'data: ' + json.dumps(done).encode() + b'\n\ndata: [DONE]\n\n')
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class Stats:
    def __init__(self):
        self.in_flight = 0
        self.peak = 0
        self.ok = 0
        self.bad = 0
        self.reasons = {}
        self.ttfb = []

    def fail(self, reason):
        self.bad += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


async def client(port, stats, chunks, delay=0.0):
    await asyncio.sleep(delay)
    body = json.dumps(
        {
            'model': 'slow',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'hi'}],
        }
    ).encode()
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(
            b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
            b'Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n'
            b'Connection: close\r\n'
            + f'Content-Length: {len(body)}\r\n\r\n'.encode()
            + body
        )
        await writer.drain()
        first = await reader.read(1)
        if not first:
            stats.fail('closed before any byte')
            return
        stats.ttfb.append(time.monotonic() - t0)
        stats.in_flight += 1
        stats.peak = max(stats.peak, stats.in_flight)
        rest = first + await reader.read()
        stats.in_flight -= 1
        text = rest.decode('utf-8', 'replace')
        words = text.count('"content": "w') + text.count('"content":"w')
        if (
            text.startswith('HTTP/1.1 200')
            and words == chunks
            and 'data: [DONE]' in text
        ):
            stats.ok += 1
        else:
            stats.fail(f'{text[:12]!r}... {words} of {chunks} chunks')
        writer.close()
    except OSError as exc:
        stats.fail(type(exc).__name__)


async def run(args, gateway, port):
    stats = Stats()
    peak_rss = 0

    async def sample():
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, gateway.rss_mb())
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    t0 = time.monotonic()
    await asyncio.gather(
        *(
            client(gateway.port, stats, args.chunks, i / args.rate if args.rate else 0)
            for i in range(args.streams)
        )
    )
    elapsed = time.monotonic() - t0
    sampler.cancel()
    return stats, elapsed, peak_rss


async def main_async(args):
    port = free_port()
    server = await asyncio.start_server(
        lambda r, w: upstream_handler(r, w, args.chunks, args.interval),
        '127.0.0.1',
        port,
        backlog=4096,
    )
    workdir = tempfile.mkdtemp(prefix='aegisflow-streams-')
    config = Path(workdir) / 'gateway.yaml'
    config.write_text(CONFIG.format(port=port))
    gateway = Target(
        'aegisflow-streams',
        'aegisflow',
        args.worker_class,
        workdir,
        config=config,
        threads=args.threads,
    )
    await asyncio.to_thread(gateway.start)
    try:
        idle_rss = gateway.rss_mb()
        stats, elapsed, peak_rss = await run(args, gateway, port)
    finally:
        await asyncio.to_thread(gateway.stop)
        server.close()
    return stats, elapsed, idle_rss, peak_rss


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
    args = parser.parse_args()
    stats, elapsed, idle_rss, peak_rss = asyncio.run(main_async(args))
    threads = args.threads or ServerConfig().threads
    workers = (
        f'gthread workers of {threads} threads'
        if args.worker_class == 'gthread'
        else 'gevent workers'
    )
    one = args.chunks * args.interval
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/streams.py'] + sys.argv[1:])
    ttfb = sorted(stats.ttfb)
    p50 = ttfb[len(ttfb) // 2] if ttfb else float('nan')
    p99 = ttfb[min(len(ttfb) - 1, len(ttfb) * 99 // 100)] if ttfb else float('nan')
    report = (
        f'### {args.streams} slow streams at once, {stamp}\n\nMachine: {machine()}. '
        f'Command: `{cmd}`. Each stream: {args.chunks} chunks {args.interval} s apart '
        f'({one:.1f} s), opened '
        + (f'{args.rate:g} per second' if args.rate else 'all at once')
        + f'. Gateway: 2 {workers}.\n\n'
        '| streams | completed correctly | failed | most in flight at once | '
        'all done in s | first byte p50 s | first byte p99 s | RSS idle MB | '
        'RSS peak MB |\n'
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
        f'| {args.streams} | {stats.ok} | {stats.bad} | {stats.peak} | {elapsed:.1f} | '
        f'{p50:.3f} | {p99:.3f} | {idle_rss:.0f} | {peak_rss:.0f} |\n'
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
