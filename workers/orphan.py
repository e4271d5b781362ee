"""A worker whose master is gone exits, even if it is stuck.

Gunicorn's worker loop notices a changed parent between requests, but a worker
that never reaches its loop (stuck while it builds its app) or a loop that is
blocked would outlive its master and keep the listening socket. A daemon thread,
started in ``post_fork``, looks at the parent twice a second; once the master is
gone it gives the worker the graceful timeout to finish on its own, then ends the
process.
"""

import logging
import os
import threading

log = logging.getLogger('aegisflow.worker')

CHECK_S = 0.5


def watch(master_pid, grace_s, *, exit=os._exit, getppid=os.getppid, wait=None):
    """Start the watchdog of this worker (`master_pid`: the parent at fork)."""
    wait = wait or threading.Event().wait

    def run():
        while getppid() == master_pid:
            wait(CHECK_S)
        log.warning(
            'the master is gone; this worker exits',
            extra={'master_pid': master_pid, 'grace_s': grace_s},
        )
        wait(grace_s)
        exit(1)

    thread = threading.Thread(target=run, name='aegisflow-orphan-watch', daemon=True)
    thread.start()
    return thread
