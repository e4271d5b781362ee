"""OpenTelemetry's own settings through a real gateway: with no `traces:` section,
OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME alone deliver spans with that
service name to a collector; the log lines of the request carry the same trace id;
the OpenMetrics exposition links histogram buckets to sampled traces (exemplars)."""

import json
import re

import pytest
import requests

from tests.support.gateway import wait_until

CONFIG = """
server: {workers: 1}
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: sk-otel-conv-1}]}]
policies:
  input: [{name: hello-words, type: keyword, keywords: [hello], action: warn}]
telemetry: {flush_interval_ms: 50}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory, collector):
    return gateway_factory(
        CONFIG,
        env={
            # the generic endpoint: the exporter appends /v1/traces itself
            'OTEL_EXPORTER_OTLP_ENDPOINT': collector.http.url,
            'OTEL_SERVICE_NAME': 'gw-test',
            'OTEL_RESOURCE_ATTRIBUTES': 'deployment.environment=ci',
        },
    )


def ask(gw):
    r = requests.post(
        gw.base_url + '/chat/completions',
        headers={'Authorization': 'Bearer sk-otel-conv-1'},
        json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'hello'}]},
        timeout=10,
    )
    assert r.status_code == 200
    return r.headers['X-Request-ID']


def server_span(collector, rid):
    for s in list(collector.spans):
        if s['attributes'].get('aegisflow.request_id') == rid and s['kind'] == 2:
            return s
    return None


def test_env_alone_exports_spans_with_the_service_name(gw, collector):
    rid = ask(gw)
    span = wait_until(lambda: server_span(collector, rid), timeout=15, what='a span')
    assert span['resource']['service.name'] == 'gw-test'
    assert span['resource']['deployment.environment'] == 'ci'


def test_log_lines_of_the_request_carry_its_trace_and_span(gw, collector):
    rid = ask(gw)
    span = wait_until(lambda: server_span(collector, rid), timeout=15, what='a span')
    # the worker's policy line while serving, and the master's access line
    wanted = {'aegisflow.chat', 'aegisflow.access'}

    def both():
        found = [json.loads(x) for x in gw.log_lines() if f'"request_id":"{rid}"' in x]
        return found if wanted <= {line['logger'] for line in found} else None

    lines = wait_until(both, timeout=15, what='the policy and access lines')
    for line in lines:
        assert line['trace_id'] == span['trace_id']
        assert line['span_id'] == span['span_id']


def test_openmetrics_exemplars_point_at_sampled_traces(gw, collector):
    rid = ask(gw)
    span = wait_until(lambda: server_span(collector, rid), timeout=15, what='a span')

    def scrape():
        r = requests.get(
            gw.url + '/metrics',
            headers={'Accept': 'application/openmetrics-text; version=1.0.0'},
            timeout=5,
        )
        return r if span['trace_id'] in r.text else None

    r = wait_until(scrape, timeout=15, what='an exemplar with the trace id')
    assert r.headers['Content-Type'].startswith('application/openmetrics-text')
    assert r.text.rstrip().endswith('# EOF')
    line = next(x for x in r.text.splitlines() if span['trace_id'] in x)
    assert re.match(
        r'aegisflow_(request_duration|time_to_first_token)_seconds_bucket\{.*\} '
        r'\S+ # \{span_id="[0-9a-f]{16}",trace_id="[0-9a-f]{32}"\} \S+',
        line,
    )
    # the classic text format stays as it was: no exemplars, no # EOF
    plain = requests.get(gw.url + '/metrics', timeout=5)
    assert plain.headers['Content-Type'].startswith('text/plain')
    assert ' # {' not in plain.text and '# EOF' not in plain.text
