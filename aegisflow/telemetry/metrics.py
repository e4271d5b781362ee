"""Prometheus exposition of the summed counter cells (a prometheus_client collector).

Every label value comes from the label space, that is from the config: a model the
config does not name is ``other``; a request that never got that far is ``none``.
"""

from prometheus_client.core import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from prometheus_client.samples import Exemplar

from aegisflow.limits.plan import REASONS
from aegisflow.telemetry import events as ev

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
_SPLIT = 4  # bytes of the Prometheus text's length at the start of a packed page


def pack(text, openmetrics):
    """Both expositions in one page: the Prometheus text, then OpenMetrics."""
    return len(text).to_bytes(_SPLIT, 'little') + text + openmetrics


def unpack(page, openmetrics=False):
    """One exposition of a packed page."""
    cut = _SPLIT + int.from_bytes(page[:_SPLIT], 'little')
    return page[cut:] if openmetrics else page[_SPLIT:cut]


_NANO = 1e-9


class Totals:
    """Counter cells summed by key (values are lists of 15 integers)."""

    __slots__ = ('values',)

    def __init__(self):
        self.values = {}

    def add(self, cells):
        values = self.values
        for key, vals in cells:
            acc = values.get(key)
            if acc is None:
                values[key] = list(vals)
            else:
                for i, v in enumerate(vals):
                    acc[i] += v
        return self

    def copy(self):
        out = Totals()
        out.values = {k: list(v) for k, v in self.values.items()}
        return out

    def requests(self):
        return sum(v[0] for k, v in self.values.items() if k >> 56 == ev.F_REQUESTS)


def _counter(name, doc, *labels):
    return CounterMetricFamily(name, doc, labels=list(labels))


def _add_histogram(family, labels, values, bounds, exemplars=None):
    """`exemplars`: {bucket index: Exemplar} (OpenMetrics only shows them)."""
    cumulative, buckets = 0, []
    for i, bound in enumerate(bounds):
        cumulative += values[i]
        buckets.append((repr(bound), cumulative))
    buckets.append(('+Inf', cumulative + values[len(bounds)]))
    if exemplars:
        buckets = [
            (le, n, exemplars[i]) if i in exemplars else (le, n)
            for i, (le, n) in enumerate(buckets)
        ]
    family.add_metric(labels, buckets, values[ev.SUM_INDEX] / 1e6)


