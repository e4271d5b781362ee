"""The ``tenants`` section: tenants, their keys, limits, budgets and policies
(the rules themselves are read by `aegisflow.config.scope`)."""

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.cache import CacheOverride
from aegisflow.config.cache import read_override
from aegisflow.config.common import _NAME
from aegisflow.config.scope import KEY_SCOPE_KEYS
from aegisflow.config.scope import TENANT_KEYS
from aegisflow.config.scope import Budget
from aegisflow.config.scope import KeyScope
from aegisflow.config.scope import RateLimit
from aegisflow.config.scope import read_budget
from aegisflow.config.scope import read_key_scope
from aegisflow.config.scope import read_model_limits
from aegisflow.config.scope import read_rate_limit

# a tenant of the file: what the admin API takes, plus its keys and cache override
_TENANT_KEYS = ('id', 'keys') + TENANT_KEYS[1:] + ('cache',)
_HEX64 = re.compile(r'[0-9a-fA-F]{64}\Z')


@dataclass(frozen=True, slots=True)
class KeyConfig:
    digest: bytes = field(repr=False)
    name: str
    scope: KeyScope = KeyScope()  # its own models, limits, budget, expiry

    @property
    def rate_limit(self):
        return self.scope.rate_limit

    @property
    def budget(self):
        return self.scope.budget


@dataclass(frozen=True, slots=True)
class TenantConfig:
    id: str
    keys: tuple
    allowed_models: tuple = ('*',)
    rate_limit: RateLimit | None = None
    user_rate_limit: RateLimit | None = None
    model_limits: tuple = ()  # ((model glob, RateLimit), ...) in config order
    budget: Budget | None = None
    policies: tuple | None = None  # names of the policies it runs; None: all
    cache: CacheOverride | None = None


class TenantsSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def tenants(self, node):
        out, ids, digests = [], {}, {}
        for item in node.list(min_items=1, what='a list of tenants'):
            if not item.mapping(_TENANT_KEYS):
                continue
            tid = item.get('id').str(
                check=_NAME.match, expected='an id of letters, digits, _ . - (max 64)'
            )
            if tid is not None and tid in ids:
                item.get('id').fail(f'a tenant id not already used by {ids[tid]}')
            elif tid is not None:
                ids[tid] = item.path
            keys = []
            for i, knode in enumerate(
                item.get('keys').list(min_items=1, what='a list of keys')
            ):
                key = self.key(knode, i, digests)
                if key is not None:
                    if any(k.name == key.name for k in keys):
                        knode.get('name').fail('a key name unique within the tenant')
                    keys.append(key)
            allowed = ('*',)
            if not item.get('allowed_models').missing:
                allowed = self.globs(
                    item.get('allowed_models'), what='a list of model names or globs'
                )
            if tid is not None:
                out.append(
                    TenantConfig(
                        id=tid,
                        keys=tuple(keys),
                        allowed_models=allowed,
                        rate_limit=self.rate_limit(item.get('rate_limit')),
                        user_rate_limit=self.rate_limit(item.get('user_rate_limit')),
                        model_limits=self.model_limits(item.get('model_limits')),
                        budget=self.budget(item.get('budget')),
                        policies=self.tenant_policies(item.get('policies')),
                        cache=read_override(item.get('cache')),
                    )
                )
        return out

    def key(self, node, index, digests):
        sources = ('key', 'key_env', 'key_sha256')
        if not node.mapping(sources + ('name',) + KEY_SCOPE_KEYS):
            return None
        given = [s for s in sources if not node.get(s).missing]
        if len(given) != 1:
            node.fail(
                'exactly one of key, key_env, key_sha256',
                found=', '.join(given) if given else 'none of them',
            )
            return None
        source = node.get(given[0])
        if given[0] == 'key':
            secret = source.str(secret=True, expected='a non-empty string')
            digest = hashlib.sha256(secret.encode()).digest() if secret else None
        elif given[0] == 'key_env':
            secret = self.required_env(source)
            digest = hashlib.sha256(secret.encode()).digest() if secret else None
        else:
            hexed = source.str(check=_HEX64.match, expected='64 hexadecimal characters')
            digest = bytes.fromhex(hexed) if hexed else None
        name = node.get('name').str(
            f'key{index}',
            check=_NAME.match,
            expected='a key name of letters, digits, _ . -',
        )
        if digest is None:
            return None
        if digest in digests:
            node.fail(
                'a key not used elsewhere', found=f'the same key as {digests[digest]}'
            )
            return None
        digests[digest] = node.path
        return KeyConfig(digest=digest, name=name, scope=read_key_scope(node))

    def tenant_policies(self, node):
        """The names of the policies a tenant runs (None: every policy)."""
        if node.missing:
            return None
        names = []
        for ref in node.list(what='a list of policy names'):
            name = ref.str(expected='a policy name')
            if name is not None:
                self.policy_refs.append((ref, name))
                names.append(name)
        return tuple(names)

    def rate_limit(self, node):
        return read_rate_limit(node)

    def model_limits(self, node):
        return read_model_limits(node)

    def budget(self, node):
        return read_budget(node)
