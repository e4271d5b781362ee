"""Keys created through the admin API, and the audit log, in the ledger database.

``api_keys``: one row per key created at run time (its SHA-256 digest only; the key
itself is shown once, to the admin who created it), with its scope (models, limits,
budget, expiry, metadata: `aegisflow.config.scope`, as JSON) and, after a rotation
with a grace period, the previous digest and until when it still works. ``audit``:
one row per admin action. Both live next to the usage rows so they survive restarts
and, with a shared database, are seen by every host.

Workers learn about changes through a generation number (``Generation``): the worker
that creates or revokes a key bumps it, and every worker compares it with the one it
loaded on each request (one read), reloading its key index when it moved.
"""

import hashlib
import secrets
import time
from typing import NamedTuple

import orjson

from aegisflow.usage.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    revoked_ns INTEGER,
    scope TEXT NOT NULL DEFAULT '{}',
    updated_ns INTEGER NOT NULL DEFAULT 0,
    prev_digest TEXT,
    prev_until_ns INTEGER
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
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    deleted_ns INTEGER
);
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


class StoredKey(NamedTuple):
    """A live key created at run time, as `KeyStore.active` reads it."""

    tenant: str
    name: str
    digest: bytes
    id: str
    scope: dict  # the JSON form of its `KeyScope`
    prev_digest: bytes | None  # the secret before a rotation, during its grace
    prev_until_ns: int
    updated_ns: int = 0  # when it was created or last changed
    created_ns: int = 0


# columns added to api_keys since its first release
_ADDED = (
    "scope TEXT NOT NULL DEFAULT '{}'",
    'updated_ns INTEGER NOT NULL DEFAULT 0',
    'prev_digest TEXT',
    'prev_until_ns INTEGER',
)


_SELECT_KEYS = (
    'SELECT tenant, name, digest, id, scope, prev_digest, prev_until_ns, '
    'updated_ns, created_ns, revoked_ns FROM api_keys'
)


def _stored(row):
    """The `StoredKey` of an `_SELECT_KEYS` row (its last change: an update or
    the revocation)."""
    t, n, d, i, scope, prev, until, updated, created, revoked = row
    return StoredKey(
        t,
        n,
        bytes.fromhex(d),
        i,
        orjson.loads(scope or '{}'),
        bytes.fromhex(prev) if prev else None,
        until or 0,
        max(updated or 0, revoked or 0),
        created or 0,
    )


