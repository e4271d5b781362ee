"""Which limits apply to a request: `Planner` turns the config into `Check`s.

Every configured limit that applies is checked: the tenant's, the key's, the end
user's (the request's ``user`` field or ``X-AegisFlow-User``, under the tenant's
``user_rate_limit``), and the first ``model_limits`` entry matching the model (one
counter per entry, shared by every model it matches). Each has up to three kinds
(requests, tokens, parallel). Budgets add one spend check per configured period
(the current UTC day and month), per tenant and per key.
"""

import calendar
import hashlib
import time
from dataclasses import dataclass
from dataclasses import field

from aegisflow.globs import GlobSet
from aegisflow.limits.gcra import Rate

MINUTE_NS = 60_000_000_000
NANO_USD = 1_000_000_000

REQUESTS, TOKENS, PARALLEL, SPEND = 'requests', 'tokens', 'parallel', 'budget'
REASONS = (REQUESTS, TOKENS, PARALLEL, SPEND, 'unavailable')


@dataclass(frozen=True, slots=True)
class Check:
    kind: str
    name: str  # stable identity, e.g. "requests:tenant:acme"
    scope: str  # for messages: "tenant 'acme'"
    rate: Rate | None = None  # requests and tokens
    limit: int = 0  # parallel: requests in flight; budget: nano-USD
    period: str = ''  # budget: "day" or "month"
    period_start: int = 0  # budget: unix seconds when the period began
    period_end: int = 0  # budget: unix seconds when the period ends
    warn_at: float = 0.0  # budget: fraction that triggers the warning header

    key: tuple = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        # (hash, check) words identifying this counter in a shared table; computed
        # once, since checks are built once per config (or per day, for budgets).
        digest = hashlib.blake2b(
            self.name.encode('utf-8', 'surrogatepass'), digest_size=16
        ).digest()
        key = (
            int.from_bytes(digest[:8], 'little'),
            int.from_bytes(digest[8:], 'little'),
        )
        object.__setattr__(self, 'key', key)


def _rate_checks(scope_id, scope_words, limit):
    if limit is None:
        return []
    out = []
    for kind, per_minute, burst in (
        (REQUESTS, limit.requests_per_minute, limit.request_burst),
        (TOKENS, limit.tokens_per_minute, limit.token_burst),
    ):
        if per_minute:
            rate = Rate(per_minute, MINUTE_NS, burst or per_minute)
            out.append(Check(kind, f'{kind}:{scope_id}', scope_words, rate=rate))
    if limit.max_parallel:
        out.append(
            Check(
                PARALLEL,
                f'{PARALLEL}:{scope_id}',
                scope_words,
                limit=limit.max_parallel,
            )
        )
    return out


