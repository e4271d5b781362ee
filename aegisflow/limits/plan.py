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


def own_period(budget, now_unix):
    """(id, start, end) of a budget's own period (``budget_duration``) at
    `now_unix`, counted from its anchor."""
    duration = budget.duration_s
    since = max(0.0, now_unix - budget.anchor)
    start = int(budget.anchor + since // duration * duration)
    return f'{start}', start, start + duration


def _budget_checks(scope_id, scope_words, budget, now_unix):
    if budget is None:
        return []
    day, month = periods(now_unix)
    own = own_period(budget, now_unix) if budget.max_usd is not None else (0, 0, 0)
    out = []
    for period, usd, (label, start, end) in (
        ('day', budget.daily_usd, day),
        ('month', budget.monthly_usd, month),
        (budget.budget_duration, budget.max_usd, own),
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
    """Resolved once per config: the checks of each tenant and key, budget and model
    lookups. Keys created at run time bring their own limits and budgets
    (`set_runtime_keys`); a key the planner does not know still gets its tenant's.
    """

    def __init__(self, config):
        self._tenant_rates = {}  # tenant -> its rate checks
        self._tenant_budgets = {}  # tenant -> (scope id, words, Budget)
        self._key_rates = {}  # (tenant, key name) -> the key's own rate checks
        self._key_budgets = {}  # (tenant, key name) -> (scope id, words, Budget)
        self._users = {}
        self._models = {}
        for tenant in config.tenants:
            self._add_tenant(tenant)
        self._file_tenants = {t.id for t in config.tenants}
        self._config_keys = {}
        for tenant in config.tenants:
            for key in tenant.keys:
                self._config_keys[(tenant.id, key.name)] = (key.rate_limit, key.budget)
        self._set_keys(self._config_keys)
        self._model_cache = {}
        self._budget_cache = None

    def _add_tenant(self, tenant):
        t = tenant.id
        self._users[t] = tenant.user_rate_limit
        self._models[t] = tuple(
            (GlobSet([glob]), glob, limit) for glob, limit in tenant.model_limits
        )
        self._tenant_rates[t] = tuple(
            _rate_checks(f'tenant:{t}', f"tenant '{t}'", tenant.rate_limit)
        )
        self._tenant_budgets[t] = (f'tenant:{t}', f"tenant '{t}'", tenant.budget)

    def set_runtime_tenants(self, tenants):
        """The rules of the tenants created at run time: {id: TenantConfig}."""
        for t in set(self._tenant_rates) - self._file_tenants - set(tenants):
            for table in (self._users, self._models, self._tenant_rates):
                table.pop(t, None)
            self._tenant_budgets.pop(t, None)
        for tenant in tenants.values():
            if tenant.id not in self._file_tenants:
                self._add_tenant(tenant)
        self._model_cache = {}
        self._budget_cache = None
        self._set_keys({k: limits for k, (limits, _) in self._built.items()})

    def _set_keys(self, keys):
        rates, budgets = {}, {}
        built = getattr(self, '_built', {})  # NOTE: unchanged keys are not rebuilt
        kept = {}
        for (t, name), limits in keys.items():
            found = built.get((t, name))
            if found is not None and found[0] == limits:
                checks = found[1]
            else:
                rate_limit, budget = limits
                k = f'{t}/{name}'
                checks = (
                    tuple(_rate_checks(f'key:{k}', f"key '{k}'", rate_limit)),
                    (f'key:{k}', f"key '{k}'", budget),
                )
            kept[(t, name)] = (limits, checks)
            rates[(t, name)], budgets[(t, name)] = checks
        self._built = kept
        self._key_rates, self._key_budgets = rates, budgets
        self._active = (
            any(self._tenant_rates.values())
            or any(b for *_, b in self._tenant_budgets.values())
            or any(rates.values())
            or any(b for *_, b in budgets.values())
            or any(self._users.values())
            or any(self._models.values())
        )

    def set_runtime_keys(self, scopes):
        """The limits and budgets of the keys created at run time:
        {(tenant, key name): (RateLimit or None, Budget or None)}."""
        keys = dict(scopes)
        keys.update(self._config_keys)  # NOTE: a name in the file is the file's
        self._set_keys(keys)
        self._budget_cache = None

    def active(self):
        return self._active

    def checks(self, tenant, key_name, model, user, now_unix):
        out = list(self._tenant_rates.get(tenant, ()))
        out += self._key_rates.get((tenant, key_name), ())
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
        """The budget checks of a key for their current periods (rebuilt when the
        first of those periods ends)."""
        cache = self._budget_cache
        if cache is None:
            cache = self._budget_cache = {}
        found = cache.get((tenant, key_name))
        if found is not None and now_unix < found[1]:
            return found[0]
        checks = []
        for scope in (
            self._tenant_budgets.get(tenant),
            self._key_budgets.get((tenant, key_name)),
        ):
            if scope is not None:
                checks += _budget_checks(*scope, now_unix)
        checks = tuple(checks)
        # NOTE: without a budget, look again at the next UTC day
        ends = min(
            (c.period_end for c in checks), default=(now_unix // 86400 + 1) * 86400
        )
        if len(cache) >= 1 << 16:
            cache.clear()
        cache[(tenant, key_name)] = (checks, ends)
        return checks

    def budget_scopes(self):
        """[(tenant, key name or None, Budget)] of every budget."""
        out = [(t, None, b) for t, (_, _, b) in self._tenant_budgets.items() if b]
        out += [(t, k, b) for (t, k), (_, _, b) in self._key_budgets.items() if b]
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
        """Every budget counter of the current periods (for metrics)."""
        out = []
        for scope in (*self._tenant_budgets.values(), *self._key_budgets.values()):
            out += _budget_checks(*scope, now_unix)
        return list({c.name: c for c in out}.values())
