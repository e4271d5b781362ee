"""The local backend of the response cache: one LMDB environment that every worker
of the host maps, so an answer stored by one worker is a hit in all of them.

Why LMDB (measured in ``bench/RESULTS.md``): a hit is a read of memory-mapped
pages with no lock and no copy of the store, and a write is one transaction that
either commits whole or leaves nothing: a worker killed in the middle of a store
leaves no torn entry (its transaction is discarded) and no held lock (LMDB's
writer mutex is process-shared and robust: the next writer recovers it).

Layout: ``entries`` maps a cache key (32 bytes) to ``HEADER`` (stored at, expires
at, insertion number) followed by the entry; ``order`` maps insertion numbers (8
bytes, big-endian) to keys, oldest first. The store is bounded by ``max_bytes``
of entries; past it, writes evict with CLOCK: the oldest entry goes, unless it was
read since it was last placed (a reference byte, set by hits in the ``stats``
file, without a write transaction), in which case it moves to the back once.
Expired entries go first. The ``stats`` file (memory-mapped, written under the
writer's transaction) holds the bytes, entries and evictions the master exports.

The environment is opened in each process on first use (LMDB environments must not
cross a fork) and sized at start: ``cache.max_bytes`` changes need a restart.
"""

import logging
import mmap
import os
import re
import shutil
import struct
import sys
import tempfile
import threading
import time

import lmdb

from aegisflow.cache.errors import Unavailable

log = logging.getLogger('aegisflow.cache')

HEADER = struct.Struct('<ddQ')  # stored_at, expires_at (unix seconds), insertion
_SEQ = struct.Struct('>Q')
_STATS = struct.Struct('<QQQ')  # bytes, entries, evictions
REF_SLOTS = 1 << 16
STATS_SIZE = _STATS.size + REF_SLOTS
_MAX_EVICT_STEPS = 4096
# NOTE: a test hook: when this file exists, a writer stops after writing its entry
# and before committing, so a test can kill it there
PAUSE_ENV = 'AEGISFLOW_TEST_CACHE_PAUSE_FILE'


_OPENING = threading.Lock()