def periods(now_unix):
    """((day id, start, end), (month id, start, end)) in UTC, unix seconds."""
    day = int(now_unix // 86400)
    tm = time.gmtime(now_unix)
    days = calendar.monthrange(tm.tm_year, tm.tm_mon)[1]
    month_start = calendar.timegm((tm.tm_year, tm.tm_mon, 1, 0, 0, 0))
    return (
        (f'{day}', day * 86400, (day + 1) * 86400),
        (f'{tm.tm_year}-{tm.tm_mon:02d}', month_start, month_start + days * 86400),
    )


def _budget_checks(scope_id, scope_words, budget, now_unix):
    if budget is None:
        return []
    day, month = periods(now_unix)
    out = []
    for period, usd, (label, start, end) in (
        ('day', budget.daily_usd, day),
        ('month', budget.monthly_usd, month),
    ):
        if usd is not None:
            out.append(
                Check(
                    SPEND,
                    f'{SPEND}:{period}:{label}:{scope_id}',
                    scope_words,
                    limit=round(usd * NANO_USD),
                    period=period,
                    period_start=start,
                    period_end=end,
                    warn_at=budget.warn_at,
                )
            )
    return out


class Planner:
    """Resolved once per config: static checks per key, budget and model lookups."""

    def __init__(self, config):
        self._static = {}
        self._budgets = {}
        self._users = {}
        self._models = {}
        for tenant in config.tenants:
            t = tenant.id
            self._users[t] = tenant.user_rate_limit
            self._models[t] = tuple(
                (GlobSet([glob]), glob, limit) for glob, limit in tenant.model_limits
            )
            for key in tenant.keys:
                k = f'{t}/{key.name}'
                self._static[(t, key.name)] = tuple(
                    _rate_checks(f'tenant:{t}', f"tenant '{t}'", tenant.rate_limit)
                    + _rate_checks(f'key:{k}', f"key '{k}'", key.rate_limit)
                )
                self._budgets[(t, key.name)] = (
                    (f'tenant:{t}', f"tenant '{t}'", tenant.budget),
                    (f'key:{k}', f"key '{k}'", key.budget),
                )
        self._model_cache = {}
        self._budget_cache = None

    def active(self):
        return (
            any(self._static.values())
            or any(b for pair in self._budgets.values() for *_, b in pair)
            or any(self._users.values())
            or any(self._models.values())
        )

    def checks(self, tenant, key_name, model, user, now_unix):
        out = list(self._static.get((tenant, key_name), ()))
        user_limit = self._users.get(tenant)
        if user_limit is not None and user:
            # NOTE: the user string comes from the client: it is hashed into the
            # counter's name, so its length cannot grow a key.
            uid = hashlib.blake2b(
                user.encode('utf-8', 'surrogatepass'), digest_size=12
            ).hexdigest()
            out += _rate_checks(
                f'user:{tenant}/{uid}', f"user '{user[:64]}'", user_limit
            )
        model_limit = self._model_limit(tenant, model)
        if model_limit is not None:
            glob, limit = model_limit
            out += _rate_checks(
                f'model:{tenant}/{glob}', f"model '{glob}' of tenant '{tenant}'", limit
            )
        budgets = self._budgets_of(tenant, key_name, now_unix)
        if budgets:
            out += budgets
        return out

    def _budgets_of(self, tenant, key_name, now_unix):
        """The budget checks of a key for today (rebuilt when the UTC day changes)."""
        day = int(now_unix // 86400)
        cache = self._budget_cache
        if cache is None or cache[0] != day:
            cache = self._budget_cache = (day, {})
        checks = cache[1].get((tenant, key_name))
        if checks is None:
            checks = []
            for scope_id, words, budget in self._budgets.get((tenant, key_name), ()):
                checks += _budget_checks(scope_id, words, budget, now_unix)
            cache[1][(tenant, key_name)] = checks = tuple(checks)
        return checks

    def budget_scopes(self):
        """[(tenant, key name or None, Budget)] of every configured budget."""
        out, seen = [], set()
        for (tenant, key_name), pair in self._budgets.items():
            (_, _, tenant_budget), (_, _, key_budget) = pair
            if tenant_budget is not None and tenant not in seen:
                seen.add(tenant)
                out.append((tenant, None, tenant_budget))
            if key_budget is not None:
                out.append((tenant, key_name, key_budget))
        return out

    def _model_limit(self, tenant, model):
        cached = self._model_cache.get((tenant, model), False)
        if cached is not False:
            return cached
        found = next(
            (
                (glob, limit)
                for match, glob, limit in self._models.get(tenant, ())
                if match(model)
            ),
            None,
        )
        if len(self._model_cache) < 4096:
            self._model_cache[(tenant, model)] = found
        return found

    def budget_checks(self, now_unix):
        """Every configured budget counter of the current periods (for metrics)."""
        out = []
        for pair in self._budgets.values():
            for scope_id, words, budget in pair:
                out += _budget_checks(scope_id, words, budget, now_unix)
        return list({c.name: c for c in out}.values())
