"""What running the API description against the gateway found, each pinned with its
exact answer: values a client sent that reached a response header, two different
keys in one request, repeated query parameters, and Anthropic fields that were
silently dropped or ended in a 500 instead of a 400 naming the field."""

import anthropic
import pytest
import requests

ADMIN = 'adm-strict-secret'
CONFIG = """
server: {workers: 2, admin_key_env: STRICT_ADMIN}
providers:
  - {name: mock, type: mock, models: ["*"]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-strict-1, name: ci}]
storage: {sqlite_path: usage.sqlite}
"""
KEY = {'Authorization': 'Bearer sk-strict-1'}
HELLO = [{'role': 'user', 'content': 'hi'}]


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'STRICT_ADMIN': ADMIN})


def chat(gw, model, headers=KEY):
    return requests.post(
        f'{gw.url}/v1/chat/completions',
        json={'model': model, 'messages': HELLO},
        headers=headers,
        timeout=10,
    )


@pytest.mark.parametrize(
    'model, header',
    [
        ('gpt-4o', 'gpt-4o'),
        ('m\x01\u00e9', 'm%01%C3%A9'),
        ('a\r\nX-Injected: 1', 'a%0D%0AX-Injected: 1'),
        ('x' * 5000, 'x' * 256),
    ],
    ids=['plain', 'control-and-non-ascii', 'crlf', 'long'],
)
def test_a_client_model_name_reaches_the_header_encoded(gw, model, header):
    r = chat(gw, model)
    assert r.status_code == 200
    assert r.headers['X-AegisFlow-Model'] == header
    assert 'X-Injected' not in r.headers
    assert r.json()['model'] == model


def test_an_embeddings_model_name_reaches_the_header_encoded(gw):
    r = requests.post(
        f'{gw.url}/v1/embeddings',
        json={'model': 'e\u00e9', 'input': 'x'},
        headers=KEY,
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers['X-AegisFlow-Model'] == 'e%C3%A9'


def test_two_different_keys_are_refused_on_both_planes(gw):
    both = {'Authorization': 'Bearer sk-strict-1', 'X-API-Key': 'sk-other'}
    r = chat(gw, 'gpt-4o', both)
    assert r.status_code == 401
    err = r.json()['error']
    assert err['code'] == 'conflicting_api_keys'
    assert 'sk-strict-1' not in r.text and 'sk-other' not in r.text
    # the same key in both places is one key
    same = {'Authorization': 'Bearer sk-strict-1', 'X-API-Key': 'sk-strict-1'}
    assert chat(gw, 'gpt-4o', same).status_code == 200
    admin = {'Authorization': f'Bearer {ADMIN}', 'X-API-Key': 'sk-strict-1'}
    r = requests.get(f'{gw.url}/admin/v1/config', headers=admin, timeout=10)
    assert r.status_code == 401
    assert r.json()['error']['code'] == 'conflicting_api_keys'
    r = requests.get(
        f'{gw.url}/admin/v1/config', headers={'X-API-Key': ADMIN}, timeout=10
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    'path, query, param',
    [
        ('/admin/v1/usage', 'format=csv&format=json', 'format'),
        ('/admin/v1/usage', 'tenant=acme&tenant=globex', 'tenant'),
        ('/admin/v1/audit', 'limit=5&limit=6', 'limit'),
        ('/admin/v1/audit', 'from=1&from=2', 'from'),
    ],
)
def test_a_repeated_query_parameter_is_refused(gw, path, query, param):
    r = requests.get(
        f'{gw.url}{path}?{query}',
        headers={'Authorization': f'Bearer {ADMIN}'},
        timeout=10,
    )
    assert r.status_code == 400
    err = r.json()['error']
    assert err['param'] == param
    assert err['message'] == f"Query parameter '{param}' is given more than once."


def test_embeddings_user_must_be_a_string(gw):
    r = requests.post(
        f'{gw.url}/v1/embeddings',
        json={'model': 'e', 'input': 'x', 'user': {}},
        headers=KEY,
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json()['error']['param'] == 'user'


TOOL = {'name': 'get_time', 'input_schema': {'type': 'object'}}


@pytest.mark.parametrize(
    'extra, param',
    [
        ({'metadata': 'x'}, 'metadata'),
        ({'metadata': {'user_id': 7}}, 'metadata.user_id'),
        ({'system': [1]}, 'system.0'),
        ({'system': [{'type': 'image', 'text': 'x'}]}, 'system.0'),
        ({'stream': 'yes'}, 'stream'),
        ({'temperature': 1.5}, 'temperature'),
        ({'stop_sequences': 'END'}, 'stop_sequences'),
        ({'tools': [1]}, 'tools.0'),
        ({'tools': [{**TOOL, 'input_schema': []}]}, 'tools.0.input_schema'),
        ({'tools': [TOOL], 'tool_choice': {'type': {}}}, 'tool_choice.type'),
        ({'tools': [TOOL], 'tool_choice': 'auto'}, 'tool_choice'),
        ({'tools': [TOOL], 'tool_choice': {'type': 'tool'}}, 'tool_choice.name'),
        ({'tool_choice': {'type': 'any'}}, 'tool_choice'),
        (
            {
                'messages': [
                    {
                        'role': 'assistant',
                        'content': [
                            {'type': 'tool_use', 'id': 't', 'name': 'f', 'input': [1]}
                        ],
                    }
                ]
            },
            'messages.0.content.0.input',
        ),
        (
            {
                'messages': [
                    {
                        'role': 'user',
                        'content': [
                            {
                                'type': 'tool_result',
                                'tool_use_id': 't',
                                'content': [
                                    {
                                        'type': 'image',
                                        'source': {'type': 'ftp', 'url': 'ftp://x'},
                                    }
                                ],
                            }
                        ],
                    }
                ]
            },
            'messages.0.content.0.content.0.source.type',
        ),
        (
            {
                'messages': [
                    {
                        'role': 'user',
                        'content': [
                            {'type': 'tool_result', 'tool_use_id': 't', 'content': 5}
                        ],
                    }
                ]
            },
            'messages.0.content.0.content',
        ),
        (
            {
                'messages': [
                    {
                        'role': 'user',
                        'content': [
                            {
                                'type': 'image',
                                'source': {'type': 'base64', 'data': 'AAAA'},
                            }
                        ],
                    }
                ]
            },
            'messages.0.content.0.source.media_type',
        ),
    ],
)
def test_messages_fields_are_checked_in_anthropic_terms(gw, extra, param):
    body = {'model': 'claude-x', 'max_tokens': 16, 'messages': HELLO, **extra}
    r = requests.post(
        f'{gw.url}/v1/messages',
        json=body,
        headers={'X-API-Key': 'sk-strict-1'},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    err = r.json()
    assert err['type'] == 'error'
    assert err['error']['type'] == 'invalid_request_error'
    assert err['error']['message'].startswith(f'{param}: ')


def test_the_anthropic_sdk_sees_a_bad_request(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key='sk-strict-1', max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model='claude-x',
            max_tokens=16,
            messages=HELLO,
            metadata='not-an-object',
        )
    assert 'metadata: expected an object' in str(info.value)
    ok = client.messages.create(
        model='claude-x',
        max_tokens=16,
        messages=HELLO,
        metadata={'user_id': 'u-1'},
        tools=[TOOL],
        tool_choice={'type': 'tool', 'name': 'get_time'},
    )
    assert ok.content[0].type == 'tool_use' and ok.content[0].name == 'get_time'
