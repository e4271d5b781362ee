"""A fixed-capacity keyed table for records several processes update.

The table is cut into as many partitions as there are lock stripes; a key's hash picks
its partition, and the partition's stripe lock serialises every change to it. Entry
(64 bytes, eight u64 words):

    0 key_hash (0 = empty)   1 key_check   2 last_touch_ns   3..7 five values

`update` takes the stripe lock, finds the key by linear probing inside its partition
(entries are replaced, never deleted, so an empty entry ends a probe), and calls the
caller's function on the entry's words while holding the lock. A key not present takes
the first empty entry.

Table full: when a partition has no empty entry, the least recently touched entry is
taken over (its values zeroed) if it has been idle for at least ``evict_idle_ns``;
otherwise `update` raises `TableFull`, and the caller decides (fail open or closed).
Callers pick ``evict_idle_ns`` so that evicting an entry loses nothing that still
matters (for a rate limiter: longer than its window).
"""

from shm.errors import TableFull

KEY, CHECK, TOUCH = 0, 1, 2
VALUE0 = 3
VALUES = 5
_WORDS = 8


class KeyedTable:
    __slots__ = ('words', 'base', 'locks', 'per', 'stripes')

    def __init__(self, segment, locks):
        layout = segment.layout
        if layout.table_entry_size != _WORDS * 8:
            raise ValueError('KeyedTable needs 64-byte entries')
        self.words = segment.words
        self.base = layout.region('table') // 8
        self.locks = locks
        self.stripes = layout.stripes
        self.per = layout.table_capacity // layout.stripes

    def update(
        self, key_hash, key_check, fn, now_ns, *, timeout=0.02, evict_idle_ns=None
    ):
        """Run ``fn(words, value_base, created)`` on the key's entry under its lock.

        Returns what `fn` returns. `LockTimeout` or `TableFull` propagate.
        """
        key_hash = key_hash or 1  # NOTE: 0 marks an empty entry
        stripe = key_hash % self.stripes
        self.locks.acquire(stripe, timeout)
        try:
            at, created = self._find(stripe, key_hash, key_check, now_ns, evict_idle_ns)
            self.words[at + TOUCH] = now_ns
            return fn(self.words, at + VALUE0, created)
        finally:
            self.locks.release(stripe)

    def _find(self, stripe, key_hash, key_check, now_ns, evict_idle_ns):
        words, per = self.words, self.per
        first = self.base + stripe * per * _WORDS
        start = (key_hash // self.stripes) % per
        oldest, oldest_touch = None, None
        for i in range(per):
            at = first + ((start + i) % per) * _WORDS
            h = words[at + KEY]
            if h == key_hash and words[at + CHECK] == key_check:
                return at, False
            if h == 0:
                return self._take(at, key_hash, key_check), True
            touch = words[at + TOUCH]
            if oldest_touch is None or touch < oldest_touch:
                oldest, oldest_touch = at, touch
        if evict_idle_ns is not None and now_ns - oldest_touch >= evict_idle_ns:
            return self._take(oldest, key_hash, key_check), True
        raise TableFull(f'partition {stripe} of the keyed table is full')

    def _take(self, at, key_hash, key_check):
        words = self.words
        for i in range(VALUE0, _WORDS):
            words[at + i] = 0
        words[at + CHECK] = key_check
        words[at + KEY] = key_hash  # ORDER: the key last, once the entry is clean
        return at

    def peek(self, key_hash, key_check):
        """Lock-free read of a key's values (each word as of some moment), or None."""
        key_hash = key_hash or 1
        stripe = key_hash % self.stripes
        first = self.base + stripe * self.per * _WORDS
        start = (key_hash // self.stripes) % self.per
        for i in range(self.per):
            at = first + ((start + i) % self.per) * _WORDS
            h = self.words[at + KEY]
            if h == key_hash and self.words[at + CHECK] == key_check:
                return tuple(self.words[at + VALUE0 : at + _WORDS])
            if h == 0:
                return None
        return None
