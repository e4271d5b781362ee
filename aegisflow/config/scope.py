"""What a tenant or a key may do: model lists, rate limits, budgets, and a key's
expiry and metadata. One schema, read from the config file and from the admin
API's JSON alike (`read_key_scope`), so a key created over HTTP is checked with
the same rules, and refused in the same words, as one written in the file."""

import datetime
import re
from dataclasses import dataclass
from dataclasses import field

import orjson

from aegisflow.config.reader import Node
from aegisflow.globs import is_valid_glob

RATE_KEYS = (
    'requests_per_minute',
    'tokens_per_minute',
    'max_parallel',
    'request_burst',
    'token_burst',
)
BUDGET_KEYS = ('daily_usd', 'monthly_usd', 'max_usd', 'budget_duration', 'warn_at')
# a budget's limit is kept in nano-USD in a u64 word (shared memory, the ring)
USD_MAX = 10**9
_DURATION = re.compile(r'([1-9][0-9]{0,3})([dh])\Z')
KEY_SCOPE_KEYS = ('allowed_models', 'rate_limit', 'budget', 'expires_at', 'metadata')
METADATA_MAX_BYTES = 2048
_LATEST = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Limits of one scope; None means no limit of that kind."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_parallel: int | None = None
    request_burst: int | None = None  # default: requests_per_minute
    token_burst: int | None = None  # default: tokens_per_minute


@dataclass(frozen=True, slots=True)
class Budget:
    daily_usd: float | None = None
    monthly_usd: float | None = None
    warn_at: float = 0.8
    # a budget of its own period: `max_usd` per `budget_duration` ("30d", "12h"),
    # periods counted from `anchor` (a run-time key's creation; else 1970-01-01)
    max_usd: float | None = None
    budget_duration: str | None = None
    anchor: float = 0.0

    @property
    def duration_s(self):
        if self.budget_duration is None:
            return None
        count, unit = _DURATION.match(self.budget_duration).groups()
        return int(count) * (86400 if unit == 'd' else 3600)


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What one key may do beyond its tenant's rules (None: nothing more)."""

    allowed_models: tuple | None = None  # globs; a request must pass the tenant's too
    rate_limit: RateLimit | None = None
    budget: Budget | None = None
    expires_at: float | None = None  # unix seconds
    metadata: dict | None = field(default=None, hash=False, compare=False)


def read_rate_limit(node):
    if node.missing or not node.mapping(RATE_KEYS):
        return None
    rpm = node.get('requests_per_minute').int(None, min=1, max=10**9)
    tpm = node.get('tokens_per_minute').int(None, min=1, max=10**12)
    limit = RateLimit(
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        max_parallel=node.get('max_parallel').int(None, min=1, max=10**6),
        request_burst=node.get('request_burst').int(None, min=1, max=10**9),
        token_burst=node.get('token_burst').int(None, min=1, max=10**12),
    )
    if limit.request_burst is not None and rpm is None:
        node.get('request_burst').fail('request_burst only with requests_per_minute')
    if limit.token_burst is not None and tpm is None:
        node.get('token_burst').fail('token_burst only with tokens_per_minute')
    if rpm is None and tpm is None and limit.max_parallel is None:
        node.fail(
            'at least one of requests_per_minute, tokens_per_minute, max_parallel',
            found='none of them',
        )
    return limit


def read_budget(node):
    if node.missing or not node.mapping(BUDGET_KEYS):
        return None
    daily = node.get('daily_usd').num(None, min=0, max=USD_MAX)
    monthly = node.get('monthly_usd').num(None, min=0, max=USD_MAX)
    most = node.get('max_usd').num(None, min=0, max=USD_MAX)
    duration = node.get('budget_duration').str(
        None,
        check=_DURATION.match,
        expected='a duration in days or hours: 30d, 7d, 12h (up to 9999)',
    )
    if (most is None) != (duration is None) and not (
        node.get('max_usd').missing and node.get('budget_duration').missing
    ):
        missing = 'budget_duration' if duration is None else 'max_usd'
        if node.get(missing).missing:
            node.get(missing).fail('max_usd and budget_duration together')
    if daily is None and monthly is None and most is None:
        node.fail('daily_usd, monthly_usd or max_usd', found='none of them')
    return Budget(
        daily_usd=daily,
        monthly_usd=monthly,
        warn_at=node.get('warn_at').num(0.8, min=0, max=1),
        max_usd=most if duration is not None else None,
        budget_duration=duration if most is not None else None,
    )


def read_model_limits(node):
    if node.missing:
        return ()
    if not isinstance(node.value, dict):
        node.fail('a mapping of model name or glob to limits')
        return ()
    out = []
    for model, child in node.items():
        if not is_valid_glob(model):
            child.fail('a model name or glob as the key', found=f'{model!r}')
            continue
        limit = read_rate_limit(child)
        if limit is not None:
            out.append((model, limit))
    return tuple(out)


def read_globs(node, *, what):
    out = []
    for item in node.list(min_items=1, what=what):
        value = item.str(
            check=is_valid_glob,
            expected='a model name or glob (no spaces, balanced [])',
        )
        if value is not None:
            out.append(value)
    return tuple(out)


