"""The response cache: exact-match answers of chat completions, Messages and
Responses requests (in their chat form) and embeddings, shared by every worker of
a host (`local`, LMDB) or by every host (`remote`, Redis).

The pipeline asks for a `Ticket` once a request is admitted and its input policies
ran; the ticket holds the key and what the client's cache control allows. The key
is SHA-256 over the namespace (the tenant, or the tenant and key), the endpoint,
the route's targets (aliases resolved, so an alias and its model share entries),
the digest of the tenant's policy set, and the request after input policies, as
JSON with sorted keys, without the fields that do not change an answer
(`IGNORED`). An entry is the answer after output policies with the request's
redaction placeholders in place of its originals; each hit restores its own.
"""

import hashlib
import logging
import re
import shutil
import time

import orjson

from aegisflow.cache.errors import Unavailable
from aegisflow.cache.local import LocalStore
from aegisflow.cache.local import new_dir
from aegisflow.cache.remote import RedisStore

log = logging.getLogger('aegisflow.cache')

# request fields that do not change the answer, left out of the key
IGNORED = frozenset(
    (
        'user',
        'stream',
        'stream_options',
        'metadata',
        'store',
        'prompt_cache_key',
        'safety_identifier',
    )
)
VERSION = 1  # of the key and the entry; a change makes every old entry a miss
_DIRECTIVE = re.compile(r'\s*([A-Za-z-]+)\s*(?:=\s*"?(\d+)"?)?\s*(?:,|$)')


class Ticket:
    """What the cache does for one request: `result` is the X-AegisFlow-Cache
    value so far (hit, miss, bypass, store-skipped)."""

    __slots__ = ('key', 'name', 'ttl_s', 'lookup', 'store', 'max_age', 'result', 'tags')

    def __init__(self, key, name, ttl_s, lookup, store, max_age, tags):
        self.key = key
        self.name = name
        self.ttl_s = ttl_s
        self.lookup = lookup
        self.store = store
        self.max_age = max_age
        self.result = 'miss' if store or lookup else 'bypass'
        self.tags = tags


class Hit:
    __slots__ = ('entry', 'age_s')

    def __init__(self, entry, age_s):
        self.entry = entry
        self.age_s = age_s


