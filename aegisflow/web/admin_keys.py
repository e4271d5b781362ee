"""Admin endpoints for keys created at run time and for the audit log.

- ``GET /admin/v1/tenants/{id}/keys``: the tenant's keys, config and run-time, never
  a secret;
- ``POST /admin/v1/tenants/{id}/keys`` ``{"name": "..."}``: a new key, shown once in
  the answer and stored only as its SHA-256; it works on every worker at its next
  request;
- ``DELETE /admin/v1/keys/{key_id}``: revoke a run-time key (keys written in the
  config file are removed by editing it);
- ``GET /admin/v1/audit``: admin actions, newest first (filters tenant, action, from,
  to, limit).
"""

import re

import orjson

from aegisflow.errors import ApiError
from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.usage.query import parse_time
from aegisflow.web.admin_resource import AdminResource
from aegisflow.web.admin_resource import single_params
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
            raise NotFound(f"No tenant '{tenant_id[:64]}'.", code='tenant_not_found')
        return tenant

    def on_get(self, req, resp, tenant_id):
        self.auth.check(req)
        tenant = self._tenant(tenant_id)
        keys = [{'name': k.name, 'source': 'config'} for k in tenant.keys]
        keys += self.gw.keystore.listing(tenant.id)
        resp.data = orjson.dumps({'tenant': tenant.id, 'keys': keys})

    def on_post(self, req, resp, tenant_id):
        self.auth.check(req)
        tenant = self._tenant(tenant_id)
        body = read_json(req, 4096, self.gw.config.server.body_timeout_s)
        name = body.get('name')
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequest(
                "Invalid 'name': expected 1-64 letters, digits, _ . -", param='name'
            )
        key_id, key = self.gw.keystore.create(
            tenant.id, name, self.gw.keys.names(tenant.id)
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
            }
        )


class AdminKey(AdminResource):
    __slots__ = ()

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


class AdminAudit(AdminResource):
    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        params = single_params(req)
        start = parse_time(params['from'], 'from') if params.get('from') else None
        end = parse_time(params['to'], 'to') if params.get('to') else None
        limit = params.get('limit', '1000')
        if not limit.isdigit() or not 1 <= int(limit) <= 10000:
            raise InvalidRequest("Invalid 'limit': expected 1 to 10000.", param='limit')
        rows = self.gw.keystore.audit_rows(
            tenant=params.get('tenant'),
            action=params.get('action'),
            start=start,
            end=end,
            limit=int(limit),
        )
        resp.data = orjson.dumps({'entries': rows})
