"""Stable small integer ids for metric label values, all taken from the config.

Counters and event records hold ids, not strings, so they stay fixed-size and no
client input can mint a label value. Id 0 is ``none`` (no tenant, no model yet) and id
1 is ``other`` (a name the config does not know, or past capacity). Ids never change
once given: a reload only adds names, so records written by workers of an older
config still read right. The master builds the space before forking; workers inherit
it.
"""

NONE, OTHER = 0, 1


class Names:
    __slots__ = ('ids', 'names', 'limit')

    def __init__(self, bits):
        self.ids = {'none': NONE, 'other': OTHER}
        self.names = ['none', 'other']
        self.limit = (1 << bits) - 1

    def add(self, name):
        if name not in self.ids and len(self.names) <= self.limit:
            self.ids[name] = len(self.names)
            self.names.append(name)

    def id(self, name):
        return self.ids.get(name, OTHER)

    def name(self, ident):
        return self.names[ident] if ident < len(self.names) else 'other'


class LabelSpace:
    """Tenants, keys (``tenant/key``), models and providers known to the config."""

    __slots__ = ('tenants', 'keys', 'models', 'providers', 'policies')

    def __init__(self, config=None):
        self.tenants = Names(14)
        self.keys = Names(16)
        self.models = Names(14)
        self.providers = Names(10)
        self.policies = Names(14)
        if config is not None:
            self.extend(config)

    def extend(self, config):
        for tenant in config.tenants:
            self.tenants.add(tenant.id)
            for key in tenant.keys:
                self.keys.add(f'{tenant.id}/{key.name}')
        for policy in config.policies:
            self.policies.add(policy.name)
        for provider in config.providers:
            self.providers.add(provider.name)
            for model in provider.models:
                if not any(c in model for c in '*?['):
                    self.models.add(model)
        for route in config.routes:
            if not any(c in route.match for c in '*?['):
                self.models.add(route.match)
            for target in route.targets:
                if target.model:
                    self.models.add(target.model)
        for alias, model in config.aliases.items():
            self.models.add(alias)
            self.models.add(model)
