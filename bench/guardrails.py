"""What a model-backed guardrail adds to a request, in one interleaved run:

- latency: a clean request to a main upstream that takes 500 ms, with a guard
  model that takes 200 ms, run ``before`` and ``parallel``, against the main call
  alone (median of every request of every round, sequential requests);
- CPU: the gateway's CPU per request (all its processes) for a request whose
  verdict comes from the verdict cache, against the same request with no guard,
  over a main upstream that answers at once.

    python bench/guardrails.py --rounds 5 --requests 20 --append bench/RESULTS.md
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from load import machine  # noqa: E402
from load import process_group  # noqa: E402
from load import publish  # noqa: E402

from tests.support.fake_guard import FakeGuard  # noqa: E402
from tests.support.fake_guard import FakeMain  # noqa: E402
from tests.support.gateway import GatewayProcess  # noqa: E402

TICK = os.sysconf('SC_CLK_TCK')
CONFIG = """
server: {{workers: 2}}
providers:
  - {{name: main, type: openai_compatible, base_url: "{main}", models: ["*"]}}
  - {{name: guard, type: openai_compatible, base_url: "{guard}",
     models: [llama-guard3]}}
routes:
  - {{match: llama-guard3, targets: [guard]}}
  - {{match: "*", targets: [main]}}
policies:
  input:
    - {{name: before, type: guard_model, model: llama-guard3, action: block,
       run: before, cache_ttl_s: 0}}
    - {{name: parallel, type: guard_model, model: llama-guard3, action: block,
       run: parallel, cache_ttl_s: 0}}
    - {{name: cached, type: guard_model, model: llama-guard3, action: block,
       cache_ttl_s: 3600}}
tenants:
  - {{id: alone, keys: [{{key: sk-alone}}], policies: []}}
  - {{id: before, keys: [{{key: sk-before}}], policies: [before]}}
  - {{id: parallel, keys: [{{key: sk-parallel}}], policies: [parallel]}}
  - {{id: cached, keys: [{{key: sk-cached}}], policies: [cached]}}
telemetry: {{log_level: warning, access_log: false}}
"""


def cpu_seconds(pgid):
    return sum(ticks for _, ticks, _ in process_group(pgid)) / TICK


def idle_rate(pgid, seconds=2.0):
    """The gateway's CPU seconds per second with no request (its master's
    aggregator, timers): taken off the CPU measured under requests."""
    before = cpu_seconds(pgid)
    time.sleep(seconds)
    return (cpu_seconds(pgid) - before) / seconds


def timed(session, url, key, text):
    start = time.perf_counter()
    r = session.post(
        url,
        json={'model': 'main', 'messages': [{'role': 'user', 'content': text}]},
        headers={'Authorization': f'Bearer {key}'},
        timeout=30,
    )
    r.raise_for_status()
    return (time.perf_counter() - start) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--requests', type=int, default=20)
    parser.add_argument('--cpu-requests', type=int, default=400)
    parser.add_argument('--append')
    args = parser.parse_args()
    fake_main, fake_guard = FakeMain().start(), FakeGuard().start()
    with tempfile.TemporaryDirectory(prefix='aegisflow-guard-bench-') as workdir:
        gw = GatewayProcess(
            CONFIG.format(main=fake_main.base_url, guard=fake_guard.base_url), workdir
        ).start()
        try:
            url = gw.base_url + '/chat/completions'
            session = requests.Session()
            latency = {'alone': [], 'before': [], 'parallel': []}
            cpu = {'alone': [], 'cached': []}
            n = 0
            for _ in range(args.rounds):
                fake_main.delay_s, fake_guard.delay_s = 0.5, 0.2
                for tenant in latency:
                    for _ in range(args.requests):
                        n += 1
                        latency[tenant].append(
                            timed(session, url, f'sk-{tenant}', f'question {n}')
                        )
                fake_main.delay_s = fake_guard.delay_s = 0.0
                timed(session, url, 'sk-cached', 'the same question')  # judged once
                idle = idle_rate(gw.proc.pid)
                for tenant in cpu:
                    before = cpu_seconds(gw.proc.pid)
                    start = time.perf_counter()
                    for _ in range(args.cpu_requests):
                        timed(session, url, f'sk-{tenant}', 'the same question')
                    used = cpu_seconds(gw.proc.pid) - before
                    used -= idle * (time.perf_counter() - start)
                    cpu[tenant].append(used * 1000 / args.cpu_requests)
        finally:
            gw.stop()
            fake_main.stop()
            fake_guard.stop()
    p50 = {k: statistics.median(v) for k, v in latency.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    lines = [
        f'## {datetime.date.today()}: what a guardrail adds (bench/guardrails.py)',
        '',
        f'Machine: {machine()}. One run, {args.rounds} interleaved rounds; 2 workers '
        '(gevent); sequential requests. Latency: a main upstream that answers in '
        '500 ms, a guard model (Llama Guard template) that answers in 200 ms, '
        f'{args.requests} requests a round per mode, no verdict cache. CPU: the '
        "gateway's processes, {0} requests a round per mode, upstream at once, "
        'less what the gateway spends idle over the same time.'.format(
            args.cpu_requests
        ),
        '',
        f'    python bench/guardrails.py --rounds {args.rounds} '
        f'--requests {args.requests}',
        '',
        '| mode | p50 ms | added to the main call alone, ms |',
        '|---|---:|---:|',
        f'| main call alone | {p50["alone"]:.1f} | - |',
        f'| run: before | {p50["before"]:.1f} | {p50["before"] - p50["alone"]:.1f} |',
        f'| run: parallel | {p50["parallel"]:.1f} | '
        f'{p50["parallel"] - p50["alone"]:.1f} |',
        '',
        '| request | CPU ms/req (median of rounds) |',
        '|---|---:|',
        f'| no guardrail | {c["alone"]:.3f} |',
        f'| verdict from the cache | {c["cached"]:.3f} |',
        f'| added by a verdict-cache hit | {c["cached"] - c["alone"]:.3f} |',
        '',
    ]
    publish('\n'.join(lines), args.append)


if __name__ == '__main__':
    main()
