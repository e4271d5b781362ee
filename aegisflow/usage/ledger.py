"""The usage ledger, written in batches by the master's aggregator: embedded SQLite
(WAL) on one host, or a PostgreSQL server that gateways on several hosts share (see
`aegisflow.usage.database`).

One row per answered request. Rows are appended in one transaction per batch; when the
database refuses a write (disk full, locked, read-only), the error is logged and
counted, the rows stay pending in memory, and the next flush tries again, oldest
first. Pending rows are capped (`max_pending`); past the cap the oldest are dropped and
counted, so a dead disk cannot grow the master without bound.

Each batch also adds itself, in the same transaction, to ``usage_hourly``: one row per
hour, tenant, key, model and provider with the sums a usage query reports. Retention
(`prune`) deletes per-request rows only; the hourly rollups stay, so totals and budget
spend outlive the detail. A ledger from an older release is brought up to date in
place when first opened (`_migrate`; ``PRAGMA user_version`` records the schema);
a PostgreSQL ledger gets the columns added since (``ADD COLUMN IF NOT EXISTS``).
``endpoint`` names the API the request came in on (``chat``, ``messages``,
``responses``, ``embeddings``; empty for rows written before it existed).
``cache_hit`` marks an answer served by the response cache: it spent no tokens and
no money (its token and cost columns are zero); ``saved_usd`` is what it would
have cost.

NOTE: the rollup rows of a batch are upserted in key order, so two gateways flushing
into one PostgreSQL ledger lock the same rows in the same order and cannot deadlock.
"""

import collections
import logging
import threading

from aegisflow.usage.database import ERRORS
from aegisflow.usage.database import Database
from aegisflow.usage.keystore import SCHEMA as KEYS_SCHEMA

log = logging.getLogger('aegisflow.ledger')

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    response_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    status INTEGER NOT NULL,
    streamed INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    duration_ms REAL NOT NULL,
    ttft_ms REAL,
    attempts INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    endpoint TEXT NOT NULL DEFAULT '',
    cache_hit INTEGER NOT NULL DEFAULT 0,
    saved_usd REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts_ns);
