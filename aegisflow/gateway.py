"""Everything a worker derives from the config, built once and shared by its threads."""

import shutil

from aegisflow.auth import KeyIndex
from aegisflow.authguard import FailedAuthGuard
from aegisflow.cache import ResponseCache
from aegisflow.cache import build_store
from aegisflow.cache import verdicts_wanted
from aegisflow.limits.limiter import Limiter
from aegisflow.limits.local import LocalStore
from aegisflow.policy import PolicyEngine
from aegisflow.pricing import PriceTable
from aegisflow.providers import build_providers
from aegisflow.routing.router import Router
from aegisflow.routing.targets import TargetState
from aegisflow.telemetry.aggregate import LocalTelemetry
from aegisflow.telemetry.labels import LabelSpace
from aegisflow.usage.keystore import Generation
from aegisflow.usage.keystore import KeyStore
from aegisflow.usage.responses import ResponseStore


class Gateway:
    __slots__ = (
        'config',
        'keys',
        'providers',
        'router',
        'catalogue',
        'labels',
        'telemetry',
        'limiter',
        'recorder',
        'targets',
        'auth_guard',
        'keystore',
        'key_generation',
        'policies',
        'responses',
        'cache',
        'verdict_store',
        'concurrency',
        '_verdict_dir',
    )

    def __init__(
        self,
        config,
        *,
        concurrency=1,
        labels=None,
        telemetry=None,
        limiter=None,
        key_generation=None,
        cache_store=None,
    ):
        self.config = config
        # under Gunicorn the local response cache is the master's (directory, size)
        self.cache = ResponseCache.build(config, local=cache_store)
        # guardrail verdicts live in the same store (made for them alone when the
        # response cache is off)
        self._verdict_dir = None
        if self.cache is not None:
            self.verdict_store = self.cache.store
        elif verdicts_wanted(config):
            self.verdict_store, self._verdict_dir = build_store(config, cache_store)
        else:
            self.verdict_store = None
        self.concurrency = concurrency
        # Keys created through the admin API live beside the usage ledger; every
        # worker sees a change through the shared generation number.
        self.keystore = KeyStore(config.storage)
        self.responses = ResponseStore(config.storage)
        self.key_generation = key_generation or Generation()
        self.keys = KeyIndex(
            config.tenants, store=self.keystore, generation=self.key_generation
        )
        self.providers = build_providers(config, concurrency=concurrency)
        self.labels = labels or LabelSpace(config)
        self.policies = PolicyEngine(config, self.labels)
        self.telemetry = telemetry or LocalTelemetry(config, self.labels)
        self.recorder = self.telemetry.recorder
        self.limiter = limiter or Limiter(config, LocalStore())
        # NOTE: keys and tenants created at run time bring their own rules
        self.keys.on_scopes = self.limiter.planner.set_runtime_keys
        self.keys.on_tenants = self._runtime_tenants
        # NOTE: breakers and latency live in this host's store (with Redis limits,
        # in its shared-memory fallback).
        store = self.limiter.fallback or self.limiter.store
        self.targets = TargetState(
            store,
            config.circuit_breaker,
            probe_lease_s=config.circuit_breaker.open_s + config.retry.total_timeout_s,
        )
        self.auth_guard = FailedAuthGuard(config.server.failed_auth_per_minute, store)
        self.router = Router(
            config,
            self.providers,
            state=self.targets,
            prices=PriceTable(config.prices, config.providers),
        )
        self.catalogue = self.router.catalogue()

    def _runtime_tenants(self, tenants):
        self.limiter.planner.set_runtime_tenants(tenants)
        self.policies.set_runtime_tenants(tenants)

    def close(self):
        for provider in self.providers.values():
            provider.close()
        if self.cache is not None:
            self.cache.close()
        elif self.verdict_store is not None:
            self.verdict_store.close()
            if self._verdict_dir is not None:
                shutil.rmtree(self._verdict_dir, ignore_errors=True)