class LocalStore:
    backend = 'local'

    def __init__(self, path, max_bytes):
        self.path = path
        self.max_bytes = max_bytes
        self._pid = None
        self._env = None
        self._pause = os.environ.get(PAUSE_ENV)

    # -- process-local handles --------------------------------------------------

    def _open(self):
        pid = os.getpid()
        if self._pid == pid:
            return self._env
        with _OPENING:  # NOTE: one environment per process: threads open it once
            if self._pid == pid:
                return self._env
            return self._open_now(pid)

    def _open_now(self, pid):
        os.makedirs(self.path, exist_ok=True)
        env = lmdb.open(
            self.path,
            map_size=2 * self.max_bytes + (64 << 20),
            max_dbs=2,
            max_readers=4096,
            sync=False,
            metasync=False,
            readahead=False,
            meminit=False,
        )
        self._entries = env.open_db(b'entries')
        self._order = env.open_db(b'order')
        fd = os.open(os.path.join(self.path, 'stats'), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < STATS_SIZE:
                os.ftruncate(fd, STATS_SIZE)
            self._map = mmap.mmap(fd, STATS_SIZE)
        finally:
            os.close(fd)
        self._env, self._pid = env, pid
        return env

    # -- reads --------------------------------------------------------------------

    def get(self, key):
        """(stored_at, entry bytes) of a live entry, or None; `Unavailable` when
        the store cannot be read."""
        try:
            return self._get(key)
        except (lmdb.Error, OSError) as err:
            raise Unavailable(f'local cache store: {err}') from None

    def _get(self, key):
        env = self._open()
        with env.begin(db=self._entries, buffers=True) as txn:
            value = txn.get(key)
            if value is None:
                return None
            stored_at, expires_at, _ = HEADER.unpack_from(value)
            if expires_at <= time.time():
                return None
            entry = bytes(value[HEADER.size :])
        self._map[_STATS.size + _ref(key)] = 1
        return stored_at, entry

    def stats(self):
        """{'bytes', 'entries', 'evictions'}."""
        self._open()
        return dict(
            zip(
                ('bytes', 'entries', 'evictions'),
                _STATS.unpack_from(self._map),
                strict=True,
            )
        )

    # -- writes -------------------------------------------------------------------

    def put(self, key, entry, ttl_s):
        """Store `entry` under `key`; False when it cannot fit."""
        size = len(entry) + HEADER.size
        if size > self.max_bytes:
            return False
        now = time.time()
        try:
            env = self._open()
            with env.begin(write=True) as txn:
                return self._put(txn, key, entry, now, now + ttl_s, size)
        except lmdb.MapFullError:
            log.warning('cache store full beyond its bytes; entry not stored')
            return False
        except (lmdb.Error, OSError) as err:
            raise Unavailable(f'local cache store: {err}') from None

    def _put(self, txn, key, entry, now, expires_at, size):
        total, count, evictions = _STATS.unpack_from(self._map)
        entries, order = self._entries, self._order
        old = txn.get(key, db=entries)
        if old is not None:
            txn.delete(_SEQ.pack(HEADER.unpack_from(old)[2]), db=order)
            total -= len(old)
            count -= 1
        cursor = txn.cursor(db=order)
        seq = cursor.last() and _SEQ.unpack(cursor.key())[0] + 1 or 1
        steps = 0
        while total + size > self.max_bytes and steps < _MAX_EVICT_STEPS:
            steps += 1
            if not cursor.first():
                break
            victim = cursor.value()
            value = txn.get(victim, db=entries)
            ref = _STATS.size + _ref(victim)
            if (
                value is not None
                and self._map[ref]
                and HEADER.unpack_from(value)[1] > now
            ):
                self._map[ref] = 0  # CLOCK: a second chance, at the back
                cursor.delete()
                txn.put(_SEQ.pack(seq), victim, db=order)
                stored_at, expires_at_v, _ = HEADER.unpack_from(value)
                txn.put(
                    victim,
                    HEADER.pack(stored_at, expires_at_v, seq) + value[HEADER.size :],
                    db=entries,
                )
                seq += 1
                continue
            cursor.delete()
            if value is not None:
                txn.delete(victim, db=entries)
                total -= len(value)
                count -= 1
                evictions += 1
        if total + size > self.max_bytes:
            return False
        txn.put(_SEQ.pack(seq), key, db=order)
        txn.put(key, HEADER.pack(now, expires_at, seq) + entry, db=entries)
        self._map[_STATS.size + _ref(key)] = 0
        if self._pause is not None and os.path.exists(self._pause):
            _paused(self._pause)
        _STATS.pack_into(self._map, 0, total + size, count + 1, evictions)
        return True

    def delete(self, match=None):
        """Delete every entry, or those `match(entry bytes)` accepts; how many."""
        env = self._open()
        deleted = 0
        with env.begin(write=True) as txn:
            total, count, evictions = _STATS.unpack_from(self._map)
            cursor = txn.cursor(db=self._entries)
            for key, value in list(cursor.iternext()):
                if match is not None and not match(value[HEADER.size :]):
                    continue
                txn.delete(key, db=self._entries)
                txn.delete(_SEQ.pack(HEADER.unpack_from(value)[2]), db=self._order)
                total -= len(value)
                count -= 1
                deleted += 1
            _STATS.pack_into(self._map, 0, max(total, 0), max(count, 0), evictions)
        return deleted

    def close(self):
        if self._pid == os.getpid() and self._env is not None:
            self._env.close()
        self._env = self._pid = None


def _ref(key):
    return int.from_bytes(key[:4], 'little') % REF_SLOTS


def _paused(marker):
    monkey = sys.modules.get('gevent.monkey')
    sleep = monkey.get_original('time', 'sleep') if monkey else time.sleep
    with open(marker + '.writing', 'w') as f:
        f.write(str(os.getpid()))
    os.replace(marker + '.writing', marker + '.paused')  # ORDER: whole, then seen
    while True:
        sleep(3600)  # NOTE: the whole process stops here, holding the writer's lock


def read_stats(path):
    """{'bytes', 'entries', 'evictions'} of the store in `path`, read from its
    ``stats`` file alone (the master, which never opens the environment)."""
    try:
        with open(os.path.join(path, 'stats'), 'rb') as f:
            data = f.read(_STATS.size)
    except OSError:
        data = b''
    if len(data) < _STATS.size:
        return {'bytes': 0, 'entries': 0, 'evictions': 0}
    return dict(
        zip(('bytes', 'entries', 'evictions'), _STATS.unpack(data), strict=True)
    )


def new_dir(parent=None):
    """A fresh directory for a store, named for this process
    (``aegisflow-cache-<pid>-<random>``), in /dev/shm when it exists (memory, no
    disk). The directories of processes that are gone are removed first: a master
    killed outright cannot remove its own (`sweep`)."""
    if parent is None and os.path.isdir('/dev/shm'):
        parent = '/dev/shm'
    sweep(parent or tempfile.gettempdir())
    return tempfile.mkdtemp(prefix=f'aegisflow-cache-{os.getpid()}-', dir=parent)


def sweep(parent):
    """Remove the store directories in `parent` whose process is gone; their
    paths."""
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        found = _DIR.match(name)
        if found is None:
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            path = os.path.join(parent, name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except PermissionError:
            pass  # alive, another user's
    return removed


_DIR = re.compile(r'aegisflow-cache-(\d+)-\w+\Z')
