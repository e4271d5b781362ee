"""Tenant API keys: an in-memory index of SHA-256 digests, built once.

A presented key is hashed once and looked up by digest; the hit is confirmed with a
constant-time comparison. Keys themselves are never stored or logged.
"""

import hashlib
import hmac
import threading
from dataclasses import dataclass

from aegisflow.errors import AuthenticationFailed
from aegisflow.globs import GlobSet

_MISSING_KEY = (
    "Missing API key. Send it as 'Authorization: Bearer <key>' "
    "or as 'X-API-Key: <key>'."
)
_BAD_KEY = 'Invalid API key.'
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
    """Who is calling: the tenant, which of its keys, and what it may use."""

    tenant: object
    key_name: str
    allowed: GlobSet

    @property
    def tenant_id(self):
        return self.tenant.id

    def may_use(self, *names):
        return any(self.allowed(n) for n in names)


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
    )

    def __init__(self, tenants, *, store=None, generation=None):
        self._tenants = {t.id: (t, GlobSet(t.allowed_models)) for t in tenants}
        self._config = {}
        for tenant, allowed in self._tenants.values():
            for key in tenant.keys:
                self._config[key.digest] = (
                    key.digest,
                    Principal(tenant, key.name, allowed),
                )
        self._by_digest = self._config
        self._store = store
        self._generation = generation
        self._seen = None
        self._lock = threading.Lock()

    def _refresh(self):
        with self._lock:
            current = self._generation.get()
            if current == self._seen:
                return
            index = dict(self._config)
            for tenant_id, name, digest, _ in self._store.active():
                found = self._tenants.get(tenant_id)
                if found is not None and digest not in index:
                    tenant, allowed = found
                    index[digest] = (digest, Principal(tenant, name, allowed))
            self._by_digest = index  # ORDER: publish the whole index at once
            self._seen = current

    def names(self, tenant_id):
        """Names of the tenant's keys in use (config and run time)."""
        if self._generation is not None and self._generation.get() != self._seen:
            self._refresh()
        return {
            p.key_name for _, p in self._by_digest.values() if p.tenant.id == tenant_id
        }

    def authenticate(self, authorization, api_key_header):
        """The `Principal` for the presented credentials, or `AuthenticationFailed`."""
        if self._generation is not None and self._generation.get() != self._seen:
            self._refresh()
        key = presented_key(authorization, api_key_header)
        digest = hashlib.sha256(key.encode('utf-8', 'surrogatepass')).digest()
        hit = self._by_digest.get(digest)
        if hit is None or not hmac.compare_digest(hit[0], digest):
            raise AuthenticationFailed(_BAD_KEY)
        return hit[1]
