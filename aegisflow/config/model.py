"""The validated configuration: immutable objects built once at start.

Nothing here is mutated after loading. Secrets (provider keys) are held in fields
excluded from ``repr`` so a logged config object never shows them; tenant keys are
only ever held as SHA-256 digests.
"""

from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.cache import CacheConfig
from aegisflow.config.cache import CacheOverride
from aegisflow.config.scope import Budget  # noqa: F401 (the config's types, in one place)
from aegisflow.config.scope import KeyScope
from aegisflow.config.scope import RateLimit  # noqa: F401
from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.resilience import RetryPolicy

PROVIDER_TYPES = ('mock', 'openai', 'openai_compatible', 'anthropic', 'ollama')
PROXY_PROTOCOLS = ('off', 'v1', 'v2', 'auto')
WORKER_CLASSES = ('gthread', 'gevent', 'meinheld')
LOG_FORMATS = ('json', 'text')
LOG_LEVELS = ('debug', 'info', 'warning', 'error')
STRATEGIES = (
    'priority',
    'round_robin',
    'weighted',
    'least_latency',
    'lowest_cost',
    'custom',
)
TRACE_EXPORTERS = ('none', 'console', 'otlp_http', 'otlp_grpc')
STATE_BACKENDS = ('shm', 'redis')
BACKEND_ERROR_MODES = ('fail_open', 'fail_closed')
STORAGE_BACKENDS = ('sqlite', 'postgresql')


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = '127.0.0.1:8080'
    workers: int = 2
    # the class that won on the gateway's own work (bench/RESULTS.md, "Worker
    # classes"): cooperative, a greenlet per connection
    worker_class: str = 'gevent'
    threads: int = 1024  # gthread only
    # connections a worker holds open (in use and idle keep-alive): under gevent
    # the requests and streams it serves at once; under gthread threads plus
    # 1024, so that a worker whose every thread is busy still keeps its idle
    # clients' connections
    worker_connections: int = 10000
    max_body_bytes: int = 8 * 1024 * 1024
    timeout_s: int = 120
    graceful_timeout_s: int = 30
    keepalive_s: int = 5
    # longest pause while a request body arrives before it is refused with 408
    body_timeout_s: float = 30.0
    # longest a request line and headers may take to arrive, in total (gthread)
    header_timeout_s: float = 10.0
    # the slowest pace a body may keep after body_timeout_s (gthread; 0: none)
    body_min_bytes_per_s: int = 500
    # invalid keys per minute from one source address before it is refused (0: off)
    failed_auth_per_minute: int = 30
    # peers (ip_network objects) whose Forwarded / X-Forwarded-For is believed
    trusted_proxies: tuple = ()
    # PROXY protocol from trusted_proxies: off, v1, v2 or auto
    proxy_protocol: str = 'off'
    admin_key: str | None = field(default=None, repr=False)  # from admin_key_env


@dataclass(frozen=True, slots=True)
class MockOptions:
    """Behaviour of the built-in `mock` provider (see aegisflow/providers/mock.py)."""

    latency_ms: int = 0
    stream_chunk_delay_ms: int = 0
    stream_chunk_words: int = 1
    failure_rate: float = 0.0
    failure_status: int = 500
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    models: tuple
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    headers: tuple = ()
    query: tuple = ()  # extra query parameters on every upstream URL
    api_key_header: str | None = None  # send the key in this header, not as Bearer
    stream_usage: bool = True
    responses: bool = False  # speaks /v1/responses (openai: always)
    mock: MockOptions | None = None
    prices: dict = field(default_factory=dict)  # model -> Price, overrides the table


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str | None = None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RouteConfig:
    match: str
    targets: tuple
    strategy: str = 'priority'
    strategy_class: str | None = None  # dotted path, for strategy: custom
    cache: CacheOverride | None = None


@dataclass(frozen=True, slots=True)
class KeyConfig:
    digest: bytes = field(repr=False)
    name: str
    scope: KeyScope = KeyScope()  # its own models, limits, budget, expiry

    @property
    def rate_limit(self):
        return self.scope.rate_limit

    @property
    def budget(self):
        return self.scope.budget


@dataclass(frozen=True, slots=True)
class TenantConfig:
    id: str
    keys: tuple
    allowed_models: tuple = ('*',)
    rate_limit: RateLimit | None = None
    user_rate_limit: RateLimit | None = None
    model_limits: tuple = ()  # ((model glob, RateLimit), ...) in config order
    budget: Budget | None = None
    policies: tuple | None = None  # names of the policies it runs; None: all
    cache: CacheOverride | None = None


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    default_completion_tokens: int = 1024
    headers: bool = True


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


@dataclass(frozen=True, slots=True)
class TracesConfig:
    """Resolved from ``telemetry.traces`` and, where it is silent, OpenTelemetry's
    environment variables (`aegisflow.config.otel_env`)."""

    exporter: str = 'none'
    endpoint: str | None = None
    headers: tuple = field(default=(), repr=False)
    sample_ratio: float = 1.0
    # parent-based: an incoming traceparent's sampled flag decides (the default)
    parent_based: bool = True
    timeout_s: float = 5.0
    service_name: str = 'aegisflow'
    resource: tuple = ()  # extra resource attributes, (key, value) pairs


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    log_format: str = 'json'
    log_level: str = 'info'
    access_log: bool = True
    metrics: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    flush_interval_ms: int = 200
    traces: TracesConfig = TracesConfig()


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write_input: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    providers: tuple
    routes: tuple
    aliases: dict
    tenants: tuple
    telemetry: TelemetryConfig
    state: StateConfig = StateConfig()
    limits: LimitsConfig = LimitsConfig()
    retry: RetryPolicy = RetryPolicy()
    circuit_breaker: BreakerPolicy = BreakerPolicy()
    storage: StorageConfig = StorageConfig()
    prices: dict = field(default_factory=dict)  # model -> Price
    policies: tuple = ()  # PolicyConfig, input then output, in config order
    cache: CacheConfig = CacheConfig()
    alerts: tuple = ()  # AlertTarget (aegisflow.config.alerts)
    source: str = '<memory>'
    digest: str = ''
    # Providers left out because they are optional and their environment is unset,
    # as (name, reason) pairs, so the operator sees why in the start-up log.
    disabled: tuple = ()

    def provider(self, name):
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)
