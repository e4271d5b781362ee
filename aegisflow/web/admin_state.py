"""Admin views of live state: tenants with their limits, spend and counters; the
circuit breakers of every configured target, which an operator may force open or
closed."""

import time

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.limits import gcra
from aegisflow.limits.plan import PARALLEL
from aegisflow.limits.plan import SPEND
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import OPEN
from aegisflow.routing.resilience import STATE_NAMES
from aegisflow.routing.resilience import shown_state
from aegisflow.web.admin_keys import audit
from aegisflow.web.admin_resource import AdminResource
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


class AdminTenants(AdminResource):
    __slots__ = ()

    def _tenant(self, tenant, detail):
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
                'warn_at': tenant.budget.warn_at,
            }
        limiter = self.gw.limiter
        store = limiter.store
        now_unix, now_ns = time.time(), time.monotonic_ns()
        seen, counters = set(), []
        for key in tenant.keys:
            for check in limiter.planner.checks(
                tenant.id, key.name, '', None, now_unix
            ):
                if check.name not in seen and (detail or check.kind == SPEND):
                    seen.add(check.name)
                    counters.append(_counter(store, check, now_ns))
        out['counters' if detail else 'spend'] = counters
        return out

    def on_get(self, req, resp, tenant_id=None):
        self.auth.check(req)
        tenants = self.gw.config.tenants
        if tenant_id is None:
            resp.data = orjson.dumps(
                {'tenants': [self._tenant(t, False) for t in tenants]}
            )
            return
        tenant = next((t for t in tenants if t.id == tenant_id), None)
        if tenant is None:
            raise NotFound(f"No tenant '{tenant_id[:64]}'.", code='tenant_not_found')
        resp.data = orjson.dumps(self._tenant(tenant, True))


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
