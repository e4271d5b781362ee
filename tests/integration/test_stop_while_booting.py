"""A stop that reaches a worker while it is still booting is not lost: the worker
stops (instead of serving on until the master kills it at the graceful timeout)."""

import signal
import subprocess
import time

from tests.support.gateway import GatewayProcess
from tests.support.gateway import wait_until

CONFIG = """
server: {workers: 1, graceful_timeout_s: 30}
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: t, keys: [{key: sk-t}]}]
"""


def test_term_right_after_a_worker_is_forked_stops_it(tmp_path):
    for round_ in range(5):
        gw = GatewayProcess(CONFIG, tmp_path / f'r{round_}').start()
        try:
            before = set(gw.worker_pids())
            gw.signal(signal.SIGTTIN)  # one more worker: forked now
            wait_until(
                lambda g=gw, b=before: set(g.worker_pids()) - b,
                timeout=10,
                interval=0.001,
                what='the new worker',
            )
            started = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)  # while it boots
            gw.proc.wait(15)
            # NOTE: a lost stop would keep the worker up for the graceful 30 s
            assert time.monotonic() - started < 10
        except subprocess.TimeoutExpired:
            raise AssertionError(
                'the gateway did not stop: a worker lost its TERM'
            ) from None
        finally:
            gw.stop()