class ResponseCache:
    def __init__(self, config, store, policy_digest, owned_dir=None, policies=()):
        self.config = config
        self.policies = policies  # every PolicyConfig, for tenants made at run time
        self.store = store
        self.policy_digest = policy_digest  # tenant id -> digest of its policy set
        self.errors = 0
        self.owned_dir = owned_dir  # removed on close

    @classmethod
    def build(cls, config, *, local=None):
        """The cache of `config` (None when it is off). `local`: the local store's
        (directory, max_bytes), the master's under Gunicorn (sized at its start);
        None: a new directory, removed on `close` (an app on its own)."""
        if not wanted(config):
            return None
        store, owned = build_store(config, local)
        return cls(config.cache, store, _policy_digests(config), owned, config.policies)

    # -- the request's ticket ------------------------------------------------------

    def ticket(self, endpoint, principal, resolution, route, tenant, body, control):
        """The `Ticket` of a request, or None when the cache does not apply.
        `route`, `tenant`: their ``cache`` overrides (or None); `control`: the
        client's Cache-Control value (or None)."""
        cc = self.config
        if endpoint not in cc.endpoints:
            return None
        enabled, ttl_s = cc.enabled, cc.ttl_s
        for override in (route, tenant):
            if override is not None:
                if override.enabled is not None:
                    enabled = override.enabled
                if override.ttl_s is not None:
                    ttl_s = override.ttl_s
        if not enabled:
            return None
        no_cache, no_store, max_age = parse_control(control)
        lookup, store = not no_cache and not no_store, not no_store
        if cc.only_deterministic and not _deterministic(body):
            lookup = store = False
        namespace = principal.tenant_id
        if cc.namespace_by == 'key':
            namespace = f'{principal.tenant_id}/{principal.key_name}'
        # NOTE: the model as asked is left out: the resolved model and targets are in
        canonical = {k: v for k, v in body.items() if k not in IGNORED and k != 'model'}
        key = hashlib.sha256(
            orjson.dumps(
                [
                    VERSION,
                    namespace,
                    endpoint,
                    resolution.model,
                    [[t.provider.name, t.model] for t in resolution.plan],
                    self._digest_of(principal.tenant),
                    canonical,
                ],
                option=orjson.OPT_SORT_KEYS,
            )
        ).digest()
        name = key
        if isinstance(self.store, RedisStore):
            name = self.store.name(key, principal.tenant_id, resolution.model)
        tags = (principal.tenant_id, resolution.model)
        return Ticket(key, name, ttl_s, lookup, store, max_age, tags)

    def _digest_of(self, tenant):
        found = self.policy_digest.get(tenant.id)
        if found is None:  # NOTE: a tenant created at run time
            chosen = [
                p
                for p in self.policies
                if tenant.policies is None or p.name in tenant.policies
            ]
            found = hashlib.sha256(repr(chosen).encode()).hexdigest()
        return found

    # -- lookups and stores --------------------------------------------------------

    def get(self, ticket):
        """The `Hit` of a ticket that may look up, or None (a miss)."""
        if not ticket.lookup:
            return None
        try:
            found = self.store.get(ticket.name)
        except Unavailable as err:
            self._failed('lookup', err)
            return None
        if found is None:
            return None
        stored_at, data = found
        age_s = max(0.0, _now() - stored_at)
        if ticket.max_age is not None and age_s > ticket.max_age:
            return None
        try:
            entry = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        ticket.result = 'hit'
        return Hit(entry, age_s)

    def put(self, ticket, entry):
        """Store `entry` (a dict) for `ticket`; sets ``ticket.result`` to
        store-skipped when it could not be."""
        if not ticket.store:
            return
        data = orjson.dumps(entry)
        if len(data) > self.config.max_entry_bytes:
            ticket.result = 'store-skipped'
            return
        try:
            stored = self.store.put(ticket.name, data, ticket.ttl_s)
        except Unavailable as err:
            self._failed('store', err)
            stored = False
        if not stored:
            ticket.result = 'store-skipped'

    def _failed(self, what, err):
        self.errors += 1
        log.warning(
            'cache %s failed; served as a miss', what, extra={'error': str(err)}
        )

    # -- admin ---------------------------------------------------------------------

    def stats(self):
        return self.store.stats()

    def delete(self, tenant=None, model=None):
        if isinstance(self.store, RedisStore):
            return self.store.delete(tenant, model)
        if tenant is None and model is None:
            return self.store.delete()

        def match(data):
            entry = orjson.loads(bytes(data))
            return (tenant is None or entry.get('tenant') == tenant) and (
                model is None or entry.get('model') == model
            )

        return self.store.delete(match)

    def close(self):
        self.store.close()
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def build_store(config, local=None):
    """(the store of ``config.cache``'s backend, the directory to remove on close or
    None). `local`: as for `ResponseCache.build`."""
    cc = config.cache
    if cc.backend == 'redis':
        store = RedisStore(cc.redis_url, config.state.key_prefix, cc.redis_timeout_ms)
        return store, None
    owned = None
    directory, max_bytes = local or (None, cc.max_bytes)
    if cc.path is not None:
        directory = cc.path
    elif directory is None:
        directory = owned = new_dir()
    return LocalStore(directory, max_bytes), owned


def verdicts_wanted(config):
    """Whether a guardrail of `config` caches its verdicts (in the cache's store,
    which then exists even with the response cache off)."""
    return any(
        p.options.get('cache_ttl_s') for p in config.policies if 'run' in p.options
    )


def wanted(config):
    """Whether `config` turns the cache on anywhere (the section, a route, a
    tenant)."""
    return config.cache.enabled or any(
        o is not None and o.enabled
        for o in [r.cache for r in config.routes] + [t.cache for t in config.tenants]
    )


def local_wanted(config):
    """Whether `config` needs the local store (the master makes its directory): the
    response cache, or guardrail verdicts, kept locally."""
    return config.cache.backend == 'local' and (
        wanted(config) or verdicts_wanted(config)
    )


def parse_control(value):
    """(no-cache, no-store, max-age or None) of a Cache-Control value."""
    if not value:
        return False, False, None
    no_cache = no_store = False
    max_age = None
    for name, number in _DIRECTIVE.findall(value):
        name = name.lower()
        if name == 'no-cache':
            no_cache = True
        elif name == 'no-store':
            no_store = True
        elif name == 'max-age' and number:
            max_age = int(number)
    return no_cache, no_store, max_age


def _deterministic(body):
    return body.get('temperature') == 0 or body.get('seed') is not None


def _policy_digests(config):
    """{tenant id: digest of the policies it runs}: a policy change makes the
    tenant's old entries misses."""
    out = {}
    for tenant in config.tenants:
        names = tenant.policies
        chosen = [p for p in config.policies if names is None or p.name in names]
        out[tenant.id] = hashlib.sha256(repr(chosen).encode()).hexdigest()
    return out


def _now():
    return time.time()
