"""Striped locks: K process-shared POSIX semaphores with owner stamps.

Each stripe has one unnamed-after-creation semaphore (initial value 1) and one 64-byte
stamp line in the segment:

    0 owner_pid    8 owner_slot    16 acquired_ns (monotonic)

written by the holder right after acquiring and cleared right before releasing.
Acquiring has a deadline (a waiter never blocks for ever) and retries when a signal
interrupts the wait. If a holder dies, the parent (which reaps it) calls
`release_owned_by(pid)`: every stripe stamped with that pid is cleared and posted, so
the other processes go on; a waiter times out meanwhile (`LockTimeout`) rather than
hangs.

The deadline is for a holder that is gone or stopped. A holder that is alive and
running is only slow: a thread of a worker with hundreds of busy threads can wait
many switch intervals for the interpreter lock while it holds a stripe. Such a
holder is waited for up to `LIVE_HOLDER_S` before the waiter gives up.

Under a cooperative worker (gevent: many requests on one OS thread) a blocking
semaphore wait would freeze every request of the process, not just the waiter:
there (`cooperative()`), a contended stripe is tried again after short sleeps,
which yield to the other requests, until the same deadline.
"""

import os
import secrets
import time

import posix_ipc

from shm.errors import LockTimeout
from shm.layout import STAMP_SIZE

_PID, _SLOT, _AT = 0, 1, 2
LIVE_HOLDER_S = 5.0
_FIRST_NAP_S, _LONGEST_NAP_S = 0.0002, 0.005
_sleep = None  # set by `cooperative()`: a sleep that yields to other requests
_pid = os.getpid()  # PERF: a system call per stamp otherwise; kept true across forks


def _forked():
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def cooperative(sleep=time.sleep):
    """Wait for contended stripes by polling with `sleep` (under gevent, after
    monkey-patching, ``time.sleep`` yields) instead of a blocking wait."""
    global _sleep
    _sleep = sleep


_WORDS = STAMP_SIZE // 8


class StripedLocks:
    __slots__ = ('words', 'base', 'sems', 'count', 'slot')

    def __init__(self, segment, *, prefix='aegisflow', slot=0):
        self.words = segment.words
        self.base = segment.layout.region('stamps') // 8
        self.count = segment.layout.stripes
        self.slot = slot
        stem = f'/{prefix}-{os.getpid()}-{secrets.token_hex(4)}-s'
        sems = []
        try:
            for i in range(self.count):
                sem = posix_ipc.Semaphore(
                    f'{stem}{i}', posix_ipc.O_CREX, mode=0o600, initial_value=1
                )
                sem.unlink()  # NOTE: children inherit the open semaphore through fork
                sems.append(sem)
        except BaseException:
            for sem in sems:
                sem.close()
            raise
        self.sems = tuple(sems)

    def stripe_of(self, key_hash):
        return key_hash % self.count

    def acquire(self, stripe, timeout):
        sem = self.sems[stripe]
        try:
            sem.acquire(0)  # PERF: the uncontended case takes no timed wait
        except posix_ipc.BusyError:
            self._wait(sem, stripe, timeout)
        at = self.base + stripe * _WORDS
        self.words[at + _SLOT] = self.slot
        self.words[at + _AT] = time.monotonic_ns()
        self.words[at + _PID] = _pid  # ORDER: stamp after acquiring

    def _wait(self, sem, stripe, timeout):
        start = time.monotonic()
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                owner = self.owner(stripe)
                if _running(owner) and deadline < start + LIVE_HOLDER_S:
                    deadline = start + LIVE_HOLDER_S
                    continue
                raise LockTimeout(stripe, owner_pid=owner, timeout=timeout)
            try:
                if _sleep is None:
                    sem.acquire(remaining)
                    return
                if _taken_napping(sem, remaining):
                    return
            except posix_ipc.BusyError:
                continue  # NOTE: the deadline check above decides
            except posix_ipc.SignalError:
                continue  # NOTE: interrupted by a signal; wait out the rest

    def release(self, stripe):
        self.words[self.base + stripe * _WORDS + _PID] = 0  # ORDER: clear, then post
        self.sems[stripe].release()

    def owner(self, stripe):
        return self.words[self.base + stripe * _WORDS + _PID]

    def release_owned_by(self, pid):
        """Parent, after reaping `pid`: free every stripe the dead process held."""
        freed = []
        for stripe in range(self.count):
            if self.owner(stripe) == pid:
                self.release(stripe)
                freed.append(stripe)
        return freed

    def close(self):
        for sem in self.sems:
            sem.close()


def _taken_napping(sem, remaining):
    """Try `sem` between growing naps, for `remaining` seconds at most: whether
    it was taken."""
    nap, napped = _FIRST_NAP_S, 0.0
    while napped < remaining:
        try:
            sem.acquire(0)
            return True
        except posix_ipc.BusyError:
            pass
        _sleep(nap)
        napped += nap
        nap = min(nap * 2, _LONGEST_NAP_S)
    return False


def _running(pid):
    """Is `pid` a live process that is not stopped? (0: no holder stamped yet)"""
    if not pid:
        return True  # NOTE: a holder between acquiring and stamping
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            state = f.read().rsplit(b')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b'T', b't', b'Z', b'X')
