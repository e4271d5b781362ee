"""Tenant API keys: an in-memory index of SHA-256 digests, built once.

A presented key is hashed once and looked up by digest; the hit is confirmed with a
constant-time comparison. Keys themselves are never stored or logged.
"""

import hashlib
import hmac
from dataclasses import dataclass

from aegisflow.errors import AuthenticationFailed
from aegisflow.globs import GlobSet

_MISSING_KEY = (
    "Missing API key. Send it as 'Authorization: Bearer <key>' "
    "or as 'X-API-Key: <key>'."
)
_BAD_KEY = 'Invalid API key.'


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
    __slots__ = ('_by_digest',)

    def __init__(self, tenants):
        index = {}
        for tenant in tenants:
            allowed = GlobSet(tenant.allowed_models)
            for key in tenant.keys:
                index[key.digest] = (key.digest, Principal(tenant, key.name, allowed))
        self._by_digest = index

    def authenticate(self, authorization, api_key_header):
        """The `Principal` for the presented credentials, or `AuthenticationFailed`."""
        key = None
        if authorization:
            scheme, _, value = authorization.partition(' ')
            if scheme.lower() == 'bearer':
                key = value.strip()
        if not key and api_key_header:
            key = api_key_header.strip()
        if not key:
            raise AuthenticationFailed(_MISSING_KEY, code='missing_api_key')
        digest = hashlib.sha256(key.encode('utf-8', 'surrogatepass')).digest()
        hit = self._by_digest.get(digest)
        if hit is None or not hmac.compare_digest(hit[0], digest):
            raise AuthenticationFailed(_BAD_KEY)
        return hit[1]
