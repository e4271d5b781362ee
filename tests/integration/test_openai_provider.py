"""The `openai_compatible` adapter against a fake upstream, through real Gunicorn."""

import json

import openai
import pytest
import requests

from tests.support.ledger import usage_rows


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream):
    return gateway_factory(
        f'''
server: {{workers: 2}}
providers:
  - name: up
    type: openai_compatible
    base_url: "{upstream.base_url}"
    api_key_env: UPSTREAM_KEY
    headers: {{X-Org: team-a}}
    timeout_s: 5
    models: ["*"]
routes:
  - {{match: "*", targets: [up]}}
tenants:
  - {{id: t, keys: [{{key: sk-tenant-1}}]}}
  - {{id: tu, keys: [{{key: sk-tenant-usage}}]}}
retry: {{max_attempts: 1}}  # these tests are about how each failure maps; one try
circuit_breaker: {{enabled: false}}
''',
        env={'UPSTREAM_KEY': 'sk-upstream-secret'},
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-tenant-1', max_retries=0)


def _ask(client, model, **kw):
    return client.chat.completions.create(
        model=model, messages=[{'role': 'user', 'content': 'ping pong'}], **kw
    )


def test_openai_non_stream_passes_through(client, upstream):
    out = _ask(client, 'ok-1', temperature=0.3, extra_body={'custom_field': 1})
    assert out.choices[0].message.content == 'echo: ping pong'
    assert out.usage.completion_tokens == 3
    headers, body = upstream.requests[-1]
    assert headers['Authorization'] == 'Bearer sk-upstream-secret'
    assert headers['X-Org'] == 'team-a'
    assert body['temperature'] == 0.3 and body['custom_field'] == 1
    assert body['stream'] is False
    assert 'sk-tenant-1' not in json.dumps(headers)


def test_openai_stream_with_and_without_usage(client, upstream):
    chunks = list(
        _ask(client, 'ok-2', stream=True, stream_options={'include_usage': True})
    )
    assert (
        ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
        == 'echo: ping pong '
    )
    assert chunks[-1].usage.completion_tokens == 3
    chunks = list(_ask(client, 'ok-3', stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == 'stop'
    # The gateway always asks the upstream for usage, to account for it.
    assert upstream.requests[-1][1]['stream_options'] == {'include_usage': True}


def test_streams_that_end_properly_leave_their_connection_to_the_next(client, upstream):
    # NOTE: an upstream stream ends with `data: [DONE]` and then the bytes that
    # close its chunked body; a connection left at the event would be closed and
    # every stream would pay a new connection (and, over TLS, a handshake)
    _ask(client, 'warm-1')
    _ask(client, 'warm-2')  # NOTE: each of the 2 workers may open its first here
    before = upstream.connections
    for i in range(6):
        chunks = list(_ask(client, f'reuse-{i}', stream=True))
        assert chunks[-1].choices[0].finish_reason == 'stop'
        out = _ask(client, f'after-{i}')  # a plain request between the streams
        assert out.choices[0].message.content == 'echo: ping pong'
    assert upstream.connections - before <= 2  # at most one more per worker


@pytest.mark.parametrize(
    'model, error, status, code',
    [
        ('err-500', openai.APIStatusError, 502, 'upstream_error'),
        ('err-503', openai.APIStatusError, 502, 'upstream_error'),
        ('err-401', openai.APIStatusError, 502, 'upstream_error'),
        ('err-400', openai.BadRequestError, 400, 'upstream_rejected'),
        ('err-429', openai.RateLimitError, 429, 'upstream_rate_limited'),
        ('err-504', openai.APIStatusError, 504, 'upstream_timeout'),
        ('badjson', openai.APIStatusError, 502, 'upstream_error'),
    ],
)
@pytest.mark.parametrize('stream', [False, True])
def test_openai_upstream_errors_map_to_statuses(
    client, model, error, status, code, stream
):
    with pytest.raises(error) as exc:
        out = _ask(client, model, stream=stream)
        list(out) if stream else None
    assert exc.value.status_code == status
    assert exc.value.body['code'] == code
    assert 'sk-upstream-secret' not in str(exc.value.body)


def test_openai_429_passes_retry_after(gw):
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer sk-tenant-1'},
        json={'model': 'err-429', 'messages': [{'role': 'user', 'content': 'x'}]},
    )
    assert r.status_code == 429 and r.headers['Retry-After'] == '7'


@pytest.mark.parametrize('model', ['cut', 'midfail', 'badjson'])
def test_openai_broken_stream_ends_with_error_event_not_done(gw, model):
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        stream=True,
        headers={'Authorization': 'Bearer sk-tenant-1'},
        json={
            'model': model,
            'stream': True,
            'messages': [{'role': 'user', 'content': 'a b c d'}],
        },
    )
    if model == 'badjson':
        # Broken before the first event: an honest status, not a 200 stream.
        assert r.status_code == 502
        return
    assert r.status_code == 200
    events = [line for line in r.iter_lines() if line]
    assert b'data: [DONE]' not in events
    last = json.loads(events[-1][6:])
    assert last['error']['type'] == 'api_error'
    assert last['error']['code'] == 'upstream_error'


def test_client_disconnect_mid_stream_closes_the_upstream_request(gw, upstream):
    import socket

    from tests.support.gateway import wait_until
    from tests.support.metrics import scrape
    from tests.support.metrics import total

    body = json.dumps(
        {
            'model': 'drip',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'x'}],
        }
    ).encode()
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(
            b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
            b'Authorization: Bearer sk-tenant-1\r\nContent-Type: application/json\r\n'
            b'Content-Length: ' + str(len(body)).encode() + b'\r\n\r\n' + body
        )
        received = b''
        while b'w0' not in received:
            received += s.recv(4096)
        # The first chunk arrived while the upstream was still streaming: streams
        # are passed on as they come, not buffered.
        assert not upstream.drip_done.is_set()
    # The gateway noticed on its next write and hung up on the upstream too, long
    # before the upstream's 5 seconds of stream were over.
    assert upstream.aborted.wait(4)
    wait_until(
        lambda: total(scrape(gw.url), 'aegisflow_client_aborts_total') >= 1,
        timeout=10,
        what='abort counted',
    )


