"""``/admin/v1/cache``: the response cache's size and hit ratio (GET), and
emptying it, whole or a tenant's or a model's entries (DELETE, audited)."""

import orjson
from prometheus_client.parser import text_string_to_metric_families

from aegisflow.cache.errors import Unavailable
from aegisflow.errors import InvalidRequest
from aegisflow.errors import NotFound
from aegisflow.errors import ServiceUnavailable
from aegisflow.telemetry import events as ev
from aegisflow.web.admin_keys import audit
from aegisflow.web.admin_resource import AdminResource
from aegisflow.web.admin_resource import single_params

_RESULTS = 'aegisflow_cache_requests_total'


class AdminCache(AdminResource):
    __slots__ = ()

    def _cache(self):
        cache = self.gw.cache
        if cache is None:
            raise NotFound(
                'The response cache is off (no cache section in the config).',
                code='cache_disabled',
            )
        return cache

    def on_get(self, req, resp):
        self.auth.check(req)
        cache = self._cache()
        try:
            stats = cache.stats()
        except Unavailable as err:
            raise ServiceUnavailable(
                f'The cache store did not answer: {err}', code='cache_unavailable'
            ) from None
        results = self._results()
        looked_up = results['hit'] + results['miss']
        config = cache.config
        out = {
            'backend': config.backend,
            'ttl_s': config.ttl_s,
            'max_entry_bytes': config.max_entry_bytes,
            **stats,
            'requests': results,
            'hit_ratio': round(results['hit'] / looked_up, 6) if looked_up else None,
        }
        if config.backend == 'local':
            out['max_bytes'] = config.max_bytes
        resp.data = orjson.dumps(out)

    def _results(self):
        """Requests by cache result since the gateway started, as /metrics has
        them (every worker's)."""
        out = dict.fromkeys(ev.CACHE_RESULTS, 0)
        text = self.gw.telemetry.metrics(False)
        if isinstance(text, bytes):
            text = text.decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == _RESULTS and sample.labels.get('result') in out:
                    out[sample.labels['result']] += int(sample.value)
        return out

    def on_delete(self, req, resp):
        """Query: ``tenant``, ``model`` (both optional: without them, every entry)."""
        self.auth.check(req)
        cache = self._cache()
        params = single_params(req)
        unknown = set(params) - {'tenant', 'model'}
        if unknown:
            name = sorted(unknown)[0][:40]
            raise InvalidRequest(
                f"Unknown query parameter '{name}'; expected tenant, model.",
                param=name,
            )
        tenant, model = params.get('tenant'), params.get('model')
        try:
            deleted = cache.delete(tenant=tenant, model=model)
        except Unavailable as err:
            raise ServiceUnavailable(
                f'The cache store did not answer: {err}', code='cache_unavailable'
            ) from None
        audit(self.gw, req, 'cache.delete', tenant=tenant, model=model, deleted=deleted)
        resp.data = orjson.dumps({'deleted': deleted, 'tenant': tenant, 'model': model})