def read_expires_at(node):
    """Unix seconds from an ISO 8601 time (with its offset, or UTC) or a number."""
    expected = 'a time: ISO 8601 (2027-01-31T00:00:00Z) or unix seconds'
    value = node.value
    if node.missing or value is None:
        return None
    if isinstance(value, datetime.datetime):  # NOTE: YAML reads unquoted times
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 <= value <= _LATEST:
            return float(value)
        node.fail(expected)
        return None
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
        except ValueError:
            node.fail(expected)
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    node.fail(expected)
    return None


def read_metadata(node):
    """A small JSON object kept with a key and returned as it was, never read."""
    if node.missing or node.value is None:
        return None
    if not isinstance(node.value, dict):
        node.fail('a mapping (a JSON object)')
        return None
    try:
        size = len(orjson.dumps(node.value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        node.fail('JSON values only (strings, numbers, booleans, lists, mappings)')
        return None
    if size > METADATA_MAX_BYTES:
        node.fail(f'at most {METADATA_MAX_BYTES} bytes of JSON', found=f'{size} bytes')
        return None
    return node.value


def read_key_scope(node):
    """The `KeyScope` in a key's mapping (the caller checked its keys)."""
    allowed = None
    if not node.get('allowed_models').missing:
        allowed = read_globs(
            node.get('allowed_models'), what='a list of model names or globs'
        )
    return KeyScope(
        allowed_models=allowed,
        rate_limit=read_rate_limit(node.get('rate_limit')),
        budget=read_budget(node.get('budget')),
        expires_at=read_expires_at(node.get('expires_at')),
        metadata=read_metadata(node.get('metadata')),
    )


def scope_from_json(body, extra=()):
    """(`KeyScope`, problems) from an admin API body (a dict) whose other allowed
    keys are `extra`; problems are `reader.Problem`s, worded as for the file."""
    problems = []
    node = Node(body, '', problems)
    if not node.mapping(KEY_SCOPE_KEYS + tuple(extra)):
        return None, problems
    return read_key_scope(node), problems


def scope_to_json(scope):
    """The JSON form of a `KeyScope`, as stored and as the admin API shows it."""
    out = {}
    if scope.allowed_models is not None:
        out['allowed_models'] = list(scope.allowed_models)
    if scope.rate_limit is not None:
        out['rate_limit'] = {
            k: v for k, v in _fields(scope.rate_limit, RATE_KEYS) if v is not None
        }
    if scope.budget is not None:
        out['budget'] = {
            k: v for k, v in _fields(scope.budget, BUDGET_KEYS) if v is not None
        }
    if scope.expires_at is not None:
        out['expires_at'] = iso(scope.expires_at)
    if scope.metadata is not None:
        out['metadata'] = scope.metadata
    return out


def iso(unix):
    return (
        datetime.datetime.fromtimestamp(unix, datetime.UTC)
        .isoformat()
        .replace('+00:00', 'Z')
    )


def _fields(obj, names):
    return [(n, getattr(obj, n)) for n in names]


# -- tenants created at run time -------------------------------------------------------

TENANT_KEYS = (
    'id',
    'allowed_models',
    'rate_limit',
    'user_rate_limit',
    'model_limits',
    'budget',
    'policies',
)
_TENANT_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z')


def tenant_from_json(body, policy_names, *, require_id=True):
    """(tenant fields as a dict for `TenantConfig`, problems) from an admin body,
    read with the config file's rules and words. `policy_names`: the policies the
    config declares (a tenant may name only those; None: not checked)."""
    problems = []
    node = Node(body, '', problems)
    if not node.mapping(TENANT_KEYS):
        return None, problems
    fields = {}
    if require_id:
        fields['id'] = node.get('id').str(
            check=_TENANT_ID.match, expected='an id of letters, digits, _ . - (max 64)'
        )
    elif not node.get('id').missing:
        node.get('id').fail('no id (the path names the tenant)')
    fields['allowed_models'] = ('*',)
    if not node.get('allowed_models').missing:
        fields['allowed_models'] = read_globs(
            node.get('allowed_models'), what='a list of model names or globs'
        )
    fields['rate_limit'] = read_rate_limit(node.get('rate_limit'))
    fields['user_rate_limit'] = read_rate_limit(node.get('user_rate_limit'))
    fields['model_limits'] = read_model_limits(node.get('model_limits'))
    fields['budget'] = read_budget(node.get('budget'))
    fields['policies'] = None
    if not node.get('policies').missing:
        names = []
        for ref in node.get('policies').list(what='a list of policy names'):
            name = ref.str(expected='a policy name')
            if (
                name is not None
                and policy_names is not None
                and name not in policy_names
            ):
                ref.fail('the name of a policy under policies.input or policies.output')
            elif name is not None:
                names.append(name)
        fields['policies'] = tuple(names)
    return fields, problems


def tenant_to_json(tenant):
    """The JSON form of a tenant's rules (`TenantConfig`), as stored and shown."""
    out = {'id': tenant.id, 'allowed_models': list(tenant.allowed_models)}
    for name in ('rate_limit', 'user_rate_limit'):
        limit = getattr(tenant, name)
        if limit is not None:
            out[name] = {k: v for k, v in _fields(limit, RATE_KEYS) if v is not None}
    if tenant.model_limits:
        out['model_limits'] = {
            glob: {k: v for k, v in _fields(limit, RATE_KEYS) if v is not None}
            for glob, limit in tenant.model_limits
        }
    if tenant.budget is not None:
        out['budget'] = {
            k: v for k, v in _fields(tenant.budget, BUDGET_KEYS) if v is not None
        }
    if tenant.policies is not None:
        out['policies'] = list(tenant.policies)
    return out
