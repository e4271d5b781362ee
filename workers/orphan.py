"""A worker whose master is gone exits, even if it is stuck.

Gunicorn's worker loop notices a changed parent between requests, but a worker
that never reaches its loop (stuck while it builds its app) or a loop that is
blocked would outlive its master and keep the listening socket. A daemon thread,
started in ``post_fork``, looks at the parent twice a second; once the master is
gone it gives the worker the graceful timeout to finish on its own, then ends the
process.

The thread is an operating-system thread that must keep working while the worker
monkey-patches the standard library (the gevent worker, just after ``post_fork``):
it waits with the ``time.sleep`` taken when this module was imported, in the
master, before any patching. A patched wait would take a gevent lock on this
thread, whose first use builds a gevent hub here (importing modules) while the
worker's main thread imports too: the two can deadlock on the import locks, and
the worker never boots.
"""

import logging
import os
import threading
import time

log = logging.getLogger('aegisflow.worker')

CHECK_S = 0.5

_os_sleep = time.sleep  # NOTE: never patched: bound at import, in the master


def watch(master_pid, grace_s, *, exit=os._exit, getppid=os.getppid, wait=None):
    """Start the watchdog of this worker (`master_pid`: the parent at fork)."""
    wait = wait or _os_sleep

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