class GatewayCollector:
    """Yields the gateway's metric families from the latest totals and gauges."""

    def __init__(self, labels):
        self.labels = labels
        self.totals = Totals()
        self.counters = {}  # name -> (doc, value): unlabelled counters
        self.gauges = {}  # name -> (doc, label names, [(label values, value)])
        # (family, tenant id, model id) -> {bucket index: Exemplar}
        self.exemplars = {}

    def collect(self):
        f = {
            'req': _counter(
                'aegisflow_requests',
                'Requests answered, by HTTP status and endpoint (chat, messages, '
                'embeddings, count_tokens, models, other).',
                'tenant',
                'model',
                'provider',
                'status',
                'endpoint',
            ),
            'stream_err': _counter(
                'aegisflow_stream_errors',
                'Streams ended by an error event after the first byte.',
                'tenant',
                'model',
                'provider',
            ),
            'aborts': _counter(
                'aegisflow_client_aborts',
                'Streams the client closed before the end.',
                'tenant',
                'model',
                'provider',
            ),
            'tokens': _counter(
                'aegisflow_tokens',
                'Tokens by direction.',
                'tenant',
                'model',
                'direction',
            ),
            'cost': _counter(
                'aegisflow_cost_usd',
                'Cost in USD from the price table.',
                'tenant',
                'model',
            ),
            'unpriced': _counter(
                'aegisflow_unpriced_requests',
                'Requests with usage but no price for their model (cost 0).',
                'tenant',
                'model',
            ),
            'duration': HistogramMetricFamily(
                'aegisflow_request_duration_seconds',
                'Time from request to last byte.',
                labels=['tenant', 'model'],
            ),
            'ttft': HistogramMetricFamily(
                'aegisflow_time_to_first_token_seconds',
                'Time from request to the first streamed chunk.',
                labels=['tenant', 'model'],
            ),
            'upstream': _counter(
                'aegisflow_upstream_attempts',
                'Calls to providers, by upstream HTTP status (0: no answer).',
                'provider',
                'status',
            ),
            'retries': _counter(
                'aegisflow_upstream_retries',
                "Upstream calls that were not a request's first attempt.",
                'provider',
            ),
            'rejects': _counter(
                'aegisflow_rate_limit_rejections',
                'Requests refused by a limit, by reason (requests, tokens, parallel, '
                'budget, unavailable).',
                'tenant',
                'model',
                'reason',
            ),
            'reserved': _counter(
                'aegisflow_tokens_reserved',
                'Tokens reserved at admission (compare with aegisflow_tokens_total, '
                'what was reconciled).',
                'tenant',
                'model',
            ),
            'policy': _counter(
                'aegisflow_policy_decisions',
                'Policy findings by policy, phase and action taken (mode dry_run: '
                'what it would have done).',
                'tenant',
                'policy',
                'phase',
                'action',
                'mode',
            ),
            'guard': _counter(
                'aegisflow_guardrail_verdicts',
                'Guardrail verdicts (moderation endpoints, guard models) by '
                'verdict (allow, block, error, timeout) and category (the '
                "policy's configured names only; other for the rest), and "
                'whether the verdict cache gave it.',
                'tenant',
                'policy',
                'verdict',
                'category',
                'source',
            ),
            'guard_seconds': _counter(
                'aegisflow_guardrail_seconds',
                'Time spent waiting for guardrail calls (cached verdicts: none).',
                'tenant',
                'policy',
            ),
            'degraded': _counter(
                'aegisflow_limits_degraded',
                'Requests admitted without the limits store (fail open).',
                'tenant',
                'model',
            ),
            'cache': _counter(
                'aegisflow_cache_requests',
                'Requests the response cache applied to, by result (hit, miss, '
                'bypass, store-skipped).',
                'tenant',
                'model',
                'result',
            ),
            'cache_saved': _counter(
                'aegisflow_cache_saved_usd',
                'What cache hits would have cost at the provider, in USD.',
                'tenant',
                'model',
            ),
        }
        for k, v in sorted(self.totals.values.items()):
            if any(
                v
            ):  # NOTE: reserved fallback cells that never took a count are skipped
                unkeyed = ev.unkey(k)
                if unkeyed[0] == ev.F_CACHE:
                    names = self.labels
                    tenant, model = (
                        names.tenants.name(unkeyed[1]),
                        names.models.name(unkeyed[2]),
                    )
                    _add_cache(f, tenant, model, unkeyed[4], v)
                elif unkeyed[0] == ev.F_GUARD:
                    _, a, b, c, d = unkeyed
                    names = self.labels
                    _add_guard(f, names, names.tenants.name(a), b, c, d, v)
                else:
                    self._sample(f, unkeyed, v)
        yield from f.values()
        for name, (doc, value) in sorted(self.counters.items()):
            fam = CounterMetricFamily(name, doc)
            fam.add_metric([], value)
            yield fam
        for name, (doc, label_names, samples) in sorted(self.gauges.items()):
            # NOTE: a "gauge" named *_total only ever grows: it is a counter
            kind = CounterMetricFamily if name.endswith('_total') else GaugeMetricFamily
            fam = kind(name, doc, labels=label_names)
            for values, value in samples:
                fam.add_metric(values, value)
            yield fam

    def _sample(self, f, unkeyed, v):
        family, a, b, c, d = unkeyed
        names = self.labels
        tenant, model = names.tenants.name(a), names.models.name(b)
        provider = names.providers.name(c)
        if family == ev.F_REQUESTS:
            status, route = d & 0x3FF, d >> 10
            endpoint = ev.ROUTES[route] if route < len(ev.ROUTES) else 'other'
            f['req'].add_metric(
                [tenant, model, provider, str(status) if status else 'other', endpoint],
                v[0],
            )
            if v[1]:
                f['stream_err'].add_metric([tenant, model, provider], v[1])
            if v[2]:
                f['aborts'].add_metric([tenant, model, provider], v[2])
        elif family == ev.F_TOKENS:
            for i, direction in (
                (0, 'prompt'),
                (1, 'completion'),
                (2, 'cached'),
                (6, 'cache_write'),
                (4, 'reasoning'),
            ):
                f['tokens'].add_metric([tenant, model, direction], v[i])
            f['cost'].add_metric([tenant, model], v[3] * _NANO)
            if v[5]:
                f['unpriced'].add_metric([tenant, model], v[5])
        elif family == ev.F_DURATION:
            _add_histogram(
                f['duration'],
                [tenant, model],
                v,
                ev.DURATION_BUCKETS,
                self.exemplars.get((family, a, b)),
            )
        elif family == ev.F_TTFT:
            _add_histogram(
                f['ttft'],
                [tenant, model],
                v,
                ev.TTFT_BUCKETS,
                self.exemplars.get((family, a, b)),
            )
        elif family == ev.F_REJECTS:
            reason = REASONS[d - 1] if 0 < d <= len(REASONS) else 'other'
            f['rejects'].add_metric([tenant, model, reason], v[0])
        elif family == ev.F_LIMITS:
            f['reserved'].add_metric([tenant, model], v[0])
            if v[1]:
                f['degraded'].add_metric([tenant, model], v[1])
        elif family == ev.F_POLICY:
            action = ev.POLICY_ACTIONS[d >> 1] if d >> 1 < 5 else 'other'
            f['policy'].add_metric(
                [
                    tenant,
                    names.policies.name(b),
                    ev.POLICY_PHASES[c] if c < 2 else 'other',
                    action,
                    'dry_run' if d & 1 else 'enforce',
                ],
                v[0],
            )
        elif family == ev.F_UPSTREAM:
            f['upstream'].add_metric([provider, str(d)], v[0])
            if v[1]:
                f['retries'].add_metric([provider], v[1])


