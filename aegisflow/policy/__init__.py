"""The policy engine: normalised text, filters, verdicts, streams, plugins."""

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
        return InjectionFilter(o['threshold'])
    if pc.type == 'wasm':
        from aegisflow.policy.wasm import WasmFilter

        return WasmFilter(pc.name, o, phase=pc.phase, cap=pc.action)
    return load_class(o['class'])(o.get('config') or {})


class PolicyEngine:
    """Every configured policy, built once per process, and each tenant's set."""

    __slots__ = ('policies', 'by_tenant', 'names', 'any')

    def __init__(self, config, labels=None):
        self.policies = []
        for i, pc in enumerate(config.policies):
            self.policies.append(
                Policy(
                    pc.name,
                    pc.phase,
                    pc.action,
                    build_filter(pc),
                    dry_run=pc.dry_run,
                    restore=pc.restore,
                    label=labels.policies.id(pc.name) if labels is not None else i + 2,
                )
            )
        self.names = [p.name for p in self.policies]
        self.by_tenant = {}
        for tenant in config.tenants:
            chosen = [
                p
                for p in self.policies
                if tenant.policies is None or p.name in tenant.policies
            ]
            self.by_tenant[tenant.id] = (
                tuple(p for p in chosen if p.phase == 'input'),
                tuple(p for p in chosen if p.phase == 'output'),
            )
        self.any = bool(self.policies)

    def for_tenant(self, tenant_id):
        """(input policies, output policies) of a tenant."""
        return self.by_tenant.get(tenant_id, ((), ()))
