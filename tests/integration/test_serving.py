"""How the gateway is run: worker classes, the CLI, start-up errors, SIGHUP reload."""

import collections
import os
import signal
import subprocess
import sys

import openai
import pytest
import requests

from tests.conftest import ACCEPTANCE_CONFIG
from tests.support.gateway import ROOT
from tests.support.gateway import GatewayProcess
from tests.support.gateway import free_port
from tests.support.gateway import wait_until
from tests.support.load import steady


@pytest.mark.parametrize('worker_class', ['gevent', 'gthread', 'meinheld'])
def test_worker_class_serves_requests_and_streams(gateway_factory, worker_class):
    config = ACCEPTANCE_CONFIG.replace(
        'workers: 2}', f'workers: 2, worker_class: {worker_class}, backlog: 321}}'
    )
    gw = gateway_factory(config)
    # the listening socket's queue is the configured backlog (ss: its Send-Q)
    listening = subprocess.run(
        ['ss', '-ltnH', f'sport = :{gw.port}'], capture_output=True, text=True
    ).stdout.split()
    assert listening[0] == 'LISTEN' and listening[2] == '321', listening
    used = {
        'gevent': 'workers.gevent.GeventWorker',
        'gthread': 'workers.gthread.ThreadWorker',
        'meinheld': 'egg:meinheld',
    }
    assert 'Using worker: ' + used[worker_class] in gw.log()
    client = openai.OpenAI(base_url=gw.base_url, api_key='sk-acme-1', max_retries=0)
    for i in range(10):
        out = client.chat.completions.create(
            model='mock', messages=[{'role': 'user', 'content': f'n{i}'}]
        )
        assert out.choices[0].message.content == f'[mock] You said: n{i}'
    chunks = list(
        client.chat.completions.create(
            model='mock-fast',
            stream=True,
            stream_options={'include_usage': True},
            messages=[{'role': 'user', 'content': 'streamed words here'}],
        )
    )
    text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
    assert text == '[mock-fast] You said: streamed words here'
    assert chunks[-1].usage.total_tokens > 0
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.base_url, api_key='bad', max_retries=0).models.list()


