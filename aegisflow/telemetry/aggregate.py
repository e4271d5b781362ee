"""Master-side aggregation: event records become usage-ledger rows, spans and access
log lines; summed counter cells become the Prometheus exposition.

`Aggregator` does no shared-memory work itself: the caller drains the rings and sums
the cells (``workers.runtime`` in Gunicorn, `LocalTelemetry` in one process) and hands
it plain payloads and `Totals`. `ingest` is cheap and runs under the caller's fork
gate; `flush` does the I/O (SQLite, span export) and may run outside it.
"""

import logging

import orjson

from aegisflow.pricing import PriceTable
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.accesslog import AccessLog
from aegisflow.telemetry.metrics import Exposition
from aegisflow.telemetry.metrics import Totals
from aegisflow.telemetry.metrics import exemplar
from aegisflow.telemetry.metrics import unpack
from aegisflow.telemetry.recorder import LocalSink
from aegisflow.telemetry.recorder import Recorder
from aegisflow.telemetry.spans import SpanBuilder
from aegisflow.telemetry.spans import make_exporter
from aegisflow.telemetry.tracecontext import Sampler

log = logging.getLogger('aegisflow.telemetry')


def _spent(e):
    """(prompt, completion, cached, reasoning tokens, cost in USD) the request
    spent: a cache hit spent none (its record holds what it saved)."""
    if e.cache == ev.CACHE_HIT:
        return 0, 0, 0, 0, 0.0
    return e.prompt, e.completion, e.cached, e.reasoning, e.cost_nano / 1e9


def outcome(event):
    if event.flags & ev.CLIENT_ABORT:
        return 'client_abort'
    if event.flags & ev.STREAM_ERROR:
        return 'stream_error'
    if event.flags & ev.CANCELLED:
        return 'cancelled'
    return 'ok' if 0 < event.status < 400 else 'error'


