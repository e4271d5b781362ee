"""Counter entries in this process: the store for a single process (tests, the app
outside Gunicorn). The same decisions as the shared-memory store, one lock."""

import threading

from aegisflow.limits.engine import TransactionalStore


class LocalStore(TransactionalStore):
    name = 'local'

    def __init__(self):
        self.words = []
        self._index = {}
        self._lock = threading.Lock()

    def lock(self, keys, now_ns):
        self._lock.acquire()
        out = []
        for key in keys:
            base = self._index.get(key)
            created = base is None
            if created:
                base = self._index[key] = len(self.words)
                self.words.extend((0, 0, 0, 0, 0))
            out.append((base, created))
        return None, out

    def lock_entries(self, charges):
        self._lock.acquire()
        return None, charges  # NOTE: entries here never move

    def unlock(self, handle):
        self._lock.release()

    def peek_spend(self, check):
        base = self._index.get(check.key)
        return None if base is None else self.words[base]

    def peek(self, check):
        base = self._index.get(check.key)
        return None if base is None else tuple(self.words[base : base + 5])
