"""An append-only table of short names in the segment: every process that maps it
gives a name the same small index, and can read any index back.

Layout of the ``names`` region: a 64-byte header of eight words, then slots of
`SLOT_SIZE` bytes (a u16 length, then the UTF-8 bytes). The region holds up to
eight tables side by side: table `which` counts its published names in header word
`which` and owns the slots from `first` to `first + capacity`. A writer appends
under one stripe lock: it writes the slot, then publishes the new count (one
aligned 64-bit store), so a reader that sees the count sees the name. Readers take
no lock. Names are never removed; when the table is full, `add` answers None.
"""

import struct

from shm.errors import LockTimeout
from shm.layout import NAME_SLOT
from shm.layout import NAMES_HEADER

SLOT_SIZE = NAME_SLOT
HEADER_SIZE = NAMES_HEADER
MAX_NAME = SLOT_SIZE - 2
_LEN = struct.Struct('<H')


class NameTable:
    __slots__ = (
        'buf',
        'words',
        'base',
        'count_at',
        'capacity',
        'locks',
        'stripe',
        'index',
        'seen',
    )

    def __init__(self, segment, locks, *, which=0, first=0, capacity=None, stripe=None):
        layout = segment.layout
        self.buf = segment.buf
        self.words = segment.words
        self.count_at = layout.region('names') // 8 + which
        self.base = layout.region('names') + first * SLOT_SIZE
        if capacity is None:
            capacity = layout.names_capacity - first
        self.capacity = min(capacity, layout.names_capacity - first)
        self.locks = locks
        self.stripe = layout.stripes - 1 if stripe is None else stripe
        self.index = {}  # name -> index, of the names read so far (per process)
        self.seen = 0  # how many published names this process has read

    def _count(self):
        return self.words[self.count_at]

    def _read_new(self):
        count = min(self._count(), self.capacity)
        for i in range(self.seen, count):
            at = self.base + HEADER_SIZE + i * SLOT_SIZE
            (size,) = _LEN.unpack_from(self.buf, at)
            name = bytes(self.buf[at + 2 : at + 2 + size]).decode('utf-8', 'replace')
            self.index.setdefault(name, i)
        self.seen = max(self.seen, count)

    def find(self, name):
        """The index of `name`, or None when no process added it."""
        found = self.index.get(name)
        if found is None and self._count() != self.seen:
            self._read_new()
            found = self.index.get(name)
        return found

    def add(self, name, timeout=0.25):
        """The index of `name`, added when new; None when the table is full, the
        name too long, or the lock not had in `timeout` seconds."""
        found = self.find(name)
        if found is not None:
            return found
        data = name.encode('utf-8')
        if len(data) > MAX_NAME:
            return None
        try:
            self.locks.acquire(self.stripe, timeout)
        except LockTimeout:
            return None
        try:
            self._read_new()
            found = self.index.get(name)
            if found is not None:
                return found
            count = self._count()
            if count >= self.capacity:
                return None
            at = self.base + HEADER_SIZE + count * SLOT_SIZE
            _LEN.pack_into(self.buf, at, len(data))
            self.buf[at + 2 : at + 2 + len(data)] = data
            self.words[self.count_at] = count + 1  # ORDER: publish after the slot
        finally:
            self.locks.release(self.stripe)
        self._read_new()
        return self.index.get(name)

    def name(self, index):
        """The name at `index`, or None when none is published there."""
        if index >= self.seen:
            self._read_new()
        if index >= self.seen:
            return None
        at = self.base + HEADER_SIZE + index * SLOT_SIZE
        (size,) = _LEN.unpack_from(self.buf, at)
        return bytes(self.buf[at + 2 : at + 2 + size]).decode('utf-8', 'replace')

    def __len__(self):
        return min(self._count(), self.capacity)
