"""The ``telemetry`` section: logs, metrics and traces."""

import re
from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.common import _valid_url
from aegisflow.config.otel_env import OtelEnv
from aegisflow.config.reader import Problem

LOG_FORMATS = ('json', 'text')
LOG_LEVELS = ('debug', 'info', 'warning', 'error')
TRACE_EXPORTERS = ('none', 'console', 'otlp_http', 'otlp_grpc')

_SERVICE = re.compile(r'\S.{0,254}\Z')


@dataclass(frozen=True, slots=True)
class TracesConfig:
    """Resolved from ``telemetry.traces`` and, where it is silent, OpenTelemetry's
    environment variables (`aegisflow.config.otel_env`)."""

    exporter: str = 'none'
    endpoint: str | None = None
    headers: tuple = field(default=(), repr=False)
    sample_ratio: float = 1.0
    # parent-based: an incoming traceparent's sampled flag decides (the default)
    parent_based: bool = True
    timeout_s: float = 5.0
    service_name: str = 'aegisflow'
    resource: tuple = ()  # extra resource attributes, (key, value) pairs


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    log_format: str = 'json'
    log_level: str = 'info'
    access_log: bool = True
    metrics: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    flush_interval_ms: int = 200
    traces: TracesConfig = TracesConfig()


class TelemetrySection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def telemetry(self, node):
        d = TelemetryConfig()
        keys = (
            'log_format',
            'log_level',
            'access_log',
            'metrics',
            'metrics_token_env',
            'flush_interval_ms',
            'traces',
        )
        if not node.mapping(keys, optional=True):
            return d
        token = None
        if not node.get('metrics_token_env').missing:
            token = self.required_env(node.get('metrics_token_env'))
        return TelemetryConfig(
            log_format=node.get('log_format').str(d.log_format, choices=LOG_FORMATS),
            log_level=node.get('log_level').str(d.log_level, choices=LOG_LEVELS),
            access_log=node.get('access_log').bool(d.access_log),
            metrics=node.get('metrics').bool(d.metrics),
            metrics_token=token,
            flush_interval_ms=node.get('flush_interval_ms').int(
                d.flush_interval_ms, min=10, max=5000
            ),
            traces=self.traces(node.get('traces')),
        )

    def traces(self, node):
        """``telemetry.traces``; what it leaves unset comes from OTEL_* variables."""
        d = TracesConfig()
        keys = (
            'exporter',
            'endpoint',
            'headers',
            'sample_ratio',
            'timeout_s',
            'service_name',
        )
        node.mapping(keys, optional=True)
        env = OtelEnv(self.env)
        for path, expected, found in env.problems:
            self.problems.append(Problem(path, expected, found))
        exporter = node.get('exporter').str(None, choices=TRACE_EXPORTERS)
        if node.get('exporter').missing:
            exporter = 'none' if env.disabled else env.exporter
            if exporter is None:
                exporter = env.otlp if env.endpoint else d.exporter
        endpoint = node.get('endpoint').str(
            None, check=_valid_url, expected='an http:// or https:// URL'
        )
        if node.get('endpoint').missing and env.endpoint is not None:
            endpoint = env.endpoint
            if not _valid_url(endpoint):
                self.problems.append(
                    Problem(
                        f'${env.endpoint_var}',
                        'an http:// or https:// URL',
                        repr(endpoint),
                    )
                )
        if exporter in ('otlp_http', 'otlp_grpc') and endpoint is None:
            if node.get('endpoint').missing:
                node.get('endpoint').fail(
                    f'an endpoint URL for exporter {exporter} (or '
                    'OTEL_EXPORTER_OTLP_ENDPOINT)'
                )
        headers = node.get('headers')
        ratio = node.get('sample_ratio')
        timeout = node.get('timeout_s')
        service = node.get('service_name').str(
            None, check=_SERVICE.match, expected='a service name (1-255 characters)'
        )
        return TracesConfig(
            exporter=exporter,
            endpoint=endpoint,
            headers=self.headers(headers)
            if not headers.missing or env.headers is None
            else tuple(env.headers),
            sample_ratio=ratio.num(d.sample_ratio, min=0, max=1)
            if not ratio.missing or env.ratio is None
            else env.ratio,
            parent_based=True
            if not ratio.missing or env.parent_based is None
            else env.parent_based,
            timeout_s=timeout.num(d.timeout_s, min=0.1, max=60)
            if not timeout.missing or env.timeout_s is None
            else env.timeout_s,
            service_name=service or env.service_name or d.service_name,
            resource=tuple((k, v) for k, v in env.resource if k != 'service.name'),
        )