def _run(argv, env, timeout=60):
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_invalid_config_stops_start_with_the_message(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(ACCEPTANCE_CONFIG.replace('workers: 2', 'workers: -1'))
    expected = 'server.workers: expected an integer from 1 to 256, found -1 (integer)'
    out = _run([sys.executable, '-m', 'aegisflow', 'serve', '--config', str(bad)], {})
    assert out.returncode == 1 and expected in out.stderr
    out = _run(
        [
            sys.executable,
            '-m',
            'gunicorn',
            '-c',
            'gunicorn.conf.py',
            '--bind',
            f'127.0.0.1:{free_port()}',
        ],
        {'AEGISFLOW_CONFIG': str(bad)},
    )
    assert out.returncode != 0 and expected in out.stderr
    assert 'Traceback' not in out.stderr


def test_serve_command_runs_gunicorn_with_overrides(tmp_path):
    cfg = tmp_path / 'a.yaml'
    cfg.write_text(ACCEPTANCE_CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'aegisflow',
            'serve',
            '--config',
            str(cfg),
            '--bind',
            f'127.0.0.1:{port}',
            '--workers',
            '1',
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def up():
            try:
                return requests.get(f'http://127.0.0.1:{port}/healthz', timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout=30, what='aegisflow serve')
        workers = subprocess.run(
            ['pgrep', '-P', str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0


def test_sighup_reload_applies_valid_and_refuses_invalid(tmp_path):
    gw = GatewayProcess(ACCEPTANCE_CONFIG, tmp_path)
    with gw:

        def status(key):
            return requests.get(
                gw.base_url + '/models',
                timeout=5,
                headers={'Authorization': f'Bearer {key}'},
            ).status_code

        assert status('sk-new-1') == 401
        gw.config_path.write_text(
            ACCEPTANCE_CONFIG
            + """
  - id: newco
    keys: [{key: "sk-new-1"}]
"""
        )
        old_workers = gw.worker_pids()
        gw.signal(signal.SIGHUP)
        wait_until(
            lambda: (
                status('sk-new-1') == 200
                and not set(old_workers) & set(gw.worker_pids())
            ),
            timeout=30,
            what='reloaded workers',
        )
        gw.config_path.write_text('tenants: nope\n')
        reloaded = gw.worker_pids()
        gw.signal(signal.SIGHUP)
        wait_until(lambda: 'reload refused' in gw.log(), timeout=30, what='refusal')
        wait_until(
            lambda: (
                not set(reloaded) & set(gw.worker_pids()) and len(gw.worker_pids()) == 2
            ),
            timeout=30,
            what='respawned workers',
        )
        assert status('sk-new-1') == 200 and status('sk-acme-1') == 200
        assert 'tenants: expected a list of tenants' in gw.log()
    assert gw.proc.returncode == 0


def test_sighup_under_load_drops_no_request(tmp_path):
    """Eight clients send without pause through a valid reload and then an invalid
    one: every request is answered 200 (old workers finish what they hold), the
    new tenant works after the first, and the refused file changes nothing."""
    gw = GatewayProcess(ACCEPTANCE_CONFIG, tmp_path)
    with gw:

        def send(_):
            try:
                r = requests.post(
                    gw.base_url + '/chat/completions',
                    headers={
                        'Authorization': 'Bearer sk-acme-1',
                        'Connection': 'close',
                    },
                    json={
                        'model': 'mock',
                        'messages': [{'role': 'user', 'content': 'hi'}],
                    },
                    timeout=15,
                )
            except requests.RequestException as exc:
                return type(exc).__name__
            return r.status_code

        def new_key_status():
            return requests.get(
                gw.base_url + '/models',
                headers={'Authorization': 'Bearer sk-new-1'},
                timeout=5,
            ).status_code

        with steady(send) as answers:
            wait_until(lambda: len(answers) >= 40, timeout=20, what='load')
            gw.config_path.write_text(
                ACCEPTANCE_CONFIG + '  - id: newco\n    keys: [{key: "sk-new-1"}]\n'
            )
            old = set(gw.worker_pids())
            gw.signal(signal.SIGHUP)
            wait_until(
                lambda: new_key_status() == 200 and not old & set(gw.worker_pids()),
                timeout=30,
                what='reloaded under load',
            )
            gw.config_path.write_text('tenants: nope\n')
            reloaded, mark = set(gw.worker_pids()), len(answers)
            gw.signal(signal.SIGHUP)
            wait_until(
                lambda: (
                    'reload refused' in gw.log()
                    and not reloaded & set(gw.worker_pids())
                    and len(gw.worker_pids()) == 2
                    and len(answers) >= mark + 40
                ),
                timeout=30,
                what='refused reload under load',
            )
        assert collections.Counter(answers) == {200: len(answers)}
        assert new_key_status() == 200
    assert gw.proc.returncode == 0


def _shm_names(pid):
    return [n for n in os.listdir('/dev/shm') if f'aegisflow-{pid}-' in n]


def test_shared_memory_too_large_stops_start_with_advice(tmp_path):
    cfg = tmp_path / 'big.yaml'
    # 516 slots x 2^20 records x 256 bytes: far beyond /dev/shm, refused up front.
    cfg.write_text(
        ACCEPTANCE_CONFIG.replace('workers: 2}', 'workers: 256}')
        + 'state: {shm: {ring_records: 1048576}}\n'
    )
    out = _run(
        [
            sys.executable,
            '-m',
            'gunicorn',
            '-c',
            'gunicorn.conf.py',
            '--bind',
            f'127.0.0.1:{free_port()}',
        ],
        {'AEGISFLOW_CONFIG': str(cfg)},
    )
    assert out.returncode == 1
    assert 'enlarge /dev/shm' in out.stderr and 'ring_records' in out.stderr
    assert 'Traceback' not in out.stderr


def test_nothing_left_in_dev_shm_after_stop_or_master_kill(tmp_path):
    for how in (signal.SIGTERM, signal.SIGKILL):
        gw = GatewayProcess(ACCEPTANCE_CONFIG, tmp_path / how.name)
        gw.start()
        master = gw.proc.pid
        assert _shm_names(master) == []  # unlinked right after creation
        assert requests.get(gw.url + '/metrics', timeout=5).status_code == 200
        gw.proc.send_signal(how)
        gw.proc.wait(20)
        gw.stop()
        assert _shm_names(master) == []
