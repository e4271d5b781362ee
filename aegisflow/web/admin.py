"""The admin API under ``/admin/v1/``, with its own key (``server.admin_key_env``).

A tenant key is refused there (403, never data); no key or a wrong one is 401; with
no admin key configured the admin API does not exist (404). Endpoints so far:

- ``GET /admin/v1/usage``: the usage ledger with filters and grouping, JSON or CSV;
- ``GET /admin/v1/usage/series``: usage as time series with a fixed step, for
  charts (`aegisflow.usage.series`);
- ``GET /admin/v1/config``: the config serving now (digest, source, counts);
- ``POST /admin/v1/reload``: ask the master to re-read the config (as SIGHUP does);
- ``GET|DELETE /admin/v1/cache``: the response cache (`admin_cache`);

and the console the browser loads from ``/admin/`` (`admin_console`).
"""

import hashlib
import hmac
import os
import signal

import orjson

from aegisflow.auth import presented_key
from aegisflow.errors import AuthenticationFailed
from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.errors import PermissionDenied
from aegisflow.errors import ServiceUnavailable
from aegisflow.usage.database import ERRORS as DB_ERRORS
from aegisflow.usage.database import Database
from aegisflow.usage.query import UsageQuery
from aegisflow.usage.query import run_usage
from aegisflow.usage.query import to_csv
from aegisflow.usage.series import SeriesQuery
from aegisflow.web.admin_cache import AdminCache
from aegisflow.web.admin_console import AdminConsole
from aegisflow.web.admin_keys import AdminAudit
from aegisflow.web.admin_keys import AdminKey
from aegisflow.web.admin_keys import AdminKeyRotate
from aegisflow.web.admin_keys import AdminKeys
from aegisflow.web.admin_keys import audit
from aegisflow.web.admin_resource import AdminResource
from aegisflow.web.admin_resource import single_params
from aegisflow.web.admin_state import AdminBreakers
from aegisflow.web.admin_state import AdminTenant
from aegisflow.web.admin_state import AdminTenants


class AdminAuth:
    __slots__ = ('digest', 'keys', 'guard')

    def __init__(self, gw):
        key = gw.config.server.admin_key
        self.digest = hashlib.sha256(key.encode()).digest() if key else None
        self.keys = gw.keys
        self.guard = gw.auth_guard

    def check(self, req):
        if self.digest is None:
            raise NotFound(
                'The admin API is not enabled (set server.admin_key_env).',
                code='unknown_url',
            )
        self.guard.authenticate(req.context.request.client, self._check, req)

    def _check(self, req):
        try:
            presented = presented_key(
                req.get_header('Authorization'), req.get_header('X-API-Key')
            )
        except AuthenticationFailed as exc:
            if exc.code != 'missing_api_key':
                raise
            raise AuthenticationFailed(
                'The admin API needs the admin key.', code='missing_api_key'
            ) from None
        digest = hashlib.sha256(presented.encode('utf-8', 'surrogatepass')).digest()
        if hmac.compare_digest(digest, self.digest):
            return
        try:
            self.keys.authenticate(f'Bearer {presented}', None)
        except AuthenticationFailed:
            raise AuthenticationFailed('Invalid admin key.') from None
        raise PermissionDenied(
            'Tenant keys cannot use the admin API.', code='admin_only'
        )


class AdminUsage:
    __slots__ = ('auth', 'database')

    def __init__(self, gw, auth):
        self.auth = auth
        self.database = Database.of(gw.config.storage)

    def on_get(self, req, resp):
        self.auth.check(req)
        params = single_params(req)
        query = UsageQuery.from_params(params)
        fmt = params.get('format') or (
            'csv' if 'text/csv' in (req.accept or '') else 'json'
        )
        if fmt not in ('json', 'csv'):
            raise InvalidRequest(
                "Invalid 'format': expected json or csv.", param='format'
            )
        rows, totals = _run(self.database, query)
        if fmt == 'csv':
            resp.text = to_csv(rows, query.group_by)
            resp.content_type = 'text/csv; charset=utf-8'
            return
        resp.data = orjson.dumps(
            {
                'from': query.start,
                'to': query.end,
                'group_by': list(query.group_by),
                'rows': rows,
                'totals': totals,
            }
        )


class AdminUsageSeries(AdminUsage):
    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        query = SeriesQuery.from_params(single_params(req))
        resp.data = orjson.dumps(_run(self.database, query))


def _run(database, query):
    try:
        return run_usage(database, query)
    except DB_ERRORS as exc:
        raise ServiceUnavailable(
            f'The usage ledger cannot be read right now ({type(exc).__name__}).',
            code='ledger_unavailable',
            headers={'Retry-After': '1'},
        ) from None


class AdminConfig(AdminResource):
    __slots__ = ()

    def on_get(self, req, resp):
        self.auth.check(req)
        config = self.gw.config
        resp.data = orjson.dumps(
            {
                'digest': config.digest,
                'source': config.source,
                'providers': [p.name for p in config.providers],
                'disabled_providers': [name for name, _ in config.disabled],
                'tenants': len(config.tenants),
                'routes': len(config.routes),
            }
        )


class AdminReload(AdminResource):
    __slots__ = ()

    def on_post(self, req, resp):
        self.auth.check(req)
        master = os.getppid()
        if master <= 1:
            raise ServiceUnavailable('No master process to reload.', code='no_master')
        os.kill(master, signal.SIGHUP)
        audit(self.gw, req, 'config.reload')
        resp.status = 202
        resp.data = orjson.dumps(
            {
                'status': 'reload requested',
                'note': (
                    'the master re-reads the config; an invalid file is refused '
                    'and the current config keeps serving'
                ),
            }
        )


def add_routes(app, gw):
    auth = AdminAuth(gw)
    app.add_route('/admin/v1/usage', AdminUsage(gw, auth))
    app.add_route('/admin/v1/usage/series', AdminUsageSeries(gw, auth))
    app.add_route('/admin/v1/config', AdminConfig(gw, auth))
    app.add_route('/admin/v1/reload', AdminReload(gw, auth))
    app.add_route('/admin/v1/tenants', AdminTenants(gw, auth))
    app.add_route('/admin/v1/tenants/{tenant_id}', AdminTenant(gw, auth))
    app.add_route('/admin/v1/tenants/{tenant_id}/keys', AdminKeys(gw, auth))
    app.add_route('/admin/v1/keys/{key_id}', AdminKey(gw, auth))
    app.add_route('/admin/v1/keys/{key_id}/rotate', AdminKeyRotate(gw, auth))
    app.add_route('/admin/v1/audit', AdminAudit(gw, auth))
    breakers = AdminBreakers(gw, auth)
    app.add_route('/admin/v1/breakers', breakers)
    app.add_route('/admin/v1/cache', AdminCache(gw, auth))
    console = AdminConsole(gw)
    app.add_route('/admin', console)
    app.add_route('/admin/{name}', console)
