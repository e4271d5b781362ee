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
taken over (its values zeroed) if it has been idle for at least ``evict_idle_ns`` and
is not pinned; otherwise `update` raises `TableFull`, and the caller decides (fail
open or closed). The last value word is "pinned until" (the same clock as ``now_ns``;
0 = not pinned): callers pin entries that must survive idleness (a count of requests
in flight, the spend of the current budget period).

`transaction` takes several keys at once: their stripe locks are acquired in
ascending order (no deadlock between processes), so a caller can decide on all of
them and commit all or nothing.
"""

import contextlib

from shm.errors import TableFull

KEY, CHECK, TOUCH = 0, 1, 2
VALUE0 = 3
VALUES = 5
PIN = VALUE0 + VALUES - 1  # "pinned until", never evicted before
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
            if words[at + PIN] <= now_ns and (
                oldest_touch is None or touch < oldest_touch
            ):
                oldest, oldest_touch = at, touch
        if (
            evict_idle_ns is not None
            and oldest is not None
            and now_ns - oldest_touch >= evict_idle_ns
        ):
            return self._take(oldest, key_hash, key_check), True
        raise TableFull(f'partition {stripe} of the keyed table is full')

    def _take(self, at, key_hash, key_check):
        words = self.words
        for i in range(VALUE0, _WORDS):
            words[at + i] = 0
        words[at + CHECK] = key_check
        words[at + KEY] = key_hash  # ORDER: the key last, once the entry is clean
        return at

    @contextlib.contextmanager
    def transaction(self, keys, now_ns, *, timeout=0.02, evict_idle_ns=None):
        """Lock every key's stripe (ascending), yield ``[(value_base, created)]`` in
        the order of `keys` (pairs of hash and check), release on exit."""
        stripes, entries = self.lock(
            keys, now_ns, timeout=timeout, evict_idle_ns=evict_idle_ns
        )
        try:
            yield entries
        finally:
            self.unlock(stripes)

    def lock(self, keys, now_ns, *, timeout=0.02, evict_idle_ns=None):
        """The explicit form of `transaction` for hot paths: returns (stripes to
        pass to `unlock`, ``[(value_base, created)]``); on error nothing stays
        locked."""
        n = self.stripes
        stripes = sorted({(h or 1) % n for h, _ in keys})
        self._acquire(stripes, timeout)
        try:
            out = []
            for h, c in keys:
                h = h or 1
                at, created = self._find(h % n, h, c, now_ns, evict_idle_ns)
                self.words[at + TOUCH] = now_ns
                out.append((at + VALUE0, created))
            return stripes, out
        except BaseException:
            self.unlock(stripes)
            raise

    def lock_entries(self, bases, *, timeout=0.02):
        """Lock the stripes of entries already found (by `lock`); returns the stripes
        to pass to `unlock`. The caller checks each entry still holds its key."""
        stripes = sorted({self._stripe_of(b) for b in bases})
        self._acquire(stripes, timeout)
        return stripes

    def holds(self, value_base, key_hash, key_check):
        at = value_base - VALUE0
        return (
            self.words[at + KEY] == (key_hash or 1)
            and self.words[at + CHECK] == key_check
        )

    def unlock(self, stripes):
        for stripe in reversed(stripes):
            self.locks.release(stripe)

    def _acquire(self, stripes, timeout):
        taken = 0
        try:
            for stripe in stripes:
                self.locks.acquire(stripe, timeout)
                taken += 1
        except BaseException:
            for stripe in reversed(stripes[:taken]):
                self.locks.release(stripe)
            raise

    def _stripe_of(self, value_base):
        return (value_base - VALUE0 - self.base) // _WORDS // self.per

    def update_entry(self, value_base, fn, *, timeout=0.02):
        """Run ``fn(words, value_base)`` under the lock of the entry at `value_base`
        (as returned by `transaction`); for repairs by another process."""
        stripe = self._stripe_of(value_base)
        self.locks.acquire(stripe, timeout)
        try:
            return fn(self.words, value_base)
        finally:
            self.locks.release(stripe)

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