def _new_secret():
    """(a new key, its SHA-256 in hex)."""
    key = 'sk-af-' + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


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
                self._add_columns(db)
            except BaseException:
                db.close()
                raise
            self._schema_ready = True
        return db

    def _add_columns(self, db):
        """Bring an ``api_keys`` table from an older release up to `SCHEMA`."""
        if self.database.dialect == 'sqlite':
            have = {row[1] for row in db.execute('PRAGMA table_info(api_keys)')}
            missing = [c for c in _ADDED if c.split()[0] not in have]
            for column in missing:
                db.execute(f'ALTER TABLE api_keys ADD COLUMN {column}')
            return
        for column in _ADDED:
            db.execute(f'ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS {column}')

    def version(self):
        """A value that changes whenever a key is created or revoked, on any host
        sharing the database (polled by the master for shared ledgers)."""
        db = self._db()
        try:
            return tuple(
                db.execute(
                    'SELECT COUNT(*), COUNT(revoked_ns), '
                    'COALESCE(MAX(created_ns), 0), COALESCE(MAX(revoked_ns), 0), '
                    'COALESCE(MAX(updated_ns), 0) FROM api_keys'
                ).fetchone()
            ) + tuple(
                db.execute(
                    'SELECT COUNT(*), COALESCE(MAX(updated_ns), 0), '
                    'COALESCE(MAX(deleted_ns), 0) FROM tenants'
                ).fetchone()
            )
        finally:
            db.close()

    def active(self):
        """[`StoredKey`] of the keys not revoked."""
        if not self.database.exists():
            return []
        db = self._db()
        try:
            rows = db.execute(_SELECT_KEYS + ' WHERE revoked_ns IS NULL').fetchall()
        finally:
            db.close()
        return [_stored(row) for row in rows]

    def changes(self, since_ns):
        """[(StoredKey, revoked)] of the keys created, changed or revoked at or
        after `since_ns` (their own clock: callers re-read with a margin)."""
        db = self._db()
        try:
            rows = db.execute(
                _SELECT_KEYS + ' WHERE updated_ns >= ? OR revoked_ns >= ?',
                (since_ns, since_ns),
            ).fetchall()
        finally:
            db.close()
        return [(_stored(row), row[-1] is not None) for row in rows]

    # -- tenants created at run time ---------------------------------------------
    def tenants(self):
        """{id: (spec dict, updated_ns)} of the live run-time tenants."""
        if not self.database.exists():
            return {}
        db = self._db()
        try:
            return {
                i: (orjson.loads(spec), updated)
                for i, spec, updated in db.execute(
                    'SELECT id, spec, updated_ns FROM tenants WHERE deleted_ns IS NULL'
                )
            }
        finally:
            db.close()

    def create_tenant(self, tenant_id, spec):
        """Whether it was created (False: a live tenant has that id)."""
        now = time.time_ns()
        db = self._db()
        try:
            self.database.begin_exclusive(db)
            row = db.execute(
                'SELECT deleted_ns FROM tenants WHERE id = ?', (tenant_id,)
            ).fetchone()
            if row is not None and row[0] is None:
                db.execute('ROLLBACK')
                return False
            db.execute('DELETE FROM tenants WHERE id = ?', (tenant_id,))
            db.execute(
                'INSERT INTO tenants (id, spec, created_ns, updated_ns) '
                'VALUES (?, ?, ?, ?)',
                (tenant_id, orjson.dumps(spec).decode(), now, now),
            )
            db.execute('COMMIT')
        finally:
            db.close()
        return True

    def update_tenant(self, tenant_id, spec):
        """Whether a live tenant was changed."""
        db = self._db()
        try:
            row = db.execute(
                'UPDATE tenants SET spec = ?, updated_ns = ? '
                'WHERE id = ? AND deleted_ns IS NULL RETURNING id',
                (orjson.dumps(spec).decode(), time.time_ns(), tenant_id),
            ).fetchone()
        finally:
            db.close()
        return row is not None

    def delete_tenant(self, tenant_id):
        """Delete a live tenant and revoke its keys (its usage rows stay); how
        many keys were revoked, or None when there was no such tenant."""
        now = time.time_ns()
        db = self._db()
        try:
            self.database.begin_exclusive(db)
            row = db.execute(
                'UPDATE tenants SET deleted_ns = ? '
                'WHERE id = ? AND deleted_ns IS NULL RETURNING id',
                (now, tenant_id),
            ).fetchone()
            if row is None:
                db.execute('ROLLBACK')
                return None
            revoked = db.execute(
                'UPDATE api_keys SET revoked_ns = ? '
                'WHERE tenant = ? AND revoked_ns IS NULL RETURNING id',
                (now, tenant_id),
            ).fetchall()
            db.execute('COMMIT')
        finally:
            db.close()
        return len(revoked)

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
                    **orjson.loads(scope or '{}'),
                }
                for i, n, c, r, scope in db.execute(
                    'SELECT id, name, created_ns, revoked_ns, scope FROM api_keys '
                    'WHERE tenant = ? ORDER BY created_ns',
                    (tenant,),
                )
            ]
        finally:
            db.close()

    def create(self, tenant, name, taken_names, scope=None):
        """(id, key): the key is returned here and nowhere else. `scope`: its JSON
        form (`aegisflow.config.scope.scope_to_json`)."""
        key, digest = _new_secret()
        key_id = 'key_' + secrets.token_hex(8)
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
            now = time.time_ns()
            db.execute(
                'INSERT INTO api_keys '
                '(id, tenant, name, digest, created_ns, scope, updated_ns) '
                'VALUES (?, ?, ?, ?, ?, ?, ?)',
                (
                    key_id,
                    tenant,
                    name,
                    digest,
                    now,
                    orjson.dumps(scope or {}).decode(),
                    now,
                ),
            )
            db.execute('COMMIT')
        finally:
            db.close()
        return key_id, key

    def get(self, key_id):
        """(tenant, name, scope dict) of a live key, or None."""
        db = self._db()
        try:
            row = db.execute(
                'SELECT tenant, name, scope FROM api_keys '
                'WHERE id = ? AND revoked_ns IS NULL',
                (key_id,),
            ).fetchone()
        finally:
            db.close()
        return None if row is None else (row[0], row[1], orjson.loads(row[2] or '{}'))

    def update(self, key_id, scope):
        """Replace a live key's scope (its JSON form); its tenant, or None."""
        db = self._db()
        try:
            row = db.execute(
                'UPDATE api_keys SET scope = ?, updated_ns = ? '
                'WHERE id = ? AND revoked_ns IS NULL RETURNING tenant',
                (orjson.dumps(scope).decode(), time.time_ns(), key_id),
            ).fetchone()
            return None if row is None else row[0]
        finally:
            db.close()

    def rotate(self, key_id, grace_s=0):
        """(tenant, new key) for a live key given a new secret, or None. The old
        secret works `grace_s` more seconds (0: it stops at once)."""
        key, digest = _new_secret()
        now = time.time_ns()
        db = self._db()
        try:
            row = db.execute(
                'UPDATE api_keys SET prev_digest = digest, prev_until_ns = ?, '
                'digest = ?, updated_ns = ? '
                'WHERE id = ? AND revoked_ns IS NULL RETURNING tenant',
                (now + int(grace_s * 1e9), digest, now, key_id),
            ).fetchone()
        finally:
            db.close()
        return None if row is None else (row[0], key)

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
