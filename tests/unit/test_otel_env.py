"""OpenTelemetry's environment variables, and the config winning over them."""

import pytest

from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.telemetry.tracecontext import Sampler

BASE = """
providers: [{name: m, type: mock, models: [mock]}]
routes: [{match: '*', targets: [m]}]
tenants: [{id: t, keys: [{key: sk-otel-env}]}]
"""


def traces(env, extra=''):
    return parse_config(BASE + extra, env=env).telemetry.traces


def test_no_variables_no_export():
    t = traces({})
    assert (t.exporter, t.service_name, t.sample_ratio, t.parent_based) == (
        'none',
        'aegisflow',
        1.0,
        True,
    )


def test_the_generic_endpoint_alone_switches_otlp_http_on_with_the_signal_path():
    t = traces({'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://collector:4318/'})
    assert (t.exporter, t.endpoint) == ('otlp_http', 'http://collector:4318/v1/traces')


def test_the_traces_endpoint_is_used_as_given_and_wins_over_the_generic_one():
    t = traces(
        {
            'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://generic:4318',
            'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': 'http://traces:9999/custom',
        }
    )
    assert t.endpoint == 'http://traces:9999/custom'


def test_grpc_protocol_headers_timeout_and_resource():
    t = traces(
        {
            'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://collector:4317',
            'OTEL_EXPORTER_OTLP_PROTOCOL': 'grpc',
            'OTEL_EXPORTER_OTLP_HEADERS': 'api-key=s%20ecret,x-team=gw',
            'OTEL_EXPORTER_OTLP_TIMEOUT': '2500',
            'OTEL_RESOURCE_ATTRIBUTES': 'deployment.environment=prod,service.name=a',
            'OTEL_SERVICE_NAME': 'gw-prod',
        }
    )
    assert (t.exporter, t.endpoint) == ('otlp_grpc', 'http://collector:4317')
    assert dict(t.headers) == {'api-key': 's ecret', 'x-team': 'gw'}
    assert t.timeout_s == 2.5
    assert t.service_name == 'gw-prod'  # OTEL_SERVICE_NAME wins over the attribute
    assert t.resource == (('deployment.environment', 'prod'),)


@pytest.mark.parametrize(
    'sampler, arg, ratio, parent_based',
    [
        ('always_on', None, 1.0, False),
        ('always_off', None, 0.0, False),
        ('traceidratio', '0.25', 0.25, False),
        ('parentbased_always_on', None, 1.0, True),
        ('parentbased_always_off', None, 0.0, True),
        ('parentbased_traceidratio', '0.5', 0.5, True),
    ],
)
def test_samplers(sampler, arg, ratio, parent_based):
    env = {'OTEL_TRACES_SAMPLER': sampler}
    if arg is not None:
        env['OTEL_TRACES_SAMPLER_ARG'] = arg
    t = traces(env)
    assert (t.sample_ratio, t.parent_based) == (ratio, parent_based)


def test_the_config_wins_where_it_says_something():
    env = {
        'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://env:4318',
        'OTEL_SERVICE_NAME': 'from-env',
        'OTEL_TRACES_SAMPLER': 'always_off',
        'OTEL_SDK_DISABLED': 'true',
    }
    t = traces(
        env,
        'telemetry: {traces: {exporter: otlp_http, endpoint: "http://cfg:1/v1/traces",'
        ' service_name: from-config, sample_ratio: 0.5}}',
    )
    assert (t.exporter, t.endpoint, t.service_name) == (
        'otlp_http',
        'http://cfg:1/v1/traces',
        'from-config',
    )
    assert (t.sample_ratio, t.parent_based) == (0.5, True)


def test_sdk_disabled_switches_export_off_when_the_config_is_silent():
    t = traces({'OTEL_SDK_DISABLED': 'true', 'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://c'})
    assert t.exporter == 'none'


def test_unusable_variables_are_config_problems_naming_them():
    with pytest.raises(ConfigError) as exc:
        traces(
            {
                'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json',
                'OTEL_TRACES_SAMPLER': 'sometimes',
                'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': 'ftp://x',
                'OTEL_EXPORTER_OTLP_TIMEOUT': 'soon',
            }
        )
    text = str(exc.value)
    for name in (
        '$OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or grpc',
        '$OTEL_TRACES_SAMPLER: expected always_on',
        '$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected an http:// or https:// URL',
        '$OTEL_EXPORTER_OTLP_TIMEOUT: expected milliseconds',
    ):
        assert name in text


def test_a_sampler_that_is_not_parent_based_decides_for_itself():
    sampled_parent = '00-' + 'ab' * 16 + '-' + 'cd' * 8 + '-01'
    assert Sampler(0.0, parent_based=True).start(sampled_parent)[2] is True
    assert Sampler(0.0, parent_based=False).start(sampled_parent)[2] is False
    assert Sampler(1.0, parent_based=False).start(sampled_parent)[1] == bytes.fromhex(
        'cd' * 8
    )  # still the parent's child
