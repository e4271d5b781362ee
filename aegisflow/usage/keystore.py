"""Keys created through the admin API, and the audit log, in the ledger database.

``api_keys``: one row per key created at run time (its SHA-256 digest only; the key
itself is shown once, to the admin who created it). ``audit``: one row per admin
action. Both live next to the usage rows so they survive restarts and, with a shared
database, are seen by every host.

Workers learn about changes through a generation number (``Generation``): the worker
that creates or revokes a key bumps it, and every worker compares it with the one it
loaded on each request (one read), reloading its key index when it moved.
"""

import hashlib
import secrets
import time

import orjson

from aegisflow.usage.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    revoked_ns INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    tenant TEXT,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ns);
"""


class Generation:
    """A counter every worker can read; `words[index]` in shared memory, or a list."""

    __slots__ = ('words', 'index')

    def __init__(self, words=None, index=0):
        self.words = words if words is not None else [0]
        self.index = index

    def get(self):
        return self.words[self.index]

    def bump(self):
        # NOTE: two workers bumping at once may lose one increment; the value still
        # changes, which is all readers look for.
        self.words[self.index] = self.words[self.index] + 1


class KeyStore:
    def __init__(self, target):
        """`target`: a SQLite path, a storage config or a `Database`."""
        self.database = Database.of(target)
        self._schema_ready = False

    def _db(self):
        db = self.database.connect()
        if not self._schema_ready:
            try:
                self.database.create_schema(db, SCHEMA)
            except BaseException:
                db.close()
                raise
            self._schema_ready = True
        return db

    def version(self):
        """A value that changes whenever a key is created or revoked, on any host
        sharing the database (polled by the master for shared ledgers)."""
        db = self._db()
        try:
            return tuple(
                db.execute(
                    'SELECT COUNT(*), COUNT(revoked_ns), '
                    'COALESCE(MAX(created_ns), 0), COALESCE(MAX(revoked_ns), 0) '
                    'FROM api_keys'
                ).fetchone()
            )
        finally:
            db.close()

    def active(self):
        """[(tenant, name, digest bytes, id)] of keys not revoked."""
        if not self.database.exists():
            return []
        db = self._db()
        try:
            return [
                (t, n, bytes.fromhex(d), i)
                for t, n, d, i in db.execute(
                    'SELECT tenant, name, digest, id FROM api_keys '
                    'WHERE revoked_ns IS NULL'
                )
            ]
        finally:
            db.close()

    def listing(self, tenant):
        db = self._db()
        try:
            return [
                {
                    'id': i,
                    'name': n,
                    'source': 'admin',
                    'created_ns': c,
                    'revoked_ns': r,
                }
                for i, n, c, r in db.execute(
                    'SELECT id, name, created_ns, revoked_ns FROM api_keys '
                    'WHERE tenant = ? ORDER BY created_ns',
                    (tenant,),
                )
            ]
        finally:
            db.close()

    def create(self, tenant, name, taken_names):
        """(id, key): the key is returned here and nowhere else."""
        key = 'sk-af-' + secrets.token_urlsafe(32)
        key_id = 'key_' + secrets.token_hex(8)
        digest = hashlib.sha256(key.encode()).hexdigest()
        db = self._db()
        try:
            self.database.begin_exclusive(db)
            live = {
                n
                for (n,) in db.execute(
                    'SELECT name FROM api_keys WHERE tenant = ? AND revoked_ns IS NULL',
                    (tenant,),
                )
            }
            if name in live or name in taken_names:
                db.execute('ROLLBACK')
                return None, None
            db.execute(
                'INSERT INTO api_keys (id, tenant, name, digest, created_ns) '
                'VALUES (?, ?, ?, ?, ?)',
                (key_id, tenant, name, digest, time.time_ns()),
            )
            db.execute('COMMIT')
        finally:
            db.close()
        return key_id, key

    def revoke(self, key_id):
        """The revoked key's tenant, or None when there is no such live key."""
        db = self._db()
        try:
            row = db.execute(
                'UPDATE api_keys SET revoked_ns = ? '
                'WHERE id = ? AND revoked_ns IS NULL RETURNING tenant',
                (time.time_ns(), key_id),
            ).fetchone()
            return None if row is None else row[0]
        finally:
            db.close()

    def audit(self, actor, action, *, tenant=None, target=None, **detail):
        db = self._db()
        try:
            db.execute(
                'INSERT INTO audit (ts_ns, actor, action, tenant, target, detail) '
                'VALUES (?, ?, ?, ?, ?, ?)',
                (
                    time.time_ns(),
                    actor,
                    action,
                    tenant,
                    target,
                    orjson.dumps(detail).decode(),
                ),
            )
        finally:
            db.close()

    def audit_rows(self, *, tenant=None, action=None, start=None, end=None, limit=1000):
        if not self.database.exists():
            return []
        where, args = [], []
        for column, value in (('tenant', tenant), ('action', action)):
            if value:
                where.append(f'{column} = ?')
                args.append(value)
        if start is not None:
            where.append('ts_ns >= ?')
            args.append(int(start * 1e9))
        if end is not None:
            where.append('ts_ns < ?')
            args.append(int(end * 1e9))
        sql = 'SELECT ts_ns, actor, action, tenant, target, detail FROM audit'
        if where:
            sql += ' WHERE ' + ' AND '.join(where)
        sql += ' ORDER BY ts_ns DESC LIMIT ?'
        args.append(limit)
        db = self._db()
        try:
            return [
                {
                    'ts_ns': ts,
                    'actor': a,
                    'action': act,
                    'tenant': t,
                    'target': g,
                    'detail': orjson.loads(d),
                }
                for ts, a, act, t, g, d in db.execute(sql, args)
            ]
        finally:
            db.close()
