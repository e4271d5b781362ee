"""Tenant API keys: an in-memory index of SHA-256 digests, built once.

A presented key is hashed once and looked up by digest; the hit is confirmed with a
constant-time comparison. Keys themselves are never stored or logged.
"""

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from dataclasses import replace

from aegisflow.config.model import TenantConfig
from aegisflow.config.scope import KeyScope
from aegisflow.config.scope import iso
from aegisflow.config.scope import scope_from_json
from aegisflow.config.scope import tenant_from_json
from aegisflow.errors import AuthenticationFailed
from aegisflow.globs import GlobSet

_MISSING_KEY = (
    "Missing API key. Send it as 'Authorization: Bearer <key>' "
    "or as 'X-API-Key: <key>'."
)
_BAD_KEY = 'Invalid API key.'
# re-read changes this far back: a write stamped earlier may commit later
_OVERLAP_NS = 60 * 10**9
_TWO_KEYS = (
    "Two different keys were sent, in 'Authorization' and in 'X-API-Key'; send one."
)


def presented_key(authorization, api_key_header):
    """The key a request presents (``Authorization: Bearer`` or ``X-API-Key``).

    No key is `AuthenticationFailed` with code ``missing_api_key``; two different
    keys are refused too, since which of them authorised the call would be a guess.
    """
    bearer = None
    if authorization:
        scheme, _, value = authorization.partition(' ')
        if scheme.lower() == 'bearer':
            bearer = value.strip() or None
    header = (api_key_header or '').strip() or None
    if (
        bearer
        and header
        and not hmac.compare_digest(
            bearer.encode('utf-8', 'surrogatepass'),
            header.encode('utf-8', 'surrogatepass'),
        )
    ):
        raise AuthenticationFailed(_TWO_KEYS, code='conflicting_api_keys')
    key = bearer or header
    if not key:
        raise AuthenticationFailed(_MISSING_KEY, code='missing_api_key')
    return key


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, which of its keys, and what it may use (the
    tenant's model list and the key's own, when it has one: both must pass).
    `until`: when this credential stops working (its expiry, or the end of the
    grace of a rotated secret); `expired`: the words for it then (None: the
    credential is simply invalid from then on)."""

    tenant: object
    key_name: str
    allowed: GlobSet
    key_allowed: GlobSet | None = None
    until: float | None = None
    expired: str | None = None

    @property
    def tenant_id(self):
        return self.tenant.id

    def may_use(self, *names):
        if not any(self.allowed(n) for n in names):
            return False
        return self.key_allowed is None or any(self.key_allowed(n) for n in names)


class KeyIndex:
    """Config keys plus keys created at run time (`keystore`), reloaded when the
    shared `generation` moves (checked on every request: one read)."""

    __slots__ = (
        '_by_digest',
        '_tenants',
        '_config',
        '_store',
        '_generation',
        '_seen',
        '_lock',
        'on_scopes',
        'scopes',
        '_parsed',
        '_rows',
        '_mark',
        '_file_tenants',
        '_tenant_versions',
        'on_tenants',
    )

    def __init__(self, tenants, *, store=None, generation=None):
        self._tenants = {t.id: (t, GlobSet(t.allowed_models)) for t in tenants}
        self._file_tenants = dict(self._tenants)
        self._tenant_versions = {}  # run-time tenant id -> its updated_ns
        self.on_tenants = None  # called with the run-time tenants, when they change
        self._config = {}
        for tenant, allowed in self._tenants.values():
            for key in tenant.keys:
                self._config[key.digest] = (
                    key.digest,
                    _principal(tenant, key.name, allowed, key.scope),
                )
        self._by_digest = self._config
        self._store = store
        self._generation = generation
        self._seen = None
        self._lock = threading.Lock()
        self.on_scopes = None  # called with the run-time keys' limits, on reload
        self.scopes = {}  # (tenant, key name) -> `KeyScope` of run-time keys
        self._parsed = {}  # (key id, updated_ns) -> KeyScope
        self._rows = None  # key id -> StoredKey, once read
        self._mark = 0  # the latest change read (the table's clock, ns)

    def _refresh(self):
        """Bring the index up to date with the key table: in full the first time,
        then only the keys created, changed or revoked since (re-read with a
        margin, `_OVERLAP_NS`, so a write committed late is not missed)."""
        with self._lock:
            current = self._generation.get()
            if current == self._seen:
                return
            if self._store_tenants():
                self._rows = None  # NOTE: principals hold their tenant: rebuild all
            if self._rows is None:
                rows = {r.id: r for r in self._store.active()}
                changed, index, scopes = rows, dict(self._config), {}
            else:
                rows, changed = dict(self._rows), {}
                index, scopes = dict(self._by_digest), dict(self.scopes)
                for row, revoked in self._store.changes(self._mark - _OVERLAP_NS):
                    old = rows.pop(row.id, None)
                    if old is not None:
                        self._forget(old, index, scopes)
                    if not revoked:
                        rows[row.id] = changed[row.id] = row
            for row in changed.values():
                self._admit(row, index, scopes)
                self._mark = max(self._mark, row.updated_ns)
            self._rows = rows
            self.scopes = scopes
            if self.on_scopes is not None:
                self.on_scopes({k: (s.rate_limit, s.budget) for k, s in scopes.items()})
            self._by_digest = index  # ORDER: publish the whole index at once
            self._seen = current

    def _store_tenants(self):
        """Read the tenants created at run time; whether they changed."""
        stored = self._store.tenants()
        versions = {i: updated for i, (_, updated) in stored.items()}
        if versions == self._tenant_versions:
            return False
        tenants = dict(self._file_tenants)
        # NOTE: a tenant in the file is the file's
        made = runtime_tenants(self._store, self._file_tenants)
        for tenant_id, tenant in made.items():
            tenants[tenant_id] = (tenant, GlobSet(tenant.allowed_models))
        self._tenants = tenants
        self._tenant_versions = versions
        if self.on_tenants is not None:
            self.on_tenants(made)
        return True

    def _admit(self, row, index, scopes):
        found = self._tenants.get(row.tenant)
        if found is None or row.digest in self._config:
            return
        tenant, allowed = found
        version = (row.id, row.updated_ns)
        scope = self._parsed.get(version)
        if scope is None:
            scope = self._parsed[version] = stored_scope(row)
        scopes[(row.tenant, row.name)] = scope
        principal = _principal(tenant, row.name, allowed, scope)
        index[row.digest] = (row.digest, principal)
        if row.prev_digest and row.prev_digest not in index:
            grace = replace(principal, until=row.prev_until_ns / 1e9, expired=None)
            index[row.prev_digest] = (row.prev_digest, grace)

    def _forget(self, row, index, scopes):
        for digest in (row.digest, row.prev_digest):
            if digest is not None and digest not in self._config:
                index.pop(digest, None)
        scopes.pop((row.tenant, row.name), None)
        self._parsed.pop((row.id, row.updated_ns), None)

    def sync(self):
        """Bring the index, the run-time tenants and their limits up to date with
        the store (one shared read when nothing changed)."""
        if self._generation is not None and self._generation.get() != self._seen:
            self._refresh()

    def names(self, tenant_id):
        """Names of the tenant's keys in use (config and run time)."""
        self.sync()
        return {
            p.key_name for _, p in self._by_digest.values() if p.tenant.id == tenant_id
        }

    def authenticate(self, authorization, api_key_header):
        """The `Principal` for the presented credentials, or `AuthenticationFailed`."""
        self.sync()
        key = presented_key(authorization, api_key_header)
        digest = hashlib.sha256(key.encode('utf-8', 'surrogatepass')).digest()
        hit = self._by_digest.get(digest)
        if hit is None or not hmac.compare_digest(hit[0], digest):
            raise AuthenticationFailed(_BAD_KEY)
        principal = hit[1]
        if principal.until is not None and time.time() >= principal.until:
            if principal.expired is None:
                raise AuthenticationFailed(_BAD_KEY)
            raise AuthenticationFailed(principal.expired, code='key_expired')
        return principal


