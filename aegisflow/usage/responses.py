"""Stored ``/v1/responses`` answers, per tenant, in the ledger's database.

Two kinds of row, keyed by response id:

- a response the gateway translated (its target does not speak the Responses API):
  the response object, for ``GET /v1/responses/{id}``, and the conversation in the
  chat form, for a follow-up that names it as ``previous_response_id``;
- a response an upstream holds (passed through to an ``openai`` target): only its
  owner (tenant and provider). All tenants share the gateway's provider key, so
  nothing else stops one tenant reading, continuing or deleting another's.

A row lives ``storage.responses_ttl_s`` (default 30 days); a translated response
larger than ``storage.responses_max_bytes`` is not stored. Expired rows are
answered as missing and swept by every 256th write.

NOTE: DESIGN 1.8 keeps the request path free of I/O; this is the one exception,
bounded: a request that names ``previous_response_id`` reads one row by primary
key, and a translated response with ``store`` true writes one row before its
answer (or its stream's last event) is sent, so a follow-up sent the moment it
completes finds it. A worker keeps a few connections open and lends one per
statement. The cost is measured in bench/RESULTS.md.
"""

import logging
import threading
import time

from aegisflow.usage.database import ERRORS
from aegisflow.usage.database import Database

log = logging.getLogger('aegisflow.responses')

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL,
    body TEXT,
    history TEXT
);
CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires_ns);
"""
_SWEEP_EVERY = 256
_MAX_IDLE = 8  # connections kept open for the next statement


class Stored:
    """A stored row: `provider` is empty for a response the gateway holds (then
    `body` and `history` are its JSON texts)."""

    __slots__ = ('id', 'provider', 'body', 'history')

    def __init__(self, response_id, provider, body, history):
        self.id = response_id
        self.provider = provider
        self.body = body
        self.history = history

    @property
    def held_upstream(self):
        return bool(self.provider)


class ResponseStore:
    __slots__ = (
        'database', 'ttl_ns', 'max_bytes', 'clock', '_idle', '_lock', '_schema',
        '_writes', '_write_lock',
    )  # fmt: skip

    def __init__(self, storage, clock=time.time_ns):
        self.database = Database.of(storage)
        self.ttl_ns = int(storage.responses_ttl_s * 1e9)
        self.max_bytes = storage.responses_max_bytes
        self.clock = clock
        # NOTE: connections are lent out per statement, not kept per thread: a
        # cooperative worker runs thousands of requests, each its own greenlet
        self._idle = []
        self._lock = threading.Lock()
        self._schema = False
        self._writes = 0
        # NOTE: a worker's requests take turns to write here rather than in
        # SQLite, whose busy handler sleeps (1, 2, 5, 10 ms, ...) while another
        # connection holds the write lock
        self._write_lock = threading.Lock()

    def _borrow(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        db = self.database.connect()
        if not self._schema:
            try:
                self.database.create_schema(db, SCHEMA)
            except BaseException:
                db.close()
                raise
            self._schema = True
        return db

    def _give_back(self, db):
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(db)
                return
        db.close()

    def _run(self, sql, args, read=None):
        """Run one statement on a lent connection and `read` its cursor; a
        connection that failed is closed, and the statement tried once more on
        another."""
        for attempt in (0, 1):
            db = self._borrow()
            try:
                cursor = db.execute(sql, args)
                result = read(cursor) if read is not None else None
            except ERRORS:
                try:
                    db.close()
                except ERRORS:
                    pass
                if attempt:
                    raise
                continue
            self._give_back(db)
            return result
        raise AssertionError('unreachable')

    def save(self, response_id, tenant, provider='', body=None, history=None):
        """Store a row; False when it is larger than the cap. Raises the
        database's error when it refuses."""
        size = len(body or '') + len(history or '')
        if size > self.max_bytes:
            return False
        now = self.clock()
        with self._write_lock:
            self._insert(response_id, tenant, provider, body, history, now)
        return True

    def _insert(self, response_id, tenant, provider, body, history, now):
        self._run(
            'INSERT INTO responses (id, tenant, provider, created_ns, expires_ns, '
            'body, history) VALUES (?, ?, ?, ?, ?, ?, ?) '
            'ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, '
            'provider = excluded.provider, created_ns = excluded.created_ns, '
            'expires_ns = excluded.expires_ns, body = excluded.body, '
            'history = excluded.history',
            (response_id, tenant, provider, now, now + self.ttl_ns, body, history),
        )
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._run('DELETE FROM responses WHERE expires_ns < ?', (now,))

    def find(self, response_id, tenant):
        """The tenant's live row for `response_id`, or None (unknown, expired, or
        another tenant's: the same answer for all three)."""
        row = self._run(
            'SELECT provider, body, history FROM responses '
            'WHERE id = ? AND tenant = ? AND expires_ns > ?',
            (response_id, tenant, self.clock()),
            _one,
        )
        return None if row is None else Stored(response_id, *row)

    def delete(self, response_id, tenant):
        """Whether the tenant's row was there to delete."""
        with self._write_lock:
            deleted = self._run(
                'DELETE FROM responses WHERE id = ? AND tenant = ?',
                (response_id, tenant),
                _rowcount,
            )
        return deleted > 0


def _one(cursor):
    return cursor.fetchone()


def _rowcount(cursor):
    return cursor.rowcount
