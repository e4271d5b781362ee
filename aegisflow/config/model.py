"""The validated configuration: immutable objects built once at start.

Nothing here is mutated after loading. Secrets (provider keys) are held in fields
excluded from ``repr`` so a logged config object never shows them; tenant keys are
only ever held as SHA-256 digests.
"""

from dataclasses import dataclass
from dataclasses import field

PROVIDER_TYPES = ('mock', 'openai', 'openai_compatible')
WORKER_CLASSES = ('gthread', 'meinheld')
LOG_FORMATS = ('json', 'text')
LOG_LEVELS = ('debug', 'info', 'warning', 'error')
STRATEGIES = ('priority',)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = '127.0.0.1:8080'
    workers: int = 2
    worker_class: str = 'gthread'
    threads: int = 32
    max_body_bytes: int = 8 * 1024 * 1024
    timeout_s: int = 120
    graceful_timeout_s: int = 30
    keepalive_s: int = 5


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
    stream_usage: bool = True
    mock: MockOptions | None = None


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


@dataclass(frozen=True, slots=True)
class KeyConfig:
    digest: bytes = field(repr=False)
    name: str


@dataclass(frozen=True, slots=True)
class TenantConfig:
    id: str
    keys: tuple
    allowed_models: tuple = ('*',)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    log_format: str = 'json'
    log_level: str = 'info'


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    providers: tuple
    routes: tuple
    aliases: dict
    tenants: tuple
    telemetry: TelemetryConfig
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
