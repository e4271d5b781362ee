"""The validated configuration: immutable objects built once at start.

Each section's dataclasses live beside its reader (`aegisflow.config.server`,
``providers``, ``routes``, ``tenants``, ``telemetry``, ``storage``,
``resilience``, ``prices``, ``scope``, ``cache``, ``alerts``, ``policies``); `Config`
holds them all, and this module names every one of them. Nothing here is mutated
after loading. Secrets (provider keys) are held in fields
excluded from ``repr`` so a logged config object never shows them; tenant keys are
only ever held as SHA-256 digests.
"""

from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.cache import CacheConfig
from aegisflow.config.cache import CacheOverride
from aegisflow.config.prices import Price
from aegisflow.config.providers import PROVIDER_TYPES
from aegisflow.config.providers import MockOptions
from aegisflow.config.providers import ProviderConfig
from aegisflow.config.resilience import LimitsConfig
from aegisflow.config.routes import STRATEGIES
from aegisflow.config.routes import RouteConfig
from aegisflow.config.routes import Target
from aegisflow.config.scope import Budget
from aegisflow.config.scope import KeyScope
from aegisflow.config.scope import RateLimit
from aegisflow.config.server import PROXY_PROTOCOLS
from aegisflow.config.server import WORKER_CLASSES
from aegisflow.config.server import ServerConfig
from aegisflow.config.storage import BACKEND_ERROR_MODES
from aegisflow.config.storage import STATE_BACKENDS
from aegisflow.config.storage import STORAGE_BACKENDS
from aegisflow.config.storage import ShmConfig
from aegisflow.config.storage import StateConfig
from aegisflow.config.storage import StorageConfig
from aegisflow.config.telemetry import LOG_FORMATS
from aegisflow.config.telemetry import LOG_LEVELS
from aegisflow.config.telemetry import TRACE_EXPORTERS
from aegisflow.config.telemetry import TelemetryConfig
from aegisflow.config.telemetry import TracesConfig
from aegisflow.config.tenants import KeyConfig
from aegisflow.config.tenants import TenantConfig
from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.resilience import RetryPolicy

# NOTE: each section's types live beside its reader; they are all named here too
__all__ = [
    'BACKEND_ERROR_MODES',
    'LOG_FORMATS',
    'LOG_LEVELS',
    'PROVIDER_TYPES',
    'PROXY_PROTOCOLS',
    'STATE_BACKENDS',
    'STORAGE_BACKENDS',
    'STRATEGIES',
    'TRACE_EXPORTERS',
    'WORKER_CLASSES',
    'Budget',
    'CacheConfig',
    'CacheOverride',
    'Config',
    'KeyConfig',
    'KeyScope',
    'LimitsConfig',
    'MockOptions',
    'Price',
    'ProviderConfig',
    'RateLimit',
    'RouteConfig',
    'ServerConfig',
    'ShmConfig',
    'StateConfig',
    'StorageConfig',
    'Target',
    'TelemetryConfig',
    'TenantConfig',
    'TracesConfig',
    'BreakerPolicy',
    'RetryPolicy',
]


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
