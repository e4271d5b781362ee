"""Everything a worker derives from the config, built once and shared by its threads."""

from aegisflow.auth import KeyIndex
from aegisflow.providers import build_providers
from aegisflow.routing import Router


class Gateway:
    __slots__ = ('config', 'keys', 'providers', 'router', 'catalogue')

    def __init__(self, config, *, concurrency=1):
        self.config = config
        self.keys = KeyIndex(config.tenants)
        self.providers = build_providers(config, concurrency=concurrency)
        self.router = Router(config, self.providers)
        self.catalogue = self.router.catalogue()

    def close(self):
        for provider in self.providers.values():
            provider.close()