def _add_guard(f, names, tenant, policy_id, category, d, v):
    from aegisflow.guardrails import VERDICTS
    from aegisflow.guardrails import category_name

    policy = names.policies.name(policy_id)
    verdict = VERDICTS[d >> 1] if d >> 1 < len(VERDICTS) else 'other'
    shown = category_name(names.guard_categories.get(policy, ()), category)
    f['guard'].add_metric(
        [tenant, policy, verdict, shown, 'cache' if d & 1 else 'guard'], v[0]
    )
    if v[1]:
        f['guard_seconds'].add_metric([tenant, policy], v[1] / 1e6)


def _add_cache(f, tenant, model, result, v):
    name = ev.CACHE_RESULTS[result - 1] if 0 < result <= 4 else 'other'
    f['cache'].add_metric([tenant, model, name], v[0])
    if result == ev.CACHE_HIT:
        f['cache_saved'].add_metric([tenant, model], v[1] * _NANO)


class Exposition:
    """Renders the collector into Prometheus text."""

    def __init__(self, labels):
        self.collector = GatewayCollector(labels)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def render(self, totals, counters=None, gauges=None, exemplars=None):
        """Both expositions, packed (`pack`): Prometheus text, and OpenMetrics
        with the histograms' exemplars (a sampled trace per bucket)."""
        self.collector.totals = totals
        self.collector.counters = counters or {}
        self.collector.gauges = gauges or {}
        self.collector.exemplars = exemplars or {}
        return pack(generate_latest(self.registry), generate_openmetrics(self.registry))


def exemplar(trace_id, span_id, seconds, ts):
    return Exemplar({'trace_id': trace_id, 'span_id': span_id}, seconds, ts)
