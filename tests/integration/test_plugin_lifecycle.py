"""The plugin lifecycle under real Gunicorn: the master reads and validates a
plugin file once per config load; workers build from those bytes.

- an invalid plugin file plus SIGHUP: the reload is refused, the respawned workers
  boot with the previous module, the master keeps serving;
- a changed plugin file plus a worker re-fork (no reload): the new worker boots at
  once and judges with the module of the config that serves;
- a worker whose master is gone exits and releases the port.
"""

import os
import signal
import textwrap
from pathlib import Path

import pytest
import requests

from tests.support.gateway import GatewayProcess
from tests.support.gateway import wait_until

ROOT = Path(__file__).resolve().parents[2]
DENY_MARKER = (ROOT / 'conf' / 'plugins' / 'deny_marker.wat').read_text()
# a valid module that blocks every text: if a worker ever read the changed file,
# a clean request would be refused
BLOCK_ALL = (
    (ROOT / 'tests' / 'plugins' / 'warn_always.wat')
    .read_text()
    .replace('(i32.const 2)))', '(i32.const 3)))')  # verdict 3: block
)
assert BLOCK_ALL.endswith('(i32.const 3)))\n')

CONFIG = textwrap.dedent("""
    server: {workers: WORKERS, graceful_timeout_s: 2}
    providers: [{name: mock, type: mock, models: [mock]}]
    routes: [{match: "*", targets: [mock]}]
    tenants: [{id: t, keys: [{key: sk-plugin-life}]}]
    policies:
      input:
        - {name: marker, type: wasm, action: block, path: plugin.wat}
""")


def start(tmp_path, workers=1):
    (tmp_path / 'plugin.wat').write_text(DENY_MARKER)
    return GatewayProcess(CONFIG.replace('WORKERS', str(workers)), tmp_path).start()


def status(gw, text):
    try:
        return requests.post(
            gw.base_url + '/chat/completions',
            json={'model': 'mock', 'messages': [{'role': 'user', 'content': text}]},
            headers={'Authorization': 'Bearer sk-plugin-life'},
            timeout=10,
        ).status_code
    except requests.ConnectionError:
        return None


def judged_by_the_first_module(gw):
    return status(gw, 'hello there') == 200 and status(gw, 'a BLOCKME here') == 403


def test_invalid_plugin_file_and_sighup_keep_the_master_serving(tmp_path):
    gw = start(tmp_path, workers=2)
    try:
        assert judged_by_the_first_module(gw)
        (tmp_path / 'plugin.wat').write_text('(module (func $broken')
        old = set(gw.worker_pids())
        gw.signal(signal.SIGHUP)
        wait_until(lambda: 'reload refused' in gw.log(), timeout=30, what='refusal')
        wait_until(
            lambda: not old & set(gw.worker_pids()) and len(gw.worker_pids()) == 2,
            timeout=30,
            what='respawned workers',
        )
        assert gw.proc.poll() is None, gw.log()
        for _ in range(6):  # both workers
            assert judged_by_the_first_module(gw)
        assert 'policies.input[0].path' in gw.log()
        assert 'not a valid module' in gw.log()
    finally:
        gw.stop()
    assert gw.proc.returncode == 0


def test_changed_plugin_file_and_a_worker_refork_boot_with_the_loaded_module(
    tmp_path,
):
    gw = start(tmp_path)
    try:
        assert judged_by_the_first_module(gw)
        (tmp_path / 'plugin.wat').write_text(BLOCK_ALL)
        [worker] = gw.worker_pids()
        os.kill(worker, signal.SIGKILL)
        wait_until(
            lambda: gw.worker_pids() and gw.worker_pids() != [worker],
            timeout=30,
            what='a new worker',
        )
        # the new worker boots (no deadlock, no file read) and judges with the
        # module the master validated at start, not the file as it is now
        wait_until(lambda: status(gw, 'hello there'), timeout=30, what='an answer')
        assert judged_by_the_first_module(gw)
        assert gw.proc.poll() is None
    finally:
        gw.stop()


@pytest.mark.parametrize('workers', [1, 2])
def test_workers_exit_when_their_master_is_gone(tmp_path, workers):
    gw = start(tmp_path, workers=workers)
    try:
        pids = gw.worker_pids()
        assert len(pids) == workers
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)

        def gone():
            return not [p for p in pids if _alive(p)]

        wait_until(gone, timeout=20, what='orphaned workers to exit')
        assert status(gw, 'hello') is None  # nothing holds the port
    finally:
        gw.stop()


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ', 1)[1][0] != 'Z'
    except FileNotFoundError:
        return False


def test_a_worker_that_cannot_build_its_config_exits_and_the_master_stays(tmp_path):
    marker = tmp_path / 'broken'
    config = CONFIG.replace('WORKERS', '1') + textwrap.indent(
        textwrap.dedent(f"""
        - name: custom
          type: custom
          action: block
          class: tests.support.policies.FailsWhileFileExists
          config: {{fail_if_exists: "{marker}"}}
        """),
        '    ',
    )
    (tmp_path / 'plugin.wat').write_text(DENY_MARKER)
    gw = GatewayProcess(config, tmp_path).start()
    try:
        assert judged_by_the_first_module(gw)
        marker.write_text('')
        [worker] = gw.worker_pids()
        os.kill(worker, signal.SIGKILL)
        wait_until(
            lambda: gw.log().count('cannot build its configuration') >= 2,
            timeout=30,
            what='replacement workers that fail to build',
        )
        assert gw.proc.poll() is None, gw.log()  # the arbiter did not halt
        assert 'exited with code 75' in gw.log()
        marker.unlink()
        wait_until(
            lambda: status(gw, 'hello there') == 200, timeout=30, what='a worker'
        )
        assert judged_by_the_first_module(gw)
    finally:
        gw.stop()


def test_changed_plugin_and_sighup_is_a_new_version_that_serves(tmp_path):
    gw = start(tmp_path)
    try:
        assert judged_by_the_first_module(gw)
        (tmp_path / 'plugin.wat').write_text(BLOCK_ALL)
        old = set(gw.worker_pids())
        gw.signal(signal.SIGHUP)
        wait_until(
            lambda: not old & set(gw.worker_pids()) and gw.worker_pids(),
            timeout=30,
            what='reloaded workers',
        )
        # the YAML is the same; the plugin's bytes make it a new version
        assert 'configuration reloaded' in gw.log()
        wait_until(lambda: status(gw, 'hello there') == 403, timeout=30, what='403')
    finally:
        gw.stop()
