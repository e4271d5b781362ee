"""The policy engine: normalised text, filters, verdicts, streams, plugins."""

from aegisflow.policy import injection_model
from aegisflow.policy.engine import Policy
from aegisflow.policy.filters import InjectionFilter
from aegisflow.policy.filters import KeywordFilter
from aegisflow.policy.filters import PiiFilter
from aegisflow.policy.filters import RegexFilter
from aegisflow.policy.filters import load_class


def build_filter(pc):
    """The filter object of a PolicyConfig."""
    o = pc.options
    if pc.type == 'keyword':
        return KeywordFilter(o['keywords'])
    if pc.type == 'regex':
        return RegexFilter(o['patterns'], o['timeout_ms'], o['max_match'])
    if pc.type == 'pii':
        return PiiFilter(o['kinds'])
    if pc.type == 'injection':
        model = o.get('model', 'builtin')
        return InjectionFilter(
            o['threshold'],
            learned=model != 'off',
            model=None if model in ('builtin', 'off') else injection_model.load(model),
        )
    if pc.type == 'wasm':
        from aegisflow.policy.wasm import WasmFilter

        return WasmFilter(pc.name, o, phase=pc.phase, cap=pc.action)
    return load_class(o['class'])(o.get('config') or {})


class PolicyEngine:
    """Every configured policy, built once per process, and each tenant's set.
    Guardrails (`aegisflow.guardrails`: moderation endpoints, guard models) are
    kept apart: they judge a request whole, beside the call, not field by field."""

    __slots__ = (
        'policies',
        'guards',
        'by_tenant',
        'guards_by_tenant',
        'names',
        'any',
        'guards_any',
        '_file',
        '_runtime',
    )

    def __init__(self, config, labels=None):
        from aegisflow.config.policies import GUARD_TYPES
        from aegisflow.guardrails import GuardPolicy

        self.policies = []
        self.guards = []
        for i, pc in enumerate(config.policies):
            label = labels.policies.id(pc.name) if labels is not None else i + 2
            if pc.type in GUARD_TYPES:
                self.guards.append(GuardPolicy(pc, label))
                continue
            self.policies.append(
                Policy(
                    pc.name,
                    pc.phase,
                    pc.action,
                    build_filter(pc),
                    dry_run=pc.dry_run,
                    restore=pc.restore,
                    label=label,
                    fields=pc.fields,
                )
            )
        self.names = [p.name for p in self.policies + self.guards]
        self.by_tenant, self.guards_by_tenant = {}, {}
        for tenant in config.tenants:
            self._choose(tenant.id, tenant.policies)
        self._file = set(self.by_tenant)
        self._runtime = set()
        self.any = bool(self.policies)
        self.guards_any = bool(self.guards)

    def for_tenant(self, tenant_id):
        """(input policies, output policies) of a tenant."""
        return self.by_tenant.get(tenant_id, ((), ()))

    def guards_for(self, tenant_id):
        """(input guardrails, output guardrails) of a tenant."""
        return self.guards_by_tenant.get(tenant_id, ((), ()))

    def _choose(self, tenant_id, names):
        self.by_tenant[tenant_id] = self._chosen(self.policies, names)
        self.guards_by_tenant[tenant_id] = self._chosen(self.guards, names)

    def set_runtime_tenants(self, tenants):
        """The policy sets of the tenants created at run time: {id: TenantConfig}
        (a tenant of the config file keeps its own)."""
        for tenant in tenants.values():
            if tenant.id not in self.by_tenant or tenant.id in self._runtime:
                self._choose(tenant.id, tenant.policies)
        for gone in self._runtime - set(tenants):
            self.by_tenant.pop(gone, None)
            self.guards_by_tenant.pop(gone, None)
        self._runtime = {t for t in tenants if t not in self._file}

    @staticmethod
    def _chosen(policies, names):
        chosen = [p for p in policies if names is None or p.name in names]
        return (
            tuple(p for p in chosen if p.phase == 'input'),
            tuple(p for p in chosen if p.phase == 'output'),
        )
