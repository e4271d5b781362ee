"""The gateway-core acceptance config under real Gunicorn (2 workers), driven by the
official OpenAI SDK and by raw HTTP."""

import json
import socket

import openai
import pytest
import requests

from tests.conftest import ACCEPTANCE_CONFIG


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(ACCEPTANCE_CONFIG)


@pytest.fixture(scope='module')
def acme(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-acme-1', max_retries=0)


@pytest.fixture(scope='module')
def globex(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-globex-1', max_retries=0)


def _chat(client, model, text='hello gateway', **kw):
    return client.chat.completions.create(
        model=model, messages=[{'role': 'user', 'content': text}], **kw
    )


@pytest.mark.parametrize('model', ['mock', 'mock-fast'])
def test_completion_non_stream(acme, model):
    out = _chat(acme, model, 'What is the capital of France?')
    assert out.object == 'chat.completion'
    assert out.model == model
    assert out.choices[0].message.role == 'assistant'
    assert (
        out.choices[0].message.content
        == f'[{model}] You said: What is the capital of France?'
    )
    assert out.choices[0].finish_reason == 'stop'
    # The mock's documented arithmetic: reply priming 3 + message 3 + 7 text tokens
    # ("What", "is", "the", "capital", "of", "France", "?").
    assert out.usage.prompt_tokens == 13
    assert (
        out.usage.completion_tokens
        == len(f'[ {model} ] You said : What is the capital of France ?'.split())
        + model.count('-') * 2
    )
    assert (
        out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    )


@pytest.mark.parametrize('model', ['mock', 'mock-fast'])
def test_completion_stream_with_usage(acme, model):
    stream = _chat(
        acme,
        model,
        'stream me please',
        stream=True,
        stream_options={'include_usage': True},
    )
    chunks = list(stream)
    text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
    assert text == f'[{model}] You said: stream me please'
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == 'stop' and finishes.count('stop') == 1
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert chunks[-1].choices == []
    assert usage_chunks[0].usage.prompt_tokens == 3 + 3 + 3
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_sends_no_usage(gw):
    r = requests.post(
        gw.base_url + '/chat/completions',
        stream=True,
        timeout=10,
        headers={'Authorization': 'Bearer sk-acme-1'},
        json={
            'model': 'mock',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'x'}],
        },
    )
    assert r.status_code == 200
    assert r.headers['content-type'].startswith('text/event-stream')
    events = [line for line in r.iter_lines() if line]
    assert events[-1] == b'data: [DONE]'
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert all('usage' not in p for p in payloads)


def test_tool_call_round_trip(acme):
    tools = [
        {
            'type': 'function',
            'function': {
                'name': 'get_weather',
                'description': 'Weather for a city',
                'parameters': {
                    'type': 'object',
                    'properties': {
                        'city': {'type': 'string'},
                        'days': {'type': 'integer'},
                    },
                },
            },
        }
    ]
    messages = [{'role': 'user', 'content': 'Paris'}]
    first = acme.chat.completions.create(model='mock', messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == 'tool_calls'
    assert call.function.name == 'get_weather'
    assert json.loads(call.function.arguments) == {'city': 'Paris', 'days': 1}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {'role': 'tool', 'tool_call_id': call.id, 'content': '21C and sunny'},
    ]
    second = acme.chat.completions.create(model='mock', messages=messages, tools=tools)
    assert second.choices[0].message.content == '[mock] Tool result: 21C and sunny'


def test_tool_call_streamed_arguments_reassemble(acme):
    tools = [
        {
            'type': 'function',
            'function': {
                'name': 'lookup',
                'parameters': {
                    'type': 'object',
                    'properties': {'q': {'type': 'string'}},
                },
            },
        }
    ]
    chunks = list(
        acme.chat.completions.create(
            model='mock',
            stream=True,
            tools=tools,
            messages=[
                {'role': 'user', 'content': 'a fairly long question to split up'}
            ],
        )
    )
    calls = [
        tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])
    ]
    assert calls[0].id and calls[0].function.name == 'lookup'
    args = ''.join(tc.function.arguments or '' for tc in calls)
    assert json.loads(args) == {'q': 'a fairly long question to split up'}
    assert {tc.index for tc in calls} == {0}
    assert chunks[-1].choices[0].finish_reason == 'tool_calls'


