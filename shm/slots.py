"""The worker slot table: a bounded set of identities reused across worker restarts.

Each slot is one 64-byte line of eight u64 words:

    0 state       FREE, ASSIGNED or LIVE             written by the parent
    1 pid         the worker's pid once it runs        written by the worker (bind)
    2 epoch       bumped on every assignment           written by the parent
    3 generation  the config generation it runs        written by the parent
    4 heartbeat   monotonic ns of its last heartbeat   written by the worker
    5 started     wall-clock ns of its start           written by the worker
    6 lock_waits  lock timeouts it has seen            written by the worker
    7 (reserved)

The parent assigns a slot before forking a worker and frees it after reaping the
worker, both on its one main thread, so slot state needs no lock. Size the table for
twice the workers: a reload starts the new workers before the old ones stop.
"""

import os
import time

from shm.errors import SlotExhausted
from shm.layout import SLOT_SIZE

FREE, ASSIGNED, LIVE = 0, 1, 2
STATE, PID, EPOCH, GENERATION, HEARTBEAT, STARTED, LOCK_WAITS = range(7)
_WORDS = SLOT_SIZE // 8


class SlotTable:
    __slots__ = ('words', 'base', 'count')

    def __init__(self, segment):
        self.words = segment.words
        self.base = segment.layout.region('slots') // 8
        self.count = segment.layout.slots

    def _at(self, slot, field):
        return self.base + slot * _WORDS + field

    def get(self, slot, field):
        return self.words[self._at(slot, field)]

    def set(self, slot, field, value):
        self.words[self._at(slot, field)] = value

    def assign(self, generation=0):
        """Parent, before fork: the lowest free slot, marked ASSIGNED."""
        for slot in range(self.count):
            if self.get(slot, STATE) == FREE:
                self.set(slot, EPOCH, self.get(slot, EPOCH) + 1)
                self.set(slot, GENERATION, generation)
                self.set(slot, PID, 0)
                self.set(slot, STATE, ASSIGNED)  # ORDER: state last
                return slot
        raise SlotExhausted(f'all {self.count} worker slots are taken')

    def bind(self, slot, pid=None):
        """Worker, after fork: record its pid and start; the parent marks it LIVE."""
        self.set(slot, PID, pid or os.getpid())
        self.set(slot, STARTED, time.time_ns())
        self.set(slot, HEARTBEAT, time.monotonic_ns())
        self.set(slot, STATE, LIVE)

    def heartbeat(self, slot, now_ns=None):
        self.set(slot, HEARTBEAT, now_ns or time.monotonic_ns())

    def free(self, slot):
        """Parent, after reaping the worker."""
        self.set(slot, STATE, FREE)

    def live(self):
        """(slot, pid) of every slot in use."""
        return [
            (s, self.get(s, PID))
            for s in range(self.count)
            if self.get(s, STATE) != FREE
        ]
