"""Everything a worker derives from the config, built once and shared by its threads."""

from aegisflow.auth import KeyIndex
from aegisflow.providers import build_providers
from aegisflow.routing import Router
from aegisflow.telemetry.aggregate import LocalTelemetry
from aegisflow.telemetry.labels import LabelSpace


class Gateway:
    __slots__ = (
        'config',
        'keys',
        'providers',
        'router',
        'catalogue',
        'labels',
        'telemetry',
    )

    def __init__(self, config, *, concurrency=1, labels=None, telemetry=None):
        self.config = config
        self.keys = KeyIndex(config.tenants)
        self.providers = build_providers(config, concurrency=concurrency)
        self.router = Router(config, self.providers)
        self.catalogue = self.router.catalogue()
        self.labels = labels or LabelSpace(config)
        self.telemetry = telemetry or LocalTelemetry(config, self.labels)

    def close(self):
        for provider in self.providers.values():
            provider.close()
