"""Admin endpoints for keys created at run time and for the audit log.

- ``GET /admin/v1/tenants/{id}/keys``: the tenant's keys, config and run-time, never
  a secret, a page at a time (``limit`` 1 to 1000, default 1000; ``offset``; ``q``,
  a part of a key's name or id; ``total`` counts every match);
- ``POST /admin/v1/tenants/{id}/keys`` ``{"name": "...", ...scope}``: a new key,
  shown once in the answer and stored only as its SHA-256; it works on every worker
  at its next request. Its scope (``allowed_models``, ``rate_limit``, ``budget``,
  ``expires_at``, ``metadata``) is read by the same schema as a key in the config
  file (`aegisflow.config.scope`), and refused in the same words;
- ``PATCH /admin/v1/keys/{key_id}``: change a run-time key's scope (the fields
  given replace theirs; ``null`` removes one);
- ``POST /admin/v1/keys/{key_id}/rotate`` ``{"grace_s": N}``: a new secret for the
  same key; the old one stops at once, or after ``grace_s`` seconds;
- ``DELETE /admin/v1/keys/{key_id}``: revoke a run-time key (keys written in the
  config file are removed by editing it);
- ``GET /admin/v1/audit``: admin actions, newest first (filters tenant, action, from,
  to, limit).
"""

import re

import orjson

from aegisflow.auth import runtime_tenants
from aegisflow.config.scope import KEY_SCOPE_KEYS
from aegisflow.config.scope import scope_from_json
from aegisflow.config.scope import scope_to_json
from aegisflow.errors import ApiError
from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.usage.query import parse_time
from aegisflow.web.admin_resource import AdminResource
from aegisflow.web.admin_resource import single_params
from aegisflow.web.admin_resource import the_change
from aegisflow.web.body import read_json

_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z')


class Conflict(ApiError):
    status = 409
    type = 'invalid_request_error'
    default_code = 'conflict'


def audit(gw, req, action, **fields):
    gw.keystore.audit(
        'admin',
        action,
        request_id=req.context.request_id,
        source=req.context.request.client,
        **fields,
    )


class AdminKeys(AdminResource):
    __slots__ = ()

    def _tenant(self, tenant_id):
        tenant = next((t for t in self.gw.config.tenants if t.id == tenant_id), None)
        if tenant is None:
            tenant = runtime_tenants(self.gw.keystore).get(tenant_id)
        if tenant is None:
            raise NotFound(f"No tenant '{tenant_id[:64]}'.", code='tenant_not_found')
        return tenant

    def on_get(self, req, resp, tenant_id):
        self.auth.check(req)
        params = single_params(req)
        limit = _bounded(params, 'limit', 1000, 1, 1000)
        offset = _bounded(params, 'offset', 0, 0, 10**9)
        tenant = self._tenant(tenant_id)
        keys = [{'name': k.name, 'source': 'config'} for k in tenant.keys]
        keys += self.gw.keystore.listing(tenant.id)
        q = params.get('q')
        if q:
            q = q.lower()
            keys = [
                k
                for k in keys
                if q in k['name'].lower() or q in k.get('id', '').lower()
            ]
        resp.data = orjson.dumps(
            {
                'tenant': tenant.id,
                'keys': keys[offset : offset + limit],
                'total': len(keys),
                'offset': offset,
                'limit': limit,
            }
        )

    def on_post(self, req, resp, tenant_id):
        self.auth.check(req)
        tenant = self._tenant(tenant_id)
        body = read_json(req, 8192, self.gw.config.server.body_timeout_s)
        name = body.get('name')
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequest(
                "Invalid 'name': expected 1-64 letters, digits, _ . -", param='name'
            )
        scope = scope_to_json(_scope(body, ('name',)))
        key_id, key = self.gw.keystore.create(
            tenant.id, name, self.gw.keys.names(tenant.id), scope
        )
        if key_id is None:
            raise Conflict(
                f"Tenant '{tenant.id}' already has a key named '{name}'.", param='name'
            )
        self.gw.key_generation.bump()  # ORDER: after the row is committed
        audit(self.gw, req, 'key.create', tenant=tenant.id, target=key_id, name=name)
        resp.status = 201
        resp.data = orjson.dumps(
            {
                'id': key_id,
                'tenant': tenant.id,
                'name': name,
                'key': key,
                'note': 'shown once; store it now',
                **scope,
            }
        )