def test_models_list_is_filtered_per_tenant(acme, globex):
    assert sorted(m.id for m in acme.models.list()) == ['mock', 'mock-fast']
    assert [m.id for m in globex.models.list()] == ['mock-fast']
    assert globex.models.retrieve('mock-fast').owned_by == 'mock'
    with pytest.raises(openai.NotFoundError):
        globex.models.retrieve('mock')  # exists, but not for this tenant


def test_model_not_allowed_is_403(globex):
    with pytest.raises(openai.PermissionDeniedError) as exc:
        _chat(globex, 'mock')
    assert exc.value.status_code == 403
    assert exc.value.body['code'] == 'model_not_allowed'
    assert exc.value.body['type'] == 'permission_error'
    assert exc.value.body['param'] == 'model'
    assert (
        _chat(globex, 'mock-fast').choices[0].message.content.startswith('[mock-fast]')
    )


def test_unknown_model_is_404(acme):
    with pytest.raises(openai.NotFoundError) as exc:
        _chat(acme, 'gpt-imaginary')
    assert exc.value.body['code'] == 'model_not_found'
    assert exc.value.body['param'] == 'model'


def test_wrong_key_is_401(gw):
    bad = openai.OpenAI(base_url=gw.base_url, api_key='sk-wrong', max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        _chat(bad, 'mock')
    assert exc.value.body['code'] == 'invalid_api_key'
    assert 'sk-wrong' not in json.dumps(exc.value.body)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_x_api_key_header_authenticates(gw):
    r = requests.get(
        gw.base_url + '/models', headers={'X-API-Key': 'sk-globex-1'}, timeout=5
    )
    assert r.status_code == 200
    assert [m['id'] for m in r.json()['data']] == ['mock-fast']


def _post(gw, body, headers=None, **kw):
    h = {'Authorization': 'Bearer sk-acme-1', 'Content-Type': 'application/json'}
    h.update(headers or {})
    return requests.post(
        gw.base_url + '/chat/completions', data=body, headers=h, timeout=30, **kw
    )


def _assert_envelope(r, status, code=None, param=None):
    assert r.status_code == status, r.text
    err = r.json()['error']
    assert set(err) == {'message', 'type', 'param', 'code'}
    assert err['message']
    if code is not None:
        assert err['code'] == code
    assert err['param'] == param
    assert r.headers.get('X-Request-ID')
    return err


def test_body_of_20_mb_is_413(gw):
    body = b'{"model":"mock","messages":[{"role":"user","content":"' + b'a' * 20_000_000
    r = _post(gw, body + b'"}]}')
    _assert_envelope(r, 413, 'request_too_large')
    # The SDK sees the same answer.
    client = openai.OpenAI(base_url=gw.base_url, api_key='sk-acme-1', max_retries=0)
    with pytest.raises(openai.APIStatusError) as exc:
        _chat(client, 'mock', 'b' * 20_000_000)
    assert exc.value.status_code == 413


def test_chunked_body_over_limit_is_413(gw):
    def gen():
        yield b'{"model":"mock","messages":[{"role":"user","content":"'
        for _ in range(10):
            yield b'c' * 1_000_000
        yield b'"}]}'

    _assert_envelope(_post(gw, gen()), 413, 'request_too_large')


@pytest.mark.parametrize(
    'body, code',
    [
        (b'{"model": "mock", "messages": [', 'invalid_json'),
        (b'', 'invalid_json'),
        (b'[1, 2]', 'invalid_json'),
        (b'{"model": NaN}', 'invalid_json'),
        (b'\xff\xfe', 'invalid_json'),
    ],
)
def test_malformed_json_is_400(gw, body, code):
    _assert_envelope(_post(gw, body), 400, code)


@pytest.mark.parametrize(
    'body, param',
    [
        ({'messages': [{'role': 'user', 'content': 'x'}]}, 'model'),
        ({'model': 5, 'messages': []}, 'model'),
        ({'model': 'mock'}, 'messages'),
        ({'model': 'mock', 'messages': []}, 'messages'),
        (
            {'model': 'mock', 'messages': [{'role': 'wizard', 'content': 'x'}]},
            'messages[0].role',
        ),
        (
            {'model': 'mock', 'messages': [{'role': 'user', 'content': 5}]},
            'messages[0].content',
        ),
        (
            {
                'model': 'mock',
                'messages': [{'role': 'user', 'content': 'x'}],
                'temperature': 3,
            },
            'temperature',
        ),
        (
            {
                'model': 'mock',
                'messages': [{'role': 'user', 'content': 'x'}],
                'stream': 'yes',
            },
            'stream',
        ),
        (
            {'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}], 'n': 0},
            'n',
        ),
        (
            {
                'model': 'mock',
                'messages': [{'role': 'user', 'content': 'x'}],
                'max_tokens': True,
            },
            'max_tokens',
        ),
        (
            {
                'model': 'mock',
                'messages': [{'role': 'user', 'content': 'x'}],
                'tools': [{}],
            },
            'tools[0].type',
        ),
    ],
)
def test_invalid_fields_name_the_param(gw, body, param):
    err = _assert_envelope(_post(gw, json.dumps(body)), 400, param=param)
    assert err['type'] == 'invalid_request_error'


def test_unknown_fields_are_accepted(gw):
    body = {
        'model': 'mock',
        'messages': [{'role': 'user', 'content': 'x'}],
        'some_future_field': {'a': 1},
        'seed': 7,
        'user': 'u-1',
        'response_format': {'type': 'json_object'},
        'top_p': 0.5,
        'stop': ['zz'],
    }
    r = _post(gw, json.dumps(body))
    assert r.status_code == 200, r.text


def test_wrong_content_type_is_415(gw):
    r = _post(
        gw, b'model=mock', headers={'Content-Type': 'application/x-www-form-urlencoded'}
    )
    _assert_envelope(r, 415, 'unsupported_media_type')


def test_wrong_method_is_405(gw):
    r = requests.get(gw.base_url + '/chat/completions', timeout=5)
    _assert_envelope(r, 405, 'method_not_allowed')
    assert 'POST' in r.headers['Allow']


def test_unknown_path_is_404(gw):
    r = requests.get(gw.url + '/v2/nothing-here', timeout=5)
    _assert_envelope(r, 404, 'unknown_url')


def test_request_id_is_echoed_or_minted(gw):
    r = requests.get(
        gw.url + '/healthz', headers={'X-Request-ID': 'trace-abc.123'}, timeout=5
    )
    assert r.headers['X-Request-ID'] == 'trace-abc.123'
    r = requests.get(
        gw.url + '/healthz', headers={'X-Request-ID': 'bad id\twith junk'}, timeout=5
    )
    assert r.headers['X-Request-ID'] != 'bad id\twith junk'
    assert len(r.headers['X-Request-ID']) == 24
    r = _post(gw, b'{')
    assert r.headers['X-Request-ID']


def test_served_by_headers(gw):
    r = _post(
        gw,
        json.dumps(
            {'model': 'mock-fast', 'messages': [{'role': 'user', 'content': 'x'}]}
        ),
    )
    assert r.headers['X-AegisFlow-Provider'] == 'mock'
    assert r.headers['X-AegisFlow-Model'] == 'mock-fast'
    assert r.headers['X-AegisFlow-Attempts'] == '1'


def test_health_and_readiness(gw):
    assert requests.get(gw.url + '/healthz', timeout=5).json() == {'status': 'ok'}
    ready = requests.get(gw.url + '/readyz', timeout=5)
    assert ready.status_code == 200
    assert ready.json()['status'] == 'ready'
    assert ready.json()['checks']['config']['ok'] is True


def test_both_workers_serve(gw):
    """Requests on fresh connections land on both workers (2 configured)."""
    assert len(gw.worker_pids()) == 2
    for _ in range(20):
        with socket.create_connection(('127.0.0.1', gw.port), timeout=5) as s:
            s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            assert s.recv(100).startswith(b'HTTP/1.1 200')
