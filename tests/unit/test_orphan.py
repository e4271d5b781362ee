"""The orphan watchdog ends a worker whose master is gone, even one stuck before
its loop (the thread does not depend on the worker's main thread)."""

import pathlib
import subprocess
import sys
import threading

from workers import orphan


def test_orphan_watch_exits_after_the_grace_once_the_parent_changes():
    parents = iter([100, 100, 100, 1])
    waits, exited = [], threading.Event()
    codes = []

    def exit_(code):
        codes.append(code)
        exited.set()

    thread = orphan.watch(
        100, 7, exit=exit_, getppid=lambda: next(parents), wait=waits.append
    )
    assert exited.wait(5)
    thread.join(5)
    assert codes == [1]
    # three checks while the master lived, then the grace period, then the exit
    assert waits == [orphan.CHECK_S] * 3 + [7]


# a worker as Gunicorn's gevent worker makes it: the watchdog starts in post_fork,
# then the standard library is patched while the watchdog waits
_PATCHED_AFTER_THE_WATCH = """
import gc, os, sys, time
sys.path.insert(0, {root!r})
from workers import orphan
orphan.CHECK_S = 0.05
orphan.watch(os.getppid(), 1)
from gevent import monkey
monkey.patch_all()
import gevent.hub
deadline = time.monotonic() + 0.5
while time.monotonic() < deadline:
    time.sleep(0.05)  # the watchdog waits about ten times meanwhile
print(sum(isinstance(o, gevent.hub.Hub) for o in gc.get_objects()))
"""


def test_the_watchdog_never_waits_on_a_patched_lock():
    """Its waits must stay the operating system's after patching: a patched wait
    builds a gevent hub on the watchdog's thread, which can deadlock the worker's
    boot on the import locks."""
    root = str(pathlib.Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, '-c', _PATCHED_AFTER_THE_WATCH.format(root=root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['1']  # the main thread's hub, no other
