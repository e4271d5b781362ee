"""The limits store on the shared-memory keyed table, as seen from one worker.

Entries live in `shm.table.KeyedTable`; a decision locks every entry it needs at once.
Every parallel slot a worker holds is also counted in its own metric cells
(family ``F_INFLIGHT``, keyed by the entry's position), so that when the worker dies
the master gives those slots back (`release_dead`) and a killed worker never leaves a
limit stuck. A lock that cannot be had within ``state.shm.lock_timeout_ms``, or a full
table, makes the store unavailable for that request (the limiter fails open) and is
counted in the worker's slot.
"""

import threading

from aegisflow.limits.engine import EVICT_IDLE_NS
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.limits.engine import TransactionalStore
from aegisflow.telemetry import events as ev
from shm import cells
from shm.errors import LockTimeout
from shm.errors import TableFull
from shm.slots import LOCK_WAITS
from shm.table import VALUE0
from shm.table import KeyedTable


def inflight_key(base):
    return ev.F_INFLIGHT << 56 | base


class ShmStore(TransactionalStore):
    name = 'shm'

    def __init__(self, runtime, slot, writer, timeout_s):
        self.table = KeyedTable(runtime.segment, runtime.locks)
        self.words = runtime.segment.words
        self.slots = runtime.slots
        self.slot = slot
        self.writer = writer  # the worker's CellWriter, or None (no slot)
        self.timeout = timeout_s
        # NOTE: the threads of one worker queue here first, so at most one thread per
        # process waits on or holds the stripe semaphores; otherwise a holder that
        # loses the GIL to its siblings keeps every process waiting.
        self._local = threading.Lock()

    def lock(self, keys, now_ns):
        self._enter()
        try:
            return self.table.lock(
                keys, now_ns, timeout=self.timeout, evict_idle_ns=EVICT_IDLE_NS
            )
        except (LockTimeout, TableFull) as exc:
            unavailable = self._unavailable(exc)  # ORDER: count under the local lock
            self._local.release()
            raise unavailable from None
        except BaseException:
            self._local.release()
            raise

    def lock_entries(self, charges):
        self._enter()
        try:
            stripes = self.table.lock_entries(
                [c.ref for c in charges], timeout=self.timeout
            )
        except LockTimeout as exc:
            unavailable = self._unavailable(exc)  # ORDER: count under the local lock
            self._local.release()
            raise unavailable from None
        # NOTE: an entry idle past the eviction time may hold another key by now.
        held = [c for c in charges if self.table.holds(c.ref, *c.check.key)]
        return stripes, held

    def unlock(self, stripes):
        try:
            self.table.unlock(stripes)
        finally:
            self._local.release()

    def _enter(self):
        # NOTE: this lock only orders the threads of this process, whose holder is
        # alive and runs for microseconds, so waiting long for it is safe (a thread
        # starved of the GIL can wait a while); only the semaphores, which a dead or
        # stuck process may hold, get the short timeout.
        # The first try does not wait: uncontended, it costs no timer (under
        # gevent a timed acquire arms one).
        if self._local.acquire(False):
            return
        if not self._local.acquire(timeout=max(10.0, self.timeout)):
            raise StoreUnavailable('worker-local limiter lock timed out')

    def _unavailable(self, exc):
        if isinstance(exc, LockTimeout) and self.slot is not None:
            self.slots.set(
                self.slot, LOCK_WAITS, self.slots.get(self.slot, LOCK_WAITS) + 1
            )
        return StoreUnavailable(str(exc))

    def _inflight(self, base, delta):
        if self.writer is None:
            return
        key = inflight_key(base)
        at = self.writer.cell(key, ev.FALLBACK_INFLIGHT)
        if delta > 0 or self.words[at] > 0:
            self.words[at] += delta

    def parallel_taken(self, base):
        self._inflight(base, +1)

    def parallel_released(self, base):
        self._inflight(base, -1)

    def peek_spend(self, check):
        values = self.table.peek(*check.key)
        return None if values is None else values[0]

    def peek(self, check):
        return self.table.peek(*check.key)


def release_dead(segment, table, slot):
    """Master, after reaping the worker of `slot`: give back its parallel slots.

    Returns how many slots were given back."""
    found, _ = cells.read_cells(segment, slot)
    given = 0
    for key, values in found:
        if key >> 56 != ev.F_INFLIGHT or key == ev.FALLBACK_INFLIGHT or not values[0]:
            continue
        base, held = key & ((1 << 56) - 1), values[0]

        def release(words, b, held=held):
            words[b + 1] = words[b + 1] - held if words[b + 1] > held else 0
            if words[b + 1] == 0:
                words[b + 4] = 0

        assert base >= VALUE0
        table.update_entry(base, release, timeout=1.0)
        given += held
    return given
