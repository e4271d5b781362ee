"""The local cache store's directory in /dev/shm: made by a master whose config
wants it, removed when it stops, swept by the next master when it was killed."""

import glob
import os
import signal

from tests.support.gateway import GatewayProcess

CONFIG = """
server: {workers: 1}
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: t, keys: [{key: sk-t}]}]
%s
"""


def dirs(pid):
    return glob.glob(f'/dev/shm/aegisflow-cache-{pid}-*')


def test_a_killed_masters_store_is_swept_and_a_stopped_one_removes_its_own(tmp_path):
    killed = GatewayProcess(CONFIG % 'cache: {ttl_s: 60}', tmp_path / 'a').start()
    assert len(dirs(killed.proc.pid)) == 1
    os.killpg(killed.proc.pid, signal.SIGKILL)
    killed.proc.wait(10)
    assert len(dirs(killed.proc.pid)) == 1  # nothing could remove it
    after = GatewayProcess(CONFIG % 'cache: {ttl_s: 60}', tmp_path / 'b').start()
    try:
        assert dirs(killed.proc.pid) == []
        assert len(dirs(after.proc.pid)) == 1
    finally:
        assert after.stop() == 0
    assert dirs(after.proc.pid) == []


def test_no_store_without_a_cache(tmp_path):
    gw = GatewayProcess(CONFIG % '', tmp_path).start()
    try:
        assert dirs(gw.proc.pid) == []
    finally:
        gw.stop()