class AdminKey(AdminResource):
    __slots__ = ()

    def on_patch(self, req, resp, key_id):
        """The fields given replace the key's; ``null`` removes one."""
        self.auth.check(req)
        found = self.gw.keystore.get(key_id)
        if found is None:
            raise _no_key(key_id)
        tenant, name, current = found
        body = read_json(req, 8192, self.gw.config.server.body_timeout_s)
        merged = {**current, **body}
        merged = {k: v for k, v in merged.items() if v is not None}
        # NOTE: the change itself first, so an error names its field (null: removed)
        _scope(the_change(body, KEY_SCOPE_KEYS), ())
        scope = scope_to_json(_scope(merged, ()))
        if self.gw.keystore.update(key_id, scope) is None:
            raise _no_key(key_id)
        self.gw.key_generation.bump()  # ORDER: after the row is committed
        audit(self.gw, req, 'key.update', tenant=tenant, target=key_id, **scope)
        resp.data = orjson.dumps(
            {'id': key_id, 'tenant': tenant, 'name': name, **scope}
        )

    def on_delete(self, req, resp, key_id):
        self.auth.check(req)
        tenant = self.gw.keystore.revoke(key_id)
        if tenant is None:
            raise NotFound(
                f"No live run-time key '{key_id[:40]}' (keys written in the "
                'config file are removed by editing it).',
                code='key_not_found',
            )
        self.gw.key_generation.bump()
        audit(self.gw, req, 'key.revoke', tenant=tenant, target=key_id)
        resp.data = orjson.dumps({'id': key_id, 'tenant': tenant, 'revoked': True})


class AdminKeyRotate(AdminResource):
    __slots__ = ()

    def on_post(self, req, resp, key_id):
        """Body (optional): ``{"grace_s": N}``, 0 to 86400 (default 0)."""
        self.auth.check(req)
        body = {}
        if req.content_length:
            body = read_json(req, 1024, self.gw.config.server.body_timeout_s)
        unknown = set(body) - {'grace_s'}
        if unknown:
            name = sorted(unknown)[0][:40]
            raise InvalidRequest(
                f"Unknown field '{name}'; expected grace_s.", param=name
            )
        grace = body.get('grace_s', 0)
        if (
            not isinstance(grace, (int, float))
            or isinstance(grace, bool)
            or not 0 <= grace <= 86400
        ):
            raise InvalidRequest(
                "Invalid 'grace_s': expected a number from 0 to 86400.",
                param='grace_s',
            )
        rotated = self.gw.keystore.rotate(key_id, grace)
        if rotated is None:
            raise _no_key(key_id)
        tenant, key = rotated
        self.gw.key_generation.bump()  # ORDER: after the row is committed
        audit(self.gw, req, 'key.rotate', tenant=tenant, target=key_id, grace_s=grace)
        resp.data = orjson.dumps(
            {
                'id': key_id,
                'tenant': tenant,
                'key': key,
                'previous_valid_s': grace,
                'note': 'shown once; store it now',
            }
        )


def _bounded(params, name, default, low, high):
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"Invalid '{name}': expected {low} to {high}.", param=name)
    return int(value)


def _scope(body, extra):
    """The `KeyScope` in an admin body, or 400 naming the first field at fault,
    in the words the config file's check uses."""
    scope, problems = scope_from_json(body, extra)
    if problems:
        first = problems[0]
        raise InvalidRequest(
            '; '.join(str(p) for p in problems[:5]),
            param=first.path or None,
            code='invalid_key_scope',
        )
    return scope


def _no_key(key_id):
    return NotFound(
        f"No live run-time key '{key_id[:40]}' (keys written in the config file are "
        'changed by editing it).',
        code='key_not_found',
    )


class AdminAudit(AdminResource):
    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        params = single_params(req)
        start = parse_time(params['from'], 'from') if params.get('from') else None
        end = parse_time(params['to'], 'to') if params.get('to') else None
        limit = _bounded(params, 'limit', 1000, 1, 10000)
        rows = self.gw.keystore.audit_rows(
            tenant=params.get('tenant'),
            action=params.get('action'),
            start=start,
            end=end,
            limit=limit,
        )
        resp.data = orjson.dumps({'entries': rows})
