"""OpenTelemetry's standard environment variables, read at config load.

Operators set these once for a whole fleet and expect every OTel-instrumented
process to follow them; `telemetry.traces` keys, when set, win over them:

- ``OTEL_SDK_DISABLED=true``: no export, unless ``traces.exporter`` is set;
- ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``) for ``exporter``;
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``
  (``http/protobuf``, the default, or ``grpc``): which OTLP exporter;
- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as given) or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` appended over HTTP) for
  ``endpoint``; either one alone switches OTLP export on;
- ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` / ``OTEL_EXPORTER_OTLP_HEADERS``
  (``k=v,k2=v2``, URL-encoded) for ``headers``;
- ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` / ``OTEL_EXPORTER_OTLP_TIMEOUT`` (ms) for
  ``timeout_s``;
- ``OTEL_SERVICE_NAME``, then ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, for
  ``service_name`` (default ``aegisflow``); the rest of
  ``OTEL_RESOURCE_ATTRIBUTES`` goes on every span's resource;
- ``OTEL_TRACES_SAMPLER`` (``always_on``, ``always_off``, ``traceidratio``,
  ``parentbased_always_on``, ``parentbased_always_off``,
  ``parentbased_traceidratio``) and ``OTEL_TRACES_SAMPLER_ARG`` for
  ``sample_ratio`` (which, when set, samples parent-based).

A value that cannot be used is a config problem naming the variable, like any other.
"""

from urllib.parse import unquote

SAMPLERS = (
    'always_on',
    'always_off',
    'traceidratio',
    'parentbased_always_on',
    'parentbased_always_off',
    'parentbased_traceidratio',
)
PROTOCOLS = {'http/protobuf': 'otlp_http', 'grpc': 'otlp_grpc'}


def _first(env, *names):
    """(name, value) of the first variable set to something, or (None, None)."""
    for name in names:
        value = (env.get(name) or '').strip()
        if value:
            return name, value
    return None, None


def pairs(text):
    """``k=v,k2=v2`` (values URL-encoded) as [(k, v)]; None when malformed."""
    out = []
    for item in text.split(','):
        if not item.strip():
            continue
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            return None
        out.append((unquote(key.strip()), unquote(value.strip())))
    return out


class OtelEnv:
    """What the OTEL_* variables of `env` ask for; `problems`: [(variable,
    expected, found)] for the ones that cannot be used."""

    def __init__(self, env):
        self.problems = []
        self.disabled = (env.get('OTEL_SDK_DISABLED') or '').strip().lower() == 'true'
        self._exporter(env)
        self._endpoint(env)
        self._headers(env)
        self._timeout(env)
        self._resource(env)
        self._sampler(env)

    def _bad(self, name, expected, found):
        self.problems.append((f'${name}', expected, repr(found)))

    def _exporter(self, env):
        name, proto = _first(
            env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'
        )
        self.otlp = PROTOCOLS.get(proto or 'http/protobuf')
        if self.otlp is None:
            self._bad(name, 'http/protobuf or grpc', proto)
            self.otlp = 'otlp_http'
        name, value = _first(env, 'OTEL_TRACES_EXPORTER')
        self.exporter = None
        if value is not None:
            first = value.split(',')[0].strip().lower()
            choices = {'otlp': self.otlp, 'console': 'console', 'none': 'none'}
            self.exporter = choices.get(first)
            if self.exporter is None:
                self._bad(name, 'otlp, console or none', value)

    def _endpoint(self, env):
        name, value = _first(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
        if value is None:
            name, value = _first(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')
            if value is not None and self.otlp == 'otlp_http':
                value = value.rstrip('/') + '/v1/traces'  # the OTLP/HTTP signal path
        self.endpoint, self.endpoint_var = value, name

    def _headers(self, env):
        name, value = _first(
            env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'
        )
        self.headers = None
        if value is not None:
            self.headers = pairs(value)
            if self.headers is None:
                self._bad(name, 'key=value pairs separated by commas', '<hidden>')

    def _timeout(self, env):
        name, value = _first(
            env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'
        )
        self.timeout_s = None
        if value is not None:
            try:
                ms = float(value)
            except ValueError:
                ms = -1
            if not 100 <= ms <= 60_000:
                self._bad(name, 'milliseconds from 100 to 60000', value)
            else:
                self.timeout_s = ms / 1000

    def _resource(self, env):
        name, value = _first(env, 'OTEL_RESOURCE_ATTRIBUTES')
        self.resource = []
        if value is not None:
            found = pairs(value)
            if found is None:
                self._bad(name, 'key=value pairs separated by commas', value)
            else:
                self.resource = found
        _, service = _first(env, 'OTEL_SERVICE_NAME')
        self.service_name = service or dict(self.resource).get('service.name')

    def _sampler(self, env):
        name, value = _first(env, 'OTEL_TRACES_SAMPLER')
        self.ratio = self.parent_based = None
        if value is None:
            return
        sampler = value.lower()
        if sampler not in SAMPLERS:
            self._bad(name, ', '.join(SAMPLERS), value)
            return
        self.parent_based = sampler.startswith('parentbased_')
        if sampler.endswith('always_on'):
            self.ratio = 1.0
        elif sampler.endswith('always_off'):
            self.ratio = 0.0
        else:
            arg_name, arg = _first(env, 'OTEL_TRACES_SAMPLER_ARG')
            try:
                self.ratio = 1.0 if arg is None else float(arg)
            except ValueError:
                self.ratio = -1.0
            if not 0.0 <= self.ratio <= 1.0:
                self._bad(arg_name, 'a ratio from 0 to 1', arg)
                self.ratio = 1.0
