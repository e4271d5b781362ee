"""Fork helpers for multi-process tests: bounded, always reaped, exit status checked."""

import os
import signal
import time
import traceback


def fork(fn, *args):
    """Run ``fn(*args)`` in a child; the child exits 0 on success, 1 on an exception."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def finished(pid):
    """True once `pid` has exited; it stays unreaped (so `reap` still sees its status)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def reap(pid, timeout=30):
    """Wait for `pid` with a deadline; kill it past the deadline. Returns the status."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f'child {pid} did not finish in {timeout}s')
        time.sleep(0.005)


def run_all(fns, timeout=60):
    """Fork one child per callable, reap all, assert each exited 0."""
    pids = [fork(fn) for fn in fns]
    statuses = [reap(pid, timeout) for pid in pids]
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), statuses