class Aggregator:
    def __init__(self, config, labels, *, ledger=None, access_stream=None):
        self.labels = labels
        self.access_stream = access_stream
        self.ledger = ledger
        self.exposition = Exposition(labels)
        # (family, tenant, model) -> {bucket: Exemplar}: the latest sampled trace
        # that landed in each histogram bucket
        self.exemplars = {}
        self.spans = []
        self.span_errors = 0
        self.spans_exported = 0
        self.records = 0
        self.bad_records = 0
        self.configure(config)

    def configure(self, config):
        """Apply a (re)loaded config: provider types for spans, exporter, access log."""
        self.access = None
        if config.telemetry.access_log:
            access = AccessLog(config.telemetry.log_format, self.access_stream)
            self.access = access if access.enabled() else None
        traces = config.telemetry.traces
        self.builder = SpanBuilder(
            self.labels,
            {p.name: p.type for p in config.providers},
            service_name=traces.service_name,
            resource=traces.resource,
        )
        if getattr(self, '_traces', None) != traces:
            old = getattr(self, 'exporter', None)
            if old is not None:
                old.shutdown()
            self.exporter = make_exporter(traces)
            self._traces = traces

    # -- records -------------------------------------------------------------------

    def ingest(self, payloads):
        want_spans = self.exporter is not None
        for payload in payloads:
            if not want_spans and payload[0] == ev.ATTEMPT and payload[1] == 0:
                self.records += 1  # PERF: attempt records only feed spans
                continue
            if payload[0] == ev.POLICY and payload[1] == 0:
                self._policy(payload, want_spans)
                continue
            try:
                event = ev.Event(payload)
            except Exception:  # a record we cannot read must not stop the others
                self.bad_records += 1
                continue
            self.records += 1
            if want_spans:
                span = self.builder.build(event)
                if span is not None:
                    self.spans.append(span)
            if event.kind != ev.REQUEST:
                continue
            if event.flags & ev.SAMPLED:
                self._exemplars(event)
            row = self._row(event)
            if self.ledger is not None and event.route not in ev.UNLEDGERED:
                self.ledger.add(row)
            if self.access is not None:
                self.access.add(row, event)

    def _exemplars(self, event):
        trace, span = event.trace_id.hex(), event.span_id.hex()
        ts = (event.start_ns + event.duration_ns) / 1e9
        for family, ns, bucket in (
            (ev.F_DURATION, event.duration_ns, ev.duration_bucket),
            (ev.F_TTFT, event.ttft_ns, ev.ttft_bucket),
        ):
            if ns:
                self.exemplars.setdefault((family, event.tenant, event.model), {})[
                    bucket(ns)
                ] = exemplar(trace, span, ns / 1e9, ts)

    def _policy(self, payload, want_spans):
        try:
            event = ev.PolicyEvent(payload)
        except Exception:
            self.bad_records += 1
            return
        self.records += 1
        names = self.labels
        dry = bool(event.flags & ev.DRY_RUN)
        # NOTE: a guardrail's verdict that let the request through, or only logged
        # or warned, is a span and a count: the audit log holds blocks and redactions
        audited = event.action in ('block', 'redact')
        if self.ledger is not None and audited:
            key = names.keys.name(event.key)
            self.ledger.add_audit(
                (
                    event.ts_ns,
                    'policy',
                    f'policy.{event.action}' + ('.dry_run' if dry else ''),
                    names.tenants.name(event.tenant),
                    event.policy,
                    orjson.dumps(
                        {
                            'request_id': event.request_id,
                            'key': key.partition('/')[2] if event.key > 1 else key,
                            'phase': event.phase,
                            'kind': event.finding,
                            'path': event.path,
                            'start': event.start,
                            'end': event.end,
                            'dry_run': dry,
                            **(
                                {
                                    'latency_ms': event.latency_ms,
                                    'cached': bool(event.flags & ev.GUARD_CACHED),
                                }
                                if event.flags & ev.GUARD
                                else {}
                            ),
                        }
                    ).decode(),
                )
            )
        if want_spans:
            span = self.builder.guardrail(event)
            if span is not None:
                self.spans.append(span)

    def _row(self, e):
        names = self.labels
        tenant = names.tenants.name(e.tenant)
        key = names.keys.name(e.key)
        return (
            e.start_ns,
            e.request_id,
            tenant,
            key.partition('/')[2] if e.key > 1 else key,
            names.models.name(e.model),
            e.requested_model,
            e.response_model,
            names.providers.name(e.provider),
            e.status,
            int(bool(e.flags & ev.STREAMED)),
            outcome(e),
            *_spent(e),
            round(e.duration_ns / 1e6, 3),
            round(e.ttft_ns / 1e6, 3) if e.ttft_ns else None,
            e.attempts,
            0 if e.cache == ev.CACHE_HIT else e.cache_write,
            ev.ROUTES[e.route] if e.route < len(ev.ROUTES) else 'other',
            int(e.cache == ev.CACHE_HIT),
            e.cost_nano / 1e9 if e.cache == ev.CACHE_HIT else 0.0,
        )

    def flush(self):
        """Write pending ledger rows and log lines, export pending spans. Never
        raises."""
        if self.access is not None:
            self.access.flush()
        if self.ledger is not None:
            self.ledger.flush()
        if self.spans and self.exporter is not None:
            spans, self.spans = self.spans, []
            try:
                result = self.exporter.export(spans)
                ok = getattr(result, 'name', 'SUCCESS') == 'SUCCESS'
            except Exception:
                log.exception('span export failed')
                ok = False
            if ok:
                self.spans_exported += len(spans)
            else:
                self.span_errors += 1
        elif self.exporter is None:
            self.spans.clear()

    def close(self):
        self.flush()
        if self.ledger is not None:
            self.ledger.close()
        if self.exporter is not None:
            self.exporter.shutdown()

    # -- exposition ----------------------------------------------------------------

    def counters(self):
        out = {
            'aegisflow_events': ('Event records aggregated.', self.records),
            'aegisflow_events_unreadable': (
                'Event records that could not be decoded.',
                self.bad_records,
            ),
            'aegisflow_spans_exported': (
                'Spans handed to the exporter successfully.',
                self.spans_exported,
            ),
            'aegisflow_span_export_errors': (
                'Span export batches that failed.',
                self.span_errors,
            ),
        }
        if self.ledger is not None:
            out['aegisflow_ledger_rows_written'] = (
                'Usage rows written to the ledger.',
                self.ledger.written,
            )
            out['aegisflow_ledger_errors'] = (
                'Ledger writes that failed (rows kept).',
                self.ledger.errors,
            )
            out['aegisflow_ledger_rows_pruned'] = (
                'Usage rows deleted past storage.retention_days.',
                self.ledger.pruned,
            )
            out['aegisflow_ledger_rows_dropped'] = (
                'Pending rows dropped past the cap.',
                self.ledger.dropped,
            )
        return out

    def render(self, totals, counters=None, gauges=None):
        merged = dict(self.counters())
        merged.update(counters or {})
        gauges = dict(gauges or {})
        if self.ledger is not None:
            gauges['aegisflow_ledger_rows_pending'] = (
                'Usage rows waiting to be written.',
                [],
                [([], len(self.ledger.pending))],
            )
        return self.exposition.render(totals, merged, gauges, self.exemplars)


class LocalTelemetry:
    """Telemetry for the app in one process (no Gunicorn): counters in memory, the
    exposition rendered when asked, no ledger unless given one."""

    def __init__(self, config, labels, *, ledger=None):
        self.sink = LocalSink()
        self.recorder = Recorder(
            self.sink,
            labels,
            PriceTable(config.prices, config.providers),
            Sampler.of(config.telemetry.traces),
        )
        self.aggregator = Aggregator(config, labels, ledger=ledger)

    def metrics(self, openmetrics=False):
        self.aggregator.ingest(self.sink.records)
        self.sink.records = []
        self.aggregator.flush()
        return unpack(
            self.aggregator.render(Totals().add(self.sink.cells())), openmetrics
        )

    def checks(self):
        return ()
