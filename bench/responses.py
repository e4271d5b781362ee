"""What ``/v1/responses`` costs beside ``/v1/chat/completions``: translated on the
mock provider (the same prompt, the same answer), with and without storing the
response for a follow-up.

One gateway (the full pipeline of ``bench/gateway.yaml``, its ledger and response
store in SQLite), three kinds of request measured in interleaved rounds with wrk:

- ``chat``: ``POST /v1/chat/completions``;
- ``responses, store false``: ``POST /v1/responses`` with ``store: false`` (the
  translation both ways, nothing written);
- ``responses, stored``: ``POST /v1/responses`` (stored: one row written per
  request before the answer goes out).

CPU ms per request is the gateway's process group's CPU over the requests served;
each difference and ratio is taken within one round, then the median is quoted.

    python bench/responses.py --rounds 5 --duration 5 [--append bench/RESULTS.md]

``--store-only N``: the store's write alone, in this process and one more writing
the same SQLite file at once, N writes each, with a pause of 0.5 ms between
writes (as between requests) and without.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

from load import Target
from load import machine
from load import measure
from load import publish

PROMPT = 'Hello, how are you today?'
_CHAT = {'model': 'mock', 'messages': [{'role': 'user', 'content': PROMPT}]}
CASES = {
    'chat': ('/v1/chat/completions', json.dumps(_CHAT)),
    'responses, store false': (
        '/v1/responses',
        json.dumps({'model': 'mock', 'input': PROMPT, 'store': False}),
    ),
    'responses, stored': (
        '/v1/responses',
        json.dumps({'model': 'mock', 'input': PROMPT}),
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--duration', type=int, default=5)
    parser.add_argument('--conns', default='1,64')
    parser.add_argument('--append', help='append the dated report to this file')
    parser.add_argument('--store-only', type=int, metavar='N')
    args = parser.parse_args()
    if args.store_only:
        return store_only(args.store_only)
    conns_list = [int(c) for c in args.conns.split(',')]
    target = Target('aegisflow', 'aegisflow', 'gthread', tempfile.mkdtemp())
    results = {}
    target.start()
    try:
        for rnd in range(args.rounds):
            for conns in conns_list:
                for case, (path, body) in CASES.items():
                    env = {'BENCH_KEY': 'sk-bench', 'BENCH_BODY': body}
                    r = measure(target, conns, args.duration, env, path)
                    if r['bad']:
                        sys.exit(f'{case}: {r["bad"]} failed requests')
                    results.setdefault((case, conns), []).append(r)
                    print(
                        f'round {rnd + 1} {case:24} c={conns:<3} {r["rps"]:>7,.0f} '
                        f'req/s p50 {r["p50"]:.2f} ms cpu {r["cpu_ms"]:.3f} ms/req',
                        flush=True,
                    )
    finally:
        target.stop()
    publish(report(results, args, conns_list), args.append)


def _writes(path, n, pause, out):
    from aegisflow.config.model import StorageConfig
    from aegisflow.usage.responses import ResponseStore

    store = ResponseStore(StorageConfig(sqlite_path=path))
    response = {
        'id': 'resp_x',
        'object': 'response',
        'output': [{'type': 'message', 'content': [{'text': 'hello ' * 10}]}],
    }
    body = json.dumps(response)
    history = json.dumps([{'role': 'user', 'content': PROMPT}])
    cpu = time.process_time()
    for i in range(n):
        store.save(f'resp_{os.getpid()}_{i}', 'bench', body=body, history=history)
        if pause:
            time.sleep(pause)
    out.put((time.process_time() - cpu) / n * 1e6)


def store_only(n):
    import multiprocessing

    for pause in (0, 0.0005):
        path = os.path.join(tempfile.mkdtemp(), 'ledger.sqlite')
        out = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=_writes, args=(path, n, pause, out))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        cpu = [out.get() for _ in procs]
        for p in procs:
            p.join()
        print(
            f'{n} writes in each of 2 processes, pause {pause * 1000:g} ms: '
            f'CPU us/write {", ".join(f"{c:.0f}" for c in cpu)}'
        )


def _median(values, fmt):
    return fmt.format(statistics.median(values))


def report(results, args, conns_list):
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ' '.join(['python bench/responses.py'] + sys.argv[1:])
    lines = [
        f'### /v1/responses beside /v1/chat/completions, {stamp}',
        '',
        f'Machine: {machine()}. Command: `{cmd}` ({args.rounds} interleaved rounds '
        f'of {args.duration} s; medians). Gateway: Gunicorn, 2 gthread workers, '
        'the full pipeline on the mock provider, ledger and response store in '
        'SQLite.',
        '',
        '| request | conns | req/s | p50 ms | CPU ms/req | CPU ms/req minus chat, '
        'per round | median | p50 minus chat (ms) |',
        '|---|---:|---:|---:|---:|---|---:|---:|',
    ]
    for conns in conns_list:
        chat = results[('chat', conns)]
        for case in CASES:
            rows = results[(case, conns)]
            added = [r['cpu_ms'] - c['cpu_ms'] for r, c in zip(rows, chat, strict=True)]
            later = [r['p50'] - c['p50'] for r, c in zip(rows, chat, strict=True)]
            lines.append(
                f'| {case} | {conns} | '
                f'{_median([r["rps"] for r in rows], "{:,.0f}")} | '
                f'{_median([r["p50"] for r in rows], "{:.2f}")} | '
                f'{_median([r["cpu_ms"] for r in rows], "{:.3f}")} | '
                + ('-' if case == 'chat' else ', '.join(f'{a:+.3f}' for a in added))
                + f' | {"-" if case == "chat" else _median(added, "{:+.3f}")} | '
                f'{"-" if case == "chat" else _median(later, "{:+.2f}")} |'
            )
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
