"""Traces, logs and metrics as an operator sees them, from a real gateway."""

import json

import openai
import pytest
import requests

from tests.support.fake_otlp import FakeGrpcCollector
from tests.support.gateway import wait_until
from tests.support.metrics import samples
from tests.support.metrics import scrape
from tests.support.metrics import total

TRACE = '0af7651916cd43dd8448eb211c80319c'
PARENT = 'b7ad6b7169203331'


@pytest.fixture(scope='module')
def gw(gateway_factory, collector):
    return gateway_factory(
        f'''
server: {{workers: 2}}
providers:
  - {{name: mock, type: mock, models: [mock, mock-fast],
     prices: {{mock-fast: {{input: 0.1, output: 0.2}}}}}}
routes:
  - {{match: "*", targets: [mock]}}
tenants:
  - id: acme
    keys: [{{key: "sk-acme-secret-1", name: ci}}]
policies:
  input: [{{name: cards, type: pii, kinds: [credit_card], action: block}}]
telemetry:
  flush_interval_ms: 50
  metrics_token_env: METRICS_TOKEN
  traces:
    exporter: otlp_http
    endpoint: "{collector.endpoint}"
    headers: {{X-Collector-Key: collector-secret}}
''',
        env={'METRICS_TOKEN': 'scrape-secret'},
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(
        base_url=gw.base_url,
        api_key='sk-acme-secret-1',
        max_retries=0,
        default_headers={'traceparent': f'00-{TRACE}-{PARENT}-01'},
    )


def _spans(collector, trace_id, count):
    def ready():
        with collector.lock:
            found = [s for s in collector.spans if s['trace_id'] == trace_id]
        return found if len(found) >= count else None

    return wait_until(ready, timeout=15, what=f'{count} spans of trace {trace_id}')


def test_spans_follow_genai_conventions_and_traceparent(client, collector):
    client.chat.completions.create(
        model='mock', messages=[{'role': 'user', 'content': 'a private prompt'}]
    )
    spans = _spans(collector, TRACE, 2)
    server = next(s for s in spans if s['kind'] == 2)  # SPAN_KIND_SERVER
    attempt = next(s for s in spans if s['kind'] == 3)  # SPAN_KIND_CLIENT
    assert server['parent_span_id'] == PARENT
    assert attempt['parent_span_id'] == server['span_id']
    assert server['name'] == 'chat mock' and attempt['name'] == 'chat mock'
    a = server['attributes']
    assert a['gen_ai.operation.name'] == 'chat'
    assert a['gen_ai.request.model'] == 'mock'
    assert a['gen_ai.response.model'] == 'mock'
    assert a['gen_ai.provider.name'] == 'mock'
    assert a['gen_ai.usage.input_tokens'] == 3 + 3 + 3
    assert a['gen_ai.usage.output_tokens'] > 0
    assert a['http.response.status_code'] == 200
    assert a['aegisflow.tenant'] == 'acme'
    assert attempt['attributes']['http.response.status_code'] == 200
    assert server['start'] <= attempt['start'] <= attempt['end'] <= server['end']
    assert server['resource']['service.name'] == 'aegisflow'
    everything = json.dumps(collector.spans) + json.dumps(collector.headers)
    assert 'a private prompt' not in everything and 'sk-acme-secret-1' not in everything
    sent = {k.lower(): v for k, v in collector.headers[0].items()}
    assert sent['x-collector-key'] == 'collector-secret'


def _traced(gw, trace, *, sampled=True, model='mock', key='sk-acme-secret-1'):
    """POST a chat request carrying a traceparent of `trace`."""
    flag = '01' if sampled else '00'
    return requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={
            'Authorization': f'Bearer {key}',
            'traceparent': f'00-{trace}-{PARENT}-{flag}',
        },
        json={'model': model, 'messages': [{'role': 'user', 'content': 'x'}]},
    )


def test_error_span_for_a_failed_request(gw, collector):
    trace = '1' * 32
    r = _traced(gw, trace, model='no-such-model')
    assert r.status_code == 404
    (span,) = _spans(collector, trace, 1)
    assert span['status'] == 2  # STATUS_CODE_ERROR
    assert span['attributes']['error.type'] == '404'
    assert span['attributes']['http.response.status_code'] == 404


def test_a_policy_block_is_a_guardrail_span_under_the_request(gw, collector):
    trace = '4' * 32
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={
            'Authorization': 'Bearer sk-acme-secret-1',
            'traceparent': f'00-{trace}-{PARENT}-01',
        },
        json={
            'model': 'mock',
            'messages': [{'role': 'user', 'content': 'card 4111 1111 1111 1111'}],
        },
    )
    assert r.status_code == 403
    spans = _spans(collector, trace, 2)
    server = next(s for s in spans if s['kind'] == 2)
    guard = next(s for s in spans if s['kind'] == 1)  # SPAN_KIND_INTERNAL
    assert guard['name'] == 'guardrail cards'
    assert guard['parent_span_id'] == server['span_id']
    a = guard['attributes']
    assert a['aegisflow.policy.action'] == 'block'
    assert a['aegisflow.policy.phase'] == 'input'
    assert a['aegisflow.policy.finding'] == 'credit_card'
    assert a['aegisflow.policy.field'] == 'messages[0].content'
    assert a['aegisflow.request_id'] == r.headers['X-Request-ID']
    assert '4111 1111' not in json.dumps(spans)  # ids and times may hold '4111'


