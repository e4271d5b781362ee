"""The built wheel, installed as a new user would: a fresh venv outside the
repository, `aegisflow init` and `aegisflow serve` from an empty directory, a
request with the official SDK, and its cost in `aegisflow usage`.

Dependencies come from a wheelhouse built once for the run (pip's own cache makes
that a local copy after the first time), so the install is seconds, not a network
round per package.
"""

import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import openai
import pytest

from tests.support import secrets
from tests.support.gateway import free_port
from tests.support.gateway import wait_until

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = ('pytest', 'openai', 'anthropic', 'hypothesis', 'schemathesis', 'ruff')


def run(*argv, timeout=300, **kwargs):
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(the venv's bin directory, the wheel) with the built wheel installed."""
    work = tmp_path_factory.mktemp('wheel')
    dist, house = work / 'dist', work / 'wheelhouse'
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', dist, ROOT)
    [wheel] = dist.glob('aegisflow_gateway-*.whl')
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '-w', house, wheel)
    venv = work / 'venv'
    run(sys.executable, '-m', 'venv', venv)
    bin_ = venv / 'bin'
    run(bin_ / 'pip', 'install', '-q', '--no-index', '--find-links', house, wheel)
    return bin_, wheel


def test_wheel_carries_the_shipped_files_and_a_free_name(installed):
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        'aegisflow/conf/prices.yaml',
        'aegisflow/conf/starter.yaml',
        'aegisflow/conf/aegisflow.service',
        'aegisflow/conf/grafana-dashboard.json',
        'aegisflow/conf/prometheus-alerts.yml',
        'aegisflow/conf/plugins/deny_marker.wat',
        'aegisflow/web/openapi.yaml',
        'aegisflow/policy/injection_model.json',
        'workers/gunicorn_conf.py',
    ):
        assert shipped in names, shipped
    assert any(n.endswith('/licenses/LICENSE') for n in names)
    meta = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith('/METADATA')))
        .decode()
    )
    assert 'Name: aegisflow-gateway' in meta
    assert 'License-Expression: Apache-2.0' in meta
    assert re.search(r'Requires-Dist: gunicorn<28,>=27', meta)


def test_the_install_pulls_no_test_dependency(installed):
    bin_, _ = installed
    listed = run(bin_ / 'pip', 'list', '--format', 'json')
    names = {p['name'].lower() for p in json.loads(listed)}
    assert 'aegisflow-gateway' in names
    assert not names & set(TEST_ONLY)


def test_init_serve_request_and_usage_from_an_empty_directory(installed, tmp_path):
    bin_, _ = installed
    here = tmp_path / 'empty'
    here.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'AEGISFLOW_CONFIG'}
    env['PATH'] = f'{bin_}:{env["PATH"]}'
    out = run(bin_ / 'aegisflow', 'init', cwd=here, env=env)
    key = re.search(r'(sk-af-\S+)', out).group(1)
    secrets.given('', {'WHEEL_DEV_KEY': key})
    assert key not in (here / 'aegisflow.yaml').read_text()
    refused = subprocess.run(
        [bin_ / 'aegisflow', 'init'], cwd=here, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and '--force' in refused.stderr

    port = free_port()
    log = open(tmp_path / 'serve.log', 'wb')
    proc = subprocess.Popen(
        [bin_ / 'aegisflow', 'serve', '--bind', f'127.0.0.1:{port}'],
        cwd=here,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        client = openai.OpenAI(
            base_url=f'http://127.0.0.1:{port}/v1', api_key=key, max_retries=0
        )

        def up():
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / 'serve.log').read_text())
            try:
                return client.models.list().data
            except openai.APIConnectionError:
                return None

        wait_until(up, timeout=60, what='the installed gateway')
        answer = client.chat.completions.create(
            model='mock', messages=[{'role': 'user', 'content': 'hello from a wheel'}]
        )
        assert answer.choices[0].message.content
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        secrets.produced('installed gateway log', (tmp_path / 'serve.log').read_text())
    assert proc.returncode == 0
    # the master writes the ledger as it stops; the mock is priced in the shipped table
    usage = json.loads(
        run(
            bin_ / 'aegisflow', 'usage', '--model', 'mock', '--format', 'json',
            cwd=here, env=env,
        )
    )  # fmt: skip
    assert usage['totals']['requests'] == 1  # the chat completion
    assert usage['totals']['cost_usd'] > 0
