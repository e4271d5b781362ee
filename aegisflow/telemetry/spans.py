"""OpenTelemetry spans rebuilt from event records, exported from one place.

A REQUEST record becomes the request's SERVER span; each ATTEMPT record a CLIENT span
under it. Names and attributes follow the GenAI semantic conventions: span name
``{gen_ai.operation.name} {gen_ai.request.model}``, and ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.provider.name``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``. Message content is
never put on a span. The exporter's ``export`` is called directly (no batch processor,
so no exporter thread is started in any forked worker).
"""

import logging
import os
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode
from opentelemetry.trace import TraceFlags

import aegisflow
from aegisflow.telemetry import events as ev

log = logging.getLogger('aegisflow.traces')

# gen_ai.provider.name values of the conventions, by provider type.
_GENAI_PROVIDER = {'openai': 'openai', 'anthropic': 'anthropic', 'ollama': 'ollama'}
_SCOPE = InstrumentationScope('aegisflow', aegisflow.__version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanBuilder:
    def __init__(
        self, labels, provider_types, *, service_name='aegisflow', resource=()
    ):
        self.labels = labels
        self.provider_types = dict(provider_types)  # provider name -> type
        # NOTE: resolved from the config and the OTEL_* variables at config load
        # (aegisflow.config.otel_env): what is given here wins over the SDK's own
        # reading of the environment
        self.resource = Resource.create(
            {
                'service.version': aegisflow.__version__,
                **dict(resource),
                'service.name': service_name,
            }
        )

    def _provider(self, ident):
        name = self.labels.providers.name(ident)
        return name, _GENAI_PROVIDER.get(self.provider_types.get(name), name)

    def build(self, event):
        if not event.flags & ev.SAMPLED:
            return None
        trace_id = int.from_bytes(event.trace_id, 'big')
        context = SpanContext(
            trace_id, int.from_bytes(event.span_id, 'big'), False, _SAMPLED
        )
        parent = None
        parent_id = int.from_bytes(event.parent_id, 'big')
        if parent_id:
            remote = event.kind == ev.REQUEST and bool(event.flags & ev.REMOTE_PARENT)
            parent = SpanContext(trace_id, parent_id, remote, _SAMPLED)
        provider, genai_provider = self._provider(event.provider)
        attrs = {
            'gen_ai.operation.name': 'chat',
            'aegisflow.request_id': event.request_id,
            'aegisflow.tenant': self.labels.tenants.name(event.tenant),
        }
        if event.provider:
            attrs['gen_ai.provider.name'] = genai_provider
            attrs['aegisflow.provider'] = provider
        if event.response_model:
            attrs['gen_ai.response.model'] = event.response_model
        error = (
            event.status >= 400 or event.status == 0 or event.flags & ev.STREAM_ERROR
        )
        if event.kind == ev.REQUEST:
            model = event.requested_model or self.labels.models.name(event.model)
            kind = SpanKind.SERVER
            route = ev.ROUTES[event.route] if event.route < len(ev.ROUTES) else 'other'
            attrs.update(
                {
                    'gen_ai.request.model': model,
                    'gen_ai.usage.input_tokens': event.prompt,
                    'gen_ai.usage.output_tokens': event.completion,
                    'http.request.method': 'POST' if route == 'chat' else 'GET',
                    'http.response.status_code': event.status,
                    'aegisflow.route': route,
                    'aegisflow.attempts': event.attempts,
                    'aegisflow.streamed': bool(event.flags & ev.STREAMED),
                }
            )
            if event.cache:
                hit = event.cache == ev.CACHE_HIT
                attrs['aegisflow.cache.hit'] = hit
                attrs['aegisflow.cache.result'] = ev.CACHE_RESULTS[event.cache - 1]
                if hit:  # NOTE: a hit spent no tokens: the record holds what it saved
                    attrs['gen_ai.usage.input_tokens'] = 0
                    attrs['gen_ai.usage.output_tokens'] = 0
            if event.cached and event.cache != ev.CACHE_HIT:
                attrs['gen_ai.usage.cache_read.input_tokens'] = event.cached
            if event.cache_write and event.cache != ev.CACHE_HIT:
                attrs['gen_ai.usage.cache_creation.input_tokens'] = event.cache_write
            if event.ttft_ns:
                attrs['aegisflow.time_to_first_token_s'] = event.ttft_ns / 1e9
            if event.flags & ev.CLIENT_ABORT:
                attrs['aegisflow.client_aborted'] = True
            if event.client:
                attrs['client.address'] = event.client
        else:
            model = event.requested_model
            kind = SpanKind.CLIENT
            attrs.update(
                {'gen_ai.request.model': model, 'aegisflow.attempt': event.attempt}
            )
            if event.status:
                attrs['http.response.status_code'] = event.status
        if error:
            attrs['error.type'] = (
                'stream_error'
                if event.flags & ev.STREAM_ERROR
                else str(event.status or 'no_response')
            )
        status = Status(StatusCode.ERROR) if error else Status(StatusCode.UNSET)
        return ReadableSpan(
            name=f'chat {model}' if model else 'chat',
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attrs,
            kind=kind,
            status=status,
            start_time=event.start_ns,
            end_time=event.start_ns + event.duration_ns,
            instrumentation_scope=_SCOPE,
        )

    def guardrail(self, event):
        """A span for a policy's block or redaction, or a guardrail's verdict (as
        long as its call took), under the request's span."""
        if not event.flags & ev.SAMPLED:
            return None
        guard = bool(event.flags & ev.GUARD)
        start = event.ts_ns - event.latency_ms * 1_000_000 if guard else event.ts_ns
        trace_id = int.from_bytes(event.trace_id, 'big')
        parent = SpanContext(
            trace_id, int.from_bytes(event.span_id, 'big'), False, _SAMPLED
        )
        context = SpanContext(
            trace_id, int.from_bytes(os.urandom(8), 'big') or 1, False, _SAMPLED
        )
        return ReadableSpan(
            name=f'guardrail {event.policy}',
            context=context,
            parent=parent,
            resource=self.resource,
            attributes={
                'aegisflow.request_id': event.request_id,
                'aegisflow.tenant': self.labels.tenants.name(event.tenant),
                'aegisflow.policy.name': event.policy,
                'aegisflow.policy.action': event.action,
                'aegisflow.policy.phase': event.phase,
                'aegisflow.policy.finding': event.finding,
                'aegisflow.policy.field': event.path,
                'aegisflow.policy.dry_run': bool(event.flags & ev.DRY_RUN),
                **(
                    {
                        'aegisflow.guardrail.verdict': event.finding
                        if event.finding in ('allow', 'timeout', 'error')
                        else 'block',
                        'aegisflow.guardrail.latency_ms': event.latency_ms,
                        'aegisflow.guardrail.cached': bool(
                            event.flags & ev.GUARD_CACHED
                        ),
                    }
                    if guard
                    else {}
                ),
            },
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=start,
            end_time=event.ts_ns,
            instrumentation_scope=_SCOPE,
        )


def make_exporter(traces):
    """The span exporter for ``telemetry.traces``, or None for ``none``."""
    if traces.exporter == 'none':
        return None
    if traces.exporter == 'console':
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda s: s.to_json(indent=None) + '\n'
        )
    headers = dict(traces.headers)
    if traces.exporter == 'otlp_http':
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(
            endpoint=traces.endpoint, headers=headers, timeout=traces.timeout_s
        )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    insecure = traces.endpoint.startswith('http://')
    return GrpcExporter(
        endpoint=traces.endpoint,
        headers=tuple(headers.items()),
        timeout=traces.timeout_s,
        insecure=insecure,
    )