def test_unsampled_parent_exports_nothing(gw, collector):
    trace = '2' * 32
    r = _traced(gw, trace, sampled=False)
    assert r.status_code == 200
    marker = '3' * 32  # a sampled request after it: once it is exported, so would be 2s
    _traced(gw, marker)
    _spans(collector, marker, 2)
    assert not [s for s in collector.spans if s['trace_id'] == trace]


def test_access_log_lines_name_the_request_and_hold_no_secret(gw, client):
    out = client.chat.completions.with_raw_response.create(
        model='mock-fast', messages=[{'role': 'user', 'content': 'log-me-not'}]
    )
    rid = out.headers['x-request-id']

    def line():
        for raw in gw.log_lines():
            if rid in raw and '"aegisflow.access"' in raw:
                return json.loads(raw)
        return None

    entry = wait_until(line, timeout=10, what='access log line')
    assert entry['tenant'] == 'acme' and entry['key_name'] == 'ci'
    assert entry['model'] == 'mock-fast' and entry['provider'] == 'mock'
    assert entry['status'] == 200 and entry['outcome'] == 'ok'
    # 3 + 3 + the 5 tokens of "log", "-", "me", "-", "not"
    assert entry['prompt_tokens'] == 11 and entry['completion_tokens'] > 0
    cost = (11 * 0.1 + entry['completion_tokens'] * 0.2) / 1e6
    assert entry['cost_usd'] == pytest.approx(cost) and entry['duration_ms'] > 0
    log = gw.log()
    assert 'log-me-not' not in log and 'sk-acme-secret-1' not in log
    assert 'scrape-secret' not in log and 'collector-secret' not in log


def test_metrics_need_their_token(gw):
    assert requests.get(gw.url + '/metrics', timeout=5).status_code == 401
    r = requests.get(
        gw.url + '/metrics',
        timeout=5,
        headers={'Authorization': 'Bearer scrape-secret'},
    )
    assert r.status_code == 200
    assert r.headers['Content-Type'].startswith('text/plain; version=0.0.4')


def test_labels_never_come_from_client_input(gw):
    junk = [f'model-{i}-{"x" * 20}' for i in range(20)]
    for name in junk:
        requests.post(
            gw.base_url + '/chat/completions',
            timeout=10,
            headers={'Authorization': 'Bearer sk-acme-secret-1'},
            json={'model': name, 'messages': [{'role': 'user', 'content': 'x'}]},
        )
    requests.get(gw.url + '/v1/../../etc/passwd-like/path', timeout=5)
    requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer not-a-key'},
        json={},
    )

    def text():
        t = scrape(gw.url, token='scrape-secret')
        return (
            t
            if total(t, 'aegisflow_requests_total', model='other', status='404') >= 20
            and total(t, 'aegisflow_requests_total', tenant='none', status='401') >= 1
            else None
        )

    t = wait_until(text, timeout=10, what='404s and the 401 counted')
    assert not any(name in t for name in junk) and 'passwd' not in t
    models = {labels['model'] for labels, _ in samples(t, 'aegisflow_requests_total')}
    assert models <= {'mock', 'mock-fast', 'other', 'none'}
    assert total(t, 'aegisflow_requests_total', tenant='none', status='401') >= 1
    assert 'sk-acme-secret-1' not in t and 'not-a-key' not in t


def test_process_figures_for_master_and_each_worker(gw):
    def figures():
        t = scrape(gw.url, token='scrape-secret')
        procs = {
            labels['process']
            for labels, _ in samples(t, 'aegisflow_process_resident_memory_bytes')
        }
        return procs if len(procs) == 3 else None

    procs = wait_until(figures, timeout=10, what='process figures')
    assert 'master' in procs and sum(p.startswith('worker-') for p in procs) == 2


def test_console_exporter_prints_spans(gateway_factory):
    gw = gateway_factory("""
server: {workers: 1}
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: acme, keys: [{key: "sk-console-1"}]}]
telemetry: {flush_interval_ms: 50, traces: {exporter: console}}
""")
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer sk-console-1'},
        json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}]},
    )
    rid = r.headers['X-Request-ID']

    def span():
        for raw in gw.log_lines():
            if raw.startswith('{"name": "chat mock"') and rid in raw:
                return json.loads(raw)
        return None

    found = wait_until(span, timeout=10, what='console span')
    assert found['attributes']['gen_ai.request.model'] == 'mock'
    assert found['attributes']['aegisflow.request_id'] == rid


def test_otlp_grpc_exporter(gateway_factory):
    collector = FakeGrpcCollector().start()
    try:
        gw = gateway_factory(f'''
server: {{workers: 1}}
providers: [{{name: mock, type: mock, models: [mock]}}]
routes: [{{match: "*", targets: [mock]}}]
tenants: [{{id: acme, keys: [{{key: "sk-grpc-1"}}]}}]
telemetry:
  flush_interval_ms: 50
  traces: {{exporter: otlp_grpc, endpoint: "{collector.endpoint}"}}
''')
        trace = '4' * 32
        r = _traced(gw, trace, key='sk-grpc-1')
        assert r.status_code == 200
        spans = _spans(collector, trace, 2)
        server = next(s for s in spans if s['kind'] == 2)
        assert server['attributes']['gen_ai.request.model'] == 'mock'
        assert server['parent_span_id'] == PARENT
    finally:
        collector.stop()
