"""Admin views of live state: tenants with their limits, spend and counters; the
circuit breakers of every configured target, which an operator may force open or
closed."""

import time

import orjson

from aegisflow.auth import runtime_tenants
from aegisflow.config.model import TenantConfig
from aegisflow.config.scope import TENANT_KEYS
from aegisflow.config.scope import tenant_from_json
from aegisflow.config.scope import tenant_to_json
from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.limits import gcra
from aegisflow.limits.plan import PARALLEL
from aegisflow.limits.plan import SPEND
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import OPEN
from aegisflow.routing.resilience import STATE_NAMES
from aegisflow.routing.resilience import shown_state
from aegisflow.web.admin_keys import Conflict
from aegisflow.web.admin_keys import audit
from aegisflow.web.admin_resource import AdminResource
from aegisflow.web.admin_resource import the_change
from aegisflow.web.body import read_json


def _limit(limit):
    if limit is None:
        return None
    return {
        k: v
        for k, v in (
            ('requests_per_minute', limit.requests_per_minute),
            ('tokens_per_minute', limit.tokens_per_minute),
            ('max_parallel', limit.max_parallel),
            ('request_burst', limit.request_burst),
            ('token_burst', limit.token_burst),
        )
        if v is not None
    }


def _counter(store, check, now_ns):
    """What a counter shows now, from its shared state."""
    peek = getattr(store, 'peek', None)
    values = peek(check) if peek else None
    out = {'kind': check.kind, 'scope': check.scope}
    if peek is None:
        out['state'] = 'kept by the limits store (Redis); not readable here'
        if check.kind == SPEND:
            spent = store.peek_spend(check)
            out.update(
                period=check.period,
                limit_usd=check.limit / 1e9,
                spent_usd=(spent or 0) / 1e9,
            )
        return out
    if check.kind == SPEND:
        out.update(
            period=check.period,
            limit_usd=check.limit / 1e9,
            spent_usd=(values[0] if values else 0) / 1e9,
        )
    elif check.kind == PARALLEL:
        out.update(limit=check.limit, in_flight=values[1] if values else 0)
    else:
        remaining, reset_ns = gcra.peek(check.rate, values[0] if values else 0, now_ns)
        out.update(
            limit=check.rate.rate,
            burst=check.rate.burst,
            remaining=remaining,
            reset_s=round(reset_ns / 1e9, 3),
        )
    return out


def _shown(gw, tenant, detail):
    """A tenant as the admin API shows it."""
    out = {
        'id': tenant.id,
        'keys': [k.name for k in tenant.keys],
        'allowed_models': list(tenant.allowed_models),
        'rate_limit': _limit(tenant.rate_limit),
        'user_rate_limit': _limit(tenant.user_rate_limit),
        'model_limits': {g: _limit(lim) for g, lim in tenant.model_limits},
        'budget': None,
    }
    if tenant.budget is not None:
        out['budget'] = {
            'daily_usd': tenant.budget.daily_usd,
            'monthly_usd': tenant.budget.monthly_usd,
            'max_usd': tenant.budget.max_usd,
            'budget_duration': tenant.budget.budget_duration,
            'warn_at': tenant.budget.warn_at,
        }
    limiter = gw.limiter
    store = limiter.store
    now_unix, now_ns = time.time(), time.monotonic_ns()
    seen, counters = set(), []
    # NOTE: a tenant made at run time lists no keys here: its own counters show
    for key_name in [k.name for k in tenant.keys] or ['']:
        for check in limiter.planner.checks(tenant.id, key_name, '', None, now_unix):
            if check.name not in seen and (detail or check.kind == SPEND):
                seen.add(check.name)
                counters.append(_counter(store, check, now_ns))
    out['counters' if detail else 'spend'] = counters
    return out


class AdminTenants(AdminResource):
    """``/admin/v1/tenants``: every tenant; a new one."""

    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        tenants = all_tenants(self.gw)
        resp.data = orjson.dumps(
            {
                'tenants': [
                    dict(_shown(self.gw, t, False), source=source)
                    for t, source in tenants.values()
                ]
            }
        )

    def on_post(self, req, resp):
        """Create a tenant at run time: ``{"id": ..., "allowed_models", "rate_limit",
        "user_rate_limit", "model_limits", "budget", "policies"}``."""
        self.auth.check(req)
        body = read_json(req, 16384, self.gw.config.server.body_timeout_s)
        fields = _tenant_fields(self.gw, body, require_id=True)
        tenant_id = fields['id']
        if tenant_id in {t.id for t in self.gw.config.tenants}:
            raise Conflict(
                f"Tenant '{tenant_id}' is defined in the config file; edit it there.",
                param='id',
            )
        tenant = TenantConfig(keys=(), **fields)
        spec = tenant_to_json(tenant)
        if not self.gw.keystore.create_tenant(tenant_id, spec):
            raise Conflict(f"Tenant '{tenant_id}' already exists.", param='id')
        self.gw.key_generation.bump()  # ORDER: after the row is committed
        audit(self.gw, req, 'tenant.create', tenant=tenant_id, **spec)
        resp.status = 201
        resp.data = orjson.dumps(dict(spec, source='admin'))


