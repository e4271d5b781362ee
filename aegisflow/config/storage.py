"""The ``state`` and ``storage`` sections: where shared state and the usage
ledger live."""

import os
from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.common import _NAME

STATE_BACKENDS = ('shm', 'redis')
BACKEND_ERROR_MODES = ('fail_open', 'fail_closed')
STORAGE_BACKENDS = ('sqlite', 'postgresql')


@dataclass(frozen=True, slots=True)
class ShmConfig:
    ring_records: int = 4096
    metric_cells: int = 2048
    lock_timeout_ms: int = 250
    keep_names: bool = False
    # entries of the shared limits table (each limit and budget period of each
    # tenant, key, user and model group that is in use takes one)
    limit_entries: int = 16384
    # names of keys created at run time that get their own label in records and
    # metrics (past it, 'other')
    runtime_names: int = 4096


@dataclass(frozen=True, slots=True)
class StateConfig:
    backend: str = 'shm'
    shm: ShmConfig = ShmConfig()
    redis_url: str | None = field(default=None, repr=False)
    on_backend_error: str = 'fail_open'
    key_prefix: str = 'aegisflow'
    redis_timeout_ms: int = 250


@dataclass(frozen=True, slots=True)
class StorageConfig:
    backend: str = 'sqlite'
    sqlite_path: str = 'aegisflow.sqlite'  # resolved against the config's directory
    dsn: str | None = field(default=None, repr=False)  # postgresql; may hold a password
    retention_days: float | None = None  # per-request rows older than this are pruned
    responses_ttl_s: float = 30 * 86400  # stored /v1/responses answers live this long
    responses_max_bytes: int = 4 * 1024 * 1024  # a larger one is not stored


class StorageSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def state(self, node):
        d = StateConfig()
        keys = (
            'backend',
            'shm',
            'redis_url',
            'redis_url_env',
            'on_backend_error',
            'key_prefix',
            'redis_timeout_ms',
        )
        if not node.mapping(keys, optional=True):
            return d
        backend = node.get('backend').str(d.backend, choices=STATE_BACKENDS)
        redis_url = self.redis_url(node, backend)
        common = dict(
            backend=backend,
            redis_url=redis_url,
            on_backend_error=node.get('on_backend_error').str(
                d.on_backend_error, choices=BACKEND_ERROR_MODES
            ),
            key_prefix=node.get('key_prefix').str(
                d.key_prefix, check=_NAME.match, expected='letters, digits, _ . -'
            ),
            redis_timeout_ms=node.get('redis_timeout_ms').int(
                d.redis_timeout_ms, min=1, max=60_000
            ),
        )
        shm = node.get('shm')
        ds = ShmConfig()
        if not shm.mapping(tuple(ShmConfig.__dataclass_fields__), optional=True):
            return StateConfig(**common)
        ring = shm.get('ring_records').int(ds.ring_records, min=64, max=1 << 20)
        if ring & (ring - 1):
            shm.get('ring_records').fail('a power of two from 64 to 1048576')
            ring = ds.ring_records
        return StateConfig(
            **common,
            shm=ShmConfig(
                ring_records=ring,
                metric_cells=shm.get('metric_cells').int(
                    ds.metric_cells, min=64, max=1 << 20
                ),
                lock_timeout_ms=shm.get('lock_timeout_ms').int(
                    ds.lock_timeout_ms, min=1, max=10_000
                ),
                keep_names=shm.get('keep_names').bool(ds.keep_names),
                limit_entries=shm.get('limit_entries').int(
                    ds.limit_entries, min=1024, max=1 << 24
                ),
                runtime_names=shm.get('runtime_names').int(
                    ds.runtime_names, min=64, max=1 << 20
                ),
            ),
        )

    def redis_url(self, node, backend):
        url_node, env_node = node.get('redis_url'), node.get('redis_url_env')
        if not url_node.missing and not env_node.missing:
            env_node.fail('either redis_url or redis_url_env, not both', found='both')
            return None
        if not env_node.missing:
            url = self.required_env(env_node)
        elif not url_node.missing:
            url = url_node.str(expected='a redis:// URL', secret=True)
        else:
            if backend == 'redis':
                url_node.fail('a redis:// URL (or redis_url_env) for backend redis')
            return None
        if url is not None and not url.startswith(('redis://', 'rediss://', 'unix://')):
            (env_node if not env_node.missing else url_node).fail(
                'a redis://, rediss:// or unix:// URL', found='another scheme'
            )
            return None
        return url

    def storage(self, node):
        d = StorageConfig()
        if not node.mapping(
            (
                'backend',
                'sqlite_path',
                'dsn',
                'dsn_env',
                'retention_days',
                'responses_ttl_s',
                'responses_max_bytes',
            ),
            optional=True,
        ):
            return StorageConfig(sqlite_path=os.path.join(self.base_dir, d.sqlite_path))
        backend = node.get('backend').str(d.backend, choices=STORAGE_BACKENDS)
        path = node.get('sqlite_path').str(d.sqlite_path, expected='a file path')
        return StorageConfig(
            backend=backend,
            sqlite_path=os.path.join(self.base_dir, path or ''),
            dsn=self.dsn(node, backend),
            retention_days=node.get('retention_days').num(None, min=0.01, max=36500),
            responses_ttl_s=node.get('responses_ttl_s').num(
                d.responses_ttl_s, min=1, max=3650 * 86400
            ),
            responses_max_bytes=node.get('responses_max_bytes').int(
                d.responses_max_bytes, min=1024, max=1 << 30
            ),
        )

    def dsn(self, node, backend):
        """``storage.dsn`` or ``storage.dsn_env``: a PostgreSQL URI
        (postgresql://user:password@host:port/db) or libpq key=value string."""
        dsn_node, env_node = node.get('dsn'), node.get('dsn_env')
        if not dsn_node.missing and not env_node.missing:
            env_node.fail('either dsn or dsn_env, not both', found='both')
            return None
        expected = 'a PostgreSQL DSN (postgresql://... or key=value pairs)'
        if not env_node.missing:
            dsn, where = self.required_env(env_node), env_node
        elif not dsn_node.missing:
            dsn, where = dsn_node.str(expected=expected, secret=True), dsn_node
        else:
            if backend == 'postgresql':
                dsn_node.fail(f'{expected} (or dsn_env) for backend postgresql')
            return None
        if dsn is None:
            return None
        if not (dsn.startswith(('postgresql://', 'postgres://')) or '=' in dsn):
            where.fail(expected, found='another form')
            return None
        if backend != 'postgresql':
            where.fail(
                'no DSN unless storage.backend is postgresql',
                found=f'backend {backend}',
            )
        return dsn