CREATE INDEX IF NOT EXISTS usage_tenant_ts ON usage (tenant, ts_ns);
CREATE TABLE IF NOT EXISTS usage_hourly (
    hour_ns INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    duration_ms REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (hour_ns, tenant, key_name, model, provider)
);
"""
SCHEMA_VERSION = 5
_HOURLY_SINCE = 2  # the first schema with usage_hourly
HOUR_NS = 3600 * 10**9
ROLLUP_SUMS = (
    'requests',
    'errors',
    'prompt_tokens',
    'completion_tokens',
    'cached_tokens',
    'cache_write_tokens',
    'reasoning_tokens',
    'cost_usd',
    'duration_ms',  # summed: the average is duration_ms / requests
)
_ROLLUP_KEYS = ('hour_ns', 'tenant', 'key_name', 'model', 'provider')
_UPSERT = (
    f'INSERT INTO usage_hourly ({", ".join(_ROLLUP_KEYS + ROLLUP_SUMS)}) '
    f'VALUES ({", ".join("?" for _ in _ROLLUP_KEYS + ROLLUP_SUMS)}) '
    f'ON CONFLICT ({", ".join(_ROLLUP_KEYS)}) DO UPDATE SET '
    + ', '.join(f'{c} = usage_hourly.{c} + excluded.{c}' for c in ROLLUP_SUMS)
)
# an error is a status >= 400 or an outcome other than ok (a broken stream, an abort)
ERROR_SQL = "CASE WHEN status >= 400 OR outcome != 'ok' THEN 1 ELSE 0 END"
_BACKFILL = (
    f'INSERT INTO usage_hourly ({", ".join(_ROLLUP_KEYS + ROLLUP_SUMS)}) '
    f'SELECT ts_ns - ts_ns % {HOUR_NS}, tenant, key_name, model, provider, COUNT(*), '
    f'SUM({ERROR_SQL}), SUM(prompt_tokens), SUM(completion_tokens), '
    'SUM(cached_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), '
    'SUM(cost_usd), SUM(duration_ms) FROM usage GROUP BY 1, 2, 3, 4, 5'
)
# rollups written before they summed durations: filled from the rows still kept
_FILL_DURATIONS = (
    'UPDATE usage_hourly SET duration_ms = COALESCE((SELECT SUM(u.duration_ms) '
    f'FROM usage u WHERE u.ts_ns >= usage_hourly.hour_ns AND u.ts_ns < '
    f'usage_hourly.hour_ns + {HOUR_NS} AND u.tenant = usage_hourly.tenant AND '
    'u.key_name = usage_hourly.key_name AND u.model = usage_hourly.model AND '
    'u.provider = usage_hourly.provider), 0)'
)
COLUMNS = (
    'ts_ns',
    'request_id',
    'tenant',
    'key_name',
    'model',
    'requested_model',
    'response_model',
    'provider',
    'status',
    'streamed',
    'outcome',
    'prompt_tokens',
    'completion_tokens',
    'cached_tokens',
    'reasoning_tokens',
    'cost_usd',
    'duration_ms',
    'ttft_ms',
    'attempts',
    'cache_write_tokens',
    'endpoint',
    'cache_hit',
    'saved_usd',
)
# columns a PostgreSQL ledger created by an older release lacks
_PG_ADDED = (
    "ALTER TABLE usage ADD COLUMN IF NOT EXISTS endpoint TEXT NOT NULL DEFAULT ''",
    'ALTER TABLE usage ADD COLUMN IF NOT EXISTS cache_hit INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE usage ADD COLUMN IF NOT EXISTS saved_usd REAL NOT NULL DEFAULT 0',
    'ALTER TABLE usage_hourly ADD COLUMN IF NOT EXISTS duration_ms '
    'DOUBLE PRECISION NOT NULL DEFAULT 0',
)
_AUDIT_INSERT = (
    'INSERT INTO audit (ts_ns, actor, action, tenant, target, detail) '
    'VALUES (?, ?, ?, ?, ?, ?)'
)
_INSERT = (
    f'INSERT INTO usage ({", ".join(COLUMNS)}) '
    f'VALUES ({", ".join("?" for _ in COLUMNS)})'
)


def _migrate(db, version):
    """Bring a ledger written by an older release (schema `version`) up to
    `SCHEMA`: columns added since are added with their default (old rows keep
    their data); hourly rollups new to it are built from the rows there, and
    rollups that predate summed durations get them from the rows still kept (hours
    already pruned keep 0). One transaction."""
    db.execute('BEGIN IMMEDIATE')
    try:
        have = {row[1] for row in db.execute('PRAGMA table_info(usage)')}
        hourly = {row[1] for row in db.execute('PRAGMA table_info(usage_hourly)')}
        if 'cache_write_tokens' not in have:
            db.execute(
                'ALTER TABLE usage ADD COLUMN '
                'cache_write_tokens INTEGER NOT NULL DEFAULT 0'
            )
        if 'endpoint' not in have:
            db.execute("ALTER TABLE usage ADD COLUMN endpoint TEXT NOT NULL DEFAULT ''")
        if 'cache_hit' not in have:
            db.execute(
                'ALTER TABLE usage ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0'
            )
            db.execute('ALTER TABLE usage ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0')
        if 'duration_ms' not in hourly:
            db.execute(
                'ALTER TABLE usage_hourly ADD COLUMN '
                'duration_ms REAL NOT NULL DEFAULT 0'
            )
            if version >= _HOURLY_SINCE:
                db.execute(_FILL_DURATIONS)
        if version < _HOURLY_SINCE:
            db.execute('DELETE FROM usage_hourly')
            db.execute(_BACKFILL)
        db.execute(f'PRAGMA user_version = {SCHEMA_VERSION}')
        db.execute('COMMIT')
    except BaseException:
        db.rollback()
        raise


_I = {name: i for i, name in enumerate(COLUMNS)}
_KEY_AT = tuple(_I[c] for c in ('tenant', 'key_name', 'model', 'provider'))
_SUM_AT = tuple(_I[c] for c in ROLLUP_SUMS[2:])  # after requests and errors
_TS, _STATUS, _OUTCOME = _I['ts_ns'], _I['status'], _I['outcome']


def rollup(rows):
    """The ``usage_hourly`` rows (keys, then `ROLLUP_SUMS`) that `rows` add."""
    out = {}
    for row in rows:
        k = (row[_TS] - row[_TS] % HOUR_NS,) + tuple(row[i] for i in _KEY_AT)
        sums = out.get(k)
        if sums is None:
            sums = out[k] = [0] * len(ROLLUP_SUMS)
        sums[0] += 1
        sums[1] += row[_STATUS] >= 400 or row[_OUTCOME] != 'ok'
        for j, i in enumerate(_SUM_AT, 2):
            sums[j] += row[i] or 0
    return [k + tuple(v) for k, v in sorted(out.items())]


def _write_usage(db, rows):
    db.executemany(_INSERT, rows)
    db.executemany(_UPSERT, rollup(rows))


def _write_audit(db, rows):
    db.executemany(_AUDIT_INSERT, rows)


class Ledger:
    def __init__(self, target, *, max_pending=1_000_000):
        """`target`: a SQLite path, a storage config or a `Database`."""
        self.database = Database.of(target)
        self.pending = collections.deque()
        self.pending_audit = collections.deque()  # policy decisions, as audit rows
        self.max_pending = max_pending
        self.errors = 0
        self.dropped = 0
        self.written = 0
        self.pruned = 0
        # NOTE: flush and prune run on the aggregator thread, disconnect on the thread
        # that forks: one connection, used by one of them at a time.
        self._lock = threading.RLock()
        self._db = None

    def _connect(self):
        if self._db is None:
            database = self.database
            db = database.connect(timeout=1.0)
            try:
                if database.dialect == 'sqlite':
                    (version,) = db.execute('PRAGMA user_version').fetchone()
                    database.create_schema(db, SCHEMA + KEYS_SCHEMA)
                    if version < SCHEMA_VERSION:
                        _migrate(db, version)
                else:
                    database.create_schema(db, SCHEMA + KEYS_SCHEMA)
                    for statement in _PG_ADDED:
                        db.execute(statement)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def add(self, row):
        self.pending.append(row)
        if len(self.pending) > self.max_pending:
            self.pending.popleft()
            self.dropped += 1

    def add_audit(self, row):
        """(ts_ns, actor, action, tenant, target, detail JSON) for the audit log."""
        self.pending_audit.append(row)
        if len(self.pending_audit) > self.max_pending:
            self.pending_audit.popleft()
            self.dropped += 1

    def flush(self, batch=5000):
        """Write pending rows; returns how many were written. Never raises."""
        with self._lock:
            return self._flush(batch)

    def _flush(self, batch):
        written = self._drain(self.pending, batch, _write_usage, 'usage ledger')
        self.written += written
        if self.pending_audit and len(self.pending) == 0:
            self._drain(self.pending_audit, batch, _write_audit, 'audit log')
        return written

    def _drain(self, pending, batch, write, what):
        """Write `pending` oldest first, a transaction per `batch` rows; stop at the
        first refusal (logged, counted; the rows stay). How many were written."""
        total = 0
        while pending:
            rows = [pending[i] for i in range(min(batch, len(pending)))]
            try:
                db = self._connect()
                db.execute('BEGIN')
                write(db, rows)
                db.execute('COMMIT')
            except ERRORS as exc:
                self.errors += 1
                self._reset()
                log.error(
                    '%s write failed; %d rows kept for a retry',
                    what,
                    len(pending),
                    extra={'error': str(exc)},
                )
                return total
            for _ in rows:
                pending.popleft()
            total += len(rows)
        return total

    def _reset(self):
        if self._db is not None:
            try:
                self._db.rollback()
                self._db.close()
            except ERRORS:
                pass
            self._db = None

    def prune(self, before_ns):
        """Delete per-request rows older than `before_ns`; the count, or None when the
        database refused (tried again at the next prune)."""
        with self._lock:
            return self._prune(before_ns)

    def _prune(self, before_ns):
        try:
            db = self._connect()
            deleted = db.execute(
                'DELETE FROM usage WHERE ts_ns < ?', (before_ns,)
            ).rowcount
        except ERRORS as exc:
            self.errors += 1
            self._reset()
            log.error('usage ledger prune failed', extra={'error': str(exc)})
            return None
        self.pruned += deleted
        return deleted

    def ensure(self):
        """Create the file and its schema now (so readers never find it empty)."""
        self._connect()
        self.disconnect()

    def disconnect(self):
        """Close the connection without writing; the next flush reconnects.

        NOTE: called before every fork: SQLite forbids carrying a connection into a
        child, whose exit could close the copy and checkpoint the WAL behind the
        parent's back.
        """
        with self._lock:
            if self._db is not None:
                try:
                    self._db.close()
                except ERRORS:
                    pass
                self._db = None

    def close(self):
        self.flush()
        self._reset()


def spent_since(target, tenant, key_name, start_unix, end_unix):
    """Nano-USD the ledger at `target` (as for `Ledger`) recorded for a tenant (or
    one of its keys) between two unix times; 0 when there is no ledger yet.

    Whole hours are read from the hourly rollups (so spend outlives retention), the
    partial hours at either end from the per-request rows."""
    database = Database.of(target)
    if not database.exists():
        return 0
    start, end = int(start_unix * 1e9), int(end_unix * 1e9)
    first = -(-start // HOUR_NS) * HOUR_NS  # the first whole hour
    last = end - end % HOUR_NS  # the end of the last whole hour
    who = 'tenant = ?' + ('' if key_name is None else ' AND key_name = ?')
    who_args = [tenant] + ([] if key_name is None else [key_name])
    rows_sql = f'SELECT COALESCE(SUM(cost_usd), 0) FROM usage WHERE {who} AND '
    if first < last:
        parts = [
            (rows_sql + 'ts_ns >= ? AND ts_ns < ?', [*who_args, start, first]),
            (rows_sql + 'ts_ns >= ? AND ts_ns < ?', [*who_args, last, end]),
            (
                'SELECT COALESCE(SUM(cost_usd), 0) FROM usage_hourly WHERE '
                f'{who} AND hour_ns >= ? AND hour_ns < ?',
                [*who_args, first, last],
            ),
        ]
    else:
        parts = [(rows_sql + 'ts_ns >= ? AND ts_ns < ?', [*who_args, start, end])]
    total = 0.0
    try:
        db = database.connect(readonly=True)
        try:
            for sql, args in parts:
                total += float(db.execute(sql, args).fetchone()[0])
        finally:
            db.close()
    except ERRORS as exc:
        log.error('could not read spend from the ledger', extra={'error': str(exc)})
        return 0
    return round(total * 1e9)