class AdminTenant(AdminResource):
    """``/admin/v1/tenants/{id}``: one tenant with its live counters; changing or
    deleting one made at run time (the file's are the file's: 409)."""

    __slots__ = ()

    def on_get(self, req, resp, tenant_id):
        self.auth.check(req)
        found = all_tenants(self.gw).get(tenant_id)
        if found is None:
            raise NotFound(f"No tenant '{tenant_id[:64]}'.", code='tenant_not_found')
        tenant, source = found
        resp.data = orjson.dumps(dict(_shown(self.gw, tenant, True), source=source))

    def on_patch(self, req, resp, tenant_id):
        """Change a run-time tenant: the fields given replace its own (``null``
        removes one)."""
        self.auth.check(req)
        current = self._runtime(tenant_id)
        body = read_json(req, 16384, self.gw.config.server.body_timeout_s)
        _tenant_fields(self.gw, the_change(body, TENANT_KEYS), require_id=False)
        merged = {k: v for k, v in {**current, **body}.items() if v is not None}
        merged.pop('id', None)
        fields = _tenant_fields(self.gw, merged, require_id=False)
        tenant = TenantConfig(id=tenant_id, keys=(), **fields)
        spec = tenant_to_json(tenant)
        if not self.gw.keystore.update_tenant(tenant_id, spec):
            raise _no_tenant(tenant_id)
        self.gw.key_generation.bump()
        audit(self.gw, req, 'tenant.update', tenant=tenant_id, **spec)
        resp.data = orjson.dumps(dict(spec, source='admin'))

    def on_delete(self, req, resp, tenant_id):
        """Delete a run-time tenant: its keys stop at once; its usage rows stay."""
        self.auth.check(req)
        self._runtime(tenant_id)
        revoked = self.gw.keystore.delete_tenant(tenant_id)
        if revoked is None:
            raise _no_tenant(tenant_id)
        self.gw.key_generation.bump()
        audit(self.gw, req, 'tenant.delete', tenant=tenant_id, keys_revoked=revoked)
        resp.data = orjson.dumps(
            {'id': tenant_id, 'deleted': True, 'keys_revoked': revoked}
        )

    def _runtime(self, tenant_id):
        """The stored spec of a run-time tenant (409 for a tenant of the file)."""
        if tenant_id in {t.id for t in self.gw.config.tenants}:
            raise Conflict(
                f"Tenant '{tenant_id[:64]}' is defined in the config file; edit it "
                'there.',
                code='tenant_in_config',
            )
        found = self.gw.keystore.tenants().get(tenant_id)
        if found is None:
            raise _no_tenant(tenant_id)
        return found[0]


def all_tenants(gw):
    """{id: (TenantConfig, source)}: the config file's, then those made at run
    time (the worker's limits learn of those first, so their counters show)."""
    gw.keys.sync()
    out = {t.id: (t, 'config') for t in gw.config.tenants}
    for tenant_id, tenant in runtime_tenants(gw.keystore, out).items():
        out[tenant_id] = (tenant, 'admin')
    return out


def _tenant_fields(gw, body, *, require_id):
    names = {p.name for p in gw.config.policies}
    fields, problems = tenant_from_json(body, names, require_id=require_id)
    if problems:
        raise InvalidRequest(
            '; '.join(str(p) for p in problems[:5]),
            param=problems[0].path or None,
            code='invalid_tenant',
        )
    return fields


def _no_tenant(tenant_id):
    return NotFound(f"No run-time tenant '{tenant_id[:64]}'.", code='tenant_not_found')


class AdminBreakers(AdminResource):
    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        out = []
        for name, target in sorted(self.gw.router.targets().items()):
            state, until, latency, now = self.gw.targets.snapshot(target)
            state = shown_state(state, until, now)
            out.append(
                {
                    'target': name,
                    'state': STATE_NAMES[state],
                    'open_for_s': round(max(0, until - now) / 1e9, 3)
                    if state == OPEN
                    else 0,
                    'latency_ms': round(latency / 1e6, 3) if latency else None,
                }
            )
        resp.data = orjson.dumps({'breakers': out})

    def on_post(self, req, resp):
        """Body: ``{"target": "provider/model", "action": "open" | "close",
        "seconds": N}`` (``seconds`` only for open; default circuit_breaker.open_s)."""
        self.auth.check(req)
        body = read_json(req, 4096, self.gw.config.server.body_timeout_s)
        name, action = body.get('target'), body.get('action')
        target = self.gw.router.targets().get(name) if isinstance(name, str) else None
        if target is None:
            raise NotFound(
                f"No target '{str(name)[:100]}'; GET /admin/v1/breakers lists them.",
                param='target',
                code='target_not_found',
            )
        if action == 'open':
            seconds = body.get('seconds', self.gw.config.circuit_breaker.open_s)
            if (
                not isinstance(seconds, (int, float))
                or isinstance(seconds, bool)
                or not 0 < seconds <= 86400
            ):
                raise InvalidRequest(
                    "Invalid 'seconds': expected a number from 0 to 86400.",
                    param='seconds',
                )
            self.gw.targets.force(target, OPEN, seconds)
        elif action == 'close':
            self.gw.targets.force(target, CLOSED)
        else:
            raise InvalidRequest(
                "Invalid 'action': expected open or close.", param='action'
            )
        audit(
            self.gw,
            req,
            f'breaker.{action}',
            target=name,
            seconds=body.get('seconds') if action == 'open' else None,
        )
        resp.data = orjson.dumps(
            {'target': name, 'state': 'open' if action == 'open' else 'closed'}
        )
