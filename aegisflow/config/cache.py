"""The ``cache`` section (the response cache), and the ``cache`` override a route
or a tenant may carry (``{enabled: false}``, or another ``ttl_s``)."""

import os
from dataclasses import dataclass
from dataclasses import field

BACKENDS = ('local', 'redis')
NAMESPACES = ('tenant', 'key')
ENDPOINTS = ('chat', 'messages', 'responses', 'embeddings')
_KEYS = (
    'enabled',
    'backend',
    'ttl_s',
    'max_entry_bytes',
    'max_bytes',
    'namespace_by',
    'only_deterministic',
    'endpoints',
    'path',
    'redis_url',
    'redis_url_env',
    'redis_timeout_ms',
)
_OVERRIDE_KEYS = ('enabled', 'ttl_s')
MAX_TTL_S = 365 * 86400


@dataclass(frozen=True, slots=True)
class CacheOverride:
    """A route's or a tenant's word on the cache; None: the section's."""

    enabled: bool | None = None
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool = False
    backend: str = 'local'
    ttl_s: float = 3600.0
    max_entry_bytes: int = 1 << 20
    max_bytes: int = 256 << 20  # the local store; sized at start (a restart changes it)
    namespace_by: str = 'tenant'
    only_deterministic: bool = False
    endpoints: tuple = ENDPOINTS  # the endpoints whose answers are cached
    path: str | None = None  # the local store's directory; None: one in /dev/shm
    redis_url: str | None = field(default=None, repr=False)  # None: state.redis_url
    redis_timeout_ms: int = 100


def read_cache(builder, node, state):
    """`CacheConfig` from the ``cache`` node (absent: the cache is off)."""
    d = CacheConfig()
    if node.missing or not node.mapping(_KEYS):
        return d  # NOTE: a written section is on unless it says enabled: false
    backend = node.get('backend').str(d.backend, choices=BACKENDS)
    enabled = node.get('enabled').bool(True)
    url = builder.redis_url(node, None) or state.redis_url
    if enabled and backend == 'redis' and url is None:
        node.get('redis_url').fail(
            'a redis:// URL (or redis_url_env, or state.redis_url) for backend redis'
        )
    endpoints = ENDPOINTS
    enode = node.get('endpoints')
    if not enode.missing and enode.mapping(ENDPOINTS):
        endpoints = tuple(e for e in ENDPOINTS if enode.get(e).bool(True))
    path = node.get('path').str(None, expected='a directory path')
    return CacheConfig(
        enabled=enabled,
        backend=backend,
        ttl_s=node.get('ttl_s').num(d.ttl_s, min=1, max=MAX_TTL_S),
        max_entry_bytes=node.get('max_entry_bytes').int(
            d.max_entry_bytes, min=1024, max=64 << 20
        ),
        max_bytes=node.get('max_bytes').int(d.max_bytes, min=1 << 20, max=1 << 40),
        namespace_by=node.get('namespace_by').str(d.namespace_by, choices=NAMESPACES),
        only_deterministic=node.get('only_deterministic').bool(False),
        endpoints=endpoints,
        path=os.path.join(builder.base_dir, path) if path else None,
        redis_url=url,
        redis_timeout_ms=node.get('redis_timeout_ms').int(
            d.redis_timeout_ms, min=1, max=60000
        ),
    )


def read_override(node):
    """A route's or a tenant's ``cache`` (absent: None)."""
    if node.missing or not node.mapping(_OVERRIDE_KEYS):
        return None
    return CacheOverride(
        enabled=node.get('enabled').bool(None),
        ttl_s=node.get('ttl_s').num(None, min=1, max=MAX_TTL_S),
    )
