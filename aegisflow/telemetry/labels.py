"""Stable small integer ids for metric label values, taken from the config and, for
keys created at run time, from a table every process shares.

Counters and event records hold ids, not strings, so they stay fixed-size and no
client input can mint a label value. Id 0 is ``none`` (no tenant, no model yet) and id
1 is ``other`` (a name the config does not know, or past capacity). Ids never change
once given: a reload only adds names, so records written by workers of an older
config still read right. The master builds the space before forking; workers inherit
it. Keys and tenants created at run time (only an admin can make one) take ids
from the upper half of their space up (`Names.registered`), from a
`shm.names.NameTable` in the shared segment, so every worker gives one the same id
and the master reads its name back; past the table's capacity they are ``other``.
"""

NONE, OTHER = 0, 1


class Names:
    __slots__ = ('ids', 'names', 'limit', 'registry', 'registered')

    def __init__(self, bits):
        self.ids = {'none': NONE, 'other': OTHER}
        self.names = ['none', 'other']
        self.limit = (1 << bits) - 1
        self.registry = None  # shm.names.NameTable, for names made at run time
        self.registered = 1 << (bits - 1)  # the first id of a name from it

    def add(self, name):
        top = self.limit if self.registry is None else self.registered - 1
        if name not in self.ids and len(self.names) <= top:
            self.ids[name] = len(self.names)
            self.names.append(name)

    def id(self, name):
        found = self.ids.get(name)
        if found is not None:
            return found
        if self.registry is None:
            return OTHER
        index = self.registry.add(name)
        if index is None or self.registered + index > self.limit:
            return OTHER
        return self.registered + index

    def name(self, ident):
        if ident < len(self.names):
            return self.names[ident]
        if self.registry is not None and ident >= self.registered:
            return self.registry.name(ident - self.registered) or 'other'
        return 'other'


class LabelSpace:
    """Tenants, keys (``tenant/key``), models and providers known to the config."""

    __slots__ = (
        'tenants',
        'keys',
        'models',
        'providers',
        'policies',
        'guard_categories',
    )

    def __init__(self, config=None):
        self.tenants = Names(14)
        self.keys = Names(16)
        self.models = Names(14)
        self.providers = Names(10)
        self.policies = Names(14)
        self.guard_categories = {}  # guardrail name -> its categories (metrics)
        if config is not None:
            self.extend(config)

    def extend(self, config):
        for tenant in config.tenants:
            self.tenants.add(tenant.id)
            for key in tenant.keys:
                self.keys.add(f'{tenant.id}/{key.name}')
        for policy in config.policies:
            self.policies.add(policy.name)
            if 'run' in policy.options:  # a guardrail: its model and categories
                from aegisflow.guardrails import categories_of

                self.models.add(policy.options['model'])
                self.guard_categories[policy.name] = categories_of(policy)
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