def _principal(tenant, name, allowed, scope):
    expires_at = scope.expires_at
    return Principal(
        tenant,
        name,
        allowed,
        GlobSet(scope.allowed_models) if scope.allowed_models is not None else None,
        expires_at,
        f'The API key expired at {iso(expires_at)}.'
        if expires_at is not None
        else None,
    )


def stored_scope(row):
    """The `KeyScope` of a stored key: a budget of its own period counts its
    periods from the key's creation."""
    scope = scope_from_json(row.scope)[0] or KeyScope()
    budget = scope.budget
    if budget is not None and budget.max_usd is not None:
        scope = replace(scope, budget=replace(budget, anchor=row.created_ns / 1e9))
    return scope


def runtime_key_limits(store):
    """{(tenant, key name): (RateLimit, Budget)} of the keys created at run time."""
    out = {}
    for row in store.active():
        scope = stored_scope(row)
        out[(row.tenant, row.name)] = (scope.rate_limit, scope.budget)
    return out


def runtime_tenants(store, file_tenants=()):
    """{id: TenantConfig} of the tenants created at run time (not those in the
    file, `file_tenants`: their ids)."""
    out = {}
    for tenant_id, (spec, _) in store.tenants().items():
        if tenant_id in file_tenants:
            continue
        fields, _ = tenant_from_json(spec, None)
        if fields is not None and fields.get('id') is not None:
            out[tenant_id] = TenantConfig(keys=(), **fields)
    return out
