"""AegisFlow beside the peer gateways (LiteLLM, Portkey), on the same work in the
same run: a peer comparison harness (`run.sh` in `--anchors`, default
`../shared/anchors`) installs them in front of a static nginx upstream and measures
every target with `wrk` in interleaved rounds; this starts AegisFlow on
`bench/upstream/peers.yaml` (its default worker class, the full pipeline, the peers'
`mock` model sent to the same nginx) and adds it as an extra target.

    python bench/peers.py --append bench/RESULTS.md
"""

import argparse
import datetime
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from load import free_port  # noqa: E402
from load import machine  # noqa: E402
from load import publish  # noqa: E402


def start(workdir, port):
    config = Path(workdir) / 'peers.yaml'
    config.write_text(
        (HERE / 'upstream' / 'peers.yaml').read_text().replace('PORT', str(port))
    )
    env = dict(os.environ, AEGISFLOW_CONFIG=str(config))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'gunicorn', '-c', str(ROOT / 'gunicorn.conf.py')],
        cwd=ROOT,
        env=env,
        stdout=open(Path(workdir) / 'gateway.log', 'w'),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # NOTE: its pid is its process group (CPU, RSS)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f'http://127.0.0.1:{port}/readyz', timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError('the gateway did not start: see ' + str(workdir))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--anchors', default=str(ROOT.parent / 'shared' / 'anchors'))
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--skip-install', action='store_true')
    parser.add_argument('--append')
    args = parser.parse_args()
    port = free_port()
    url = f'http://127.0.0.1:{port}/v1/chat/completions'
    target = {
        'name': 'aegisflow',
        'label': 'AegisFlow',
        'url': url,
        'headers': ['Authorization: Bearer sk-bench'],
        'stream_url': url,
        'stream_headers': ['Authorization: Bearer sk-bench'],
        'stream_body': '{"model":"mock-stream","stream":true,'
        '"messages":[{"role":"user","content":"test"}]}',
    }
    before = set(glob.glob(os.path.join(args.anchors, 'results', '*.md')))
    with tempfile.TemporaryDirectory(prefix='aegisflow-peers-') as workdir:
        # ORDER: the anchors start nginx on :19000/:19001; the gateway only needs
        # them when measured, so it may start first
        proc = start(workdir, port)
        try:
            target['pgid'] = proc.pid
            command = [
                'bash',
                os.path.join(args.anchors, 'run.sh'),
                '--rounds',
                str(args.rounds),
                '--duration',
                str(args.duration),
                '--extra-target',
                json.dumps(target),
            ] + (['--skip-install'] if args.skip_install else [])
            subprocess.run(command, check=True)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    made = sorted(
        set(glob.glob(os.path.join(args.anchors, 'results', '*.md'))) - before
    )
    if not made:
        sys.exit('the anchor benchmark wrote no result')
    table = Path(made[-1]).read_text()
    report = (
        f'## {datetime.date.today()}: peers on the same work, like for like '
        '(bench/peers.py)\n\n'
        f'Machine: {machine()}. The anchor benchmark (`run.sh`, LiteLLM and Portkey '
        'as it pins them) with AegisFlow as an extra target on '
        '`bench/upstream/peers.yaml`: its default worker class, the full pipeline, '
        "and the peers' model `mock` sent to the same static nginx upstream (the "
        'earlier "Peers" table sent it to the in-process mock provider, which '
        'skips the upstream call the peers make).\n\n'
        f'    python bench/peers.py --rounds {args.rounds} '
        f'--duration {args.duration}\n\n' + table.strip() + '\n'
    )
    publish(report, args.append)


if __name__ == '__main__':
    main()