def test_azure_style_deployment_query_and_key_header(gateway_factory, upstream):
    gw = gateway_factory(
        f'''
server: {{workers: 1}}
providers:
  - name: azure
    type: openai_compatible
    base_url: "{upstream.base_url}/deployments/gpt4o"
    query: {{api-version: "2024-10-21"}}
    api_key_env: AZURE_KEY
    api_key_header: api-key
    models: [gpt-4o]
routes: [{{match: "*", targets: [azure]}}]
tenants: [{{id: t, keys: [{{key: sk-az}}]}}]
''',
        env={'AZURE_KEY': 'azure-secret'},
    )
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer sk-az'},
        json={'model': 'gpt-4o', 'messages': [{'role': 'user', 'content': 'x'}]},
    )
    assert r.status_code == 200
    headers, _ = upstream.requests[-1]
    assert headers['api-key'] == 'azure-secret' and 'Authorization' not in headers
    assert (
        upstream.paths[-1]
        == '/v1/deployments/gpt4o/chat/completions?api-version=2024-10-21'
    )


def test_usage_in_the_ledger_equals_what_the_upstream_reported(gw):
    own = openai.OpenAI(base_url=gw.base_url, api_key='sk-tenant-usage', max_retries=0)
    _ask(own, 'ok-1')
    # a stream whose client did not ask for usage is still counted: the gateway asks
    list(_ask(own, 'ok-1', stream=True))
    # 'ping pong' + 5 prompt tokens, 'echo: ping pong' 3 completion tokens
    assert usage_rows(gw, 'tu', 2) == [(0, 7, 3, 0, 0), (1, 7, 3, 0, 0)]
