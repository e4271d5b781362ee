"""Inbound Anthropic Messages API, with the official anthropic SDK, served by any
provider (here the mock and an OpenAI-compatible fake)."""

import json

import anthropic
import pytest
import requests

TOOLS = [
    {
        'name': 'get_weather',
        'description': 'Weather in a city',
        'input_schema': {'type': 'object', 'properties': {'city': {'type': 'string'}}},
    }
]


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream):
    return gateway_factory(f'''
server: {{workers: 2}}
providers:
  - {{name: mock, type: mock, models: [mock]}}
  - {{name: up, type: openai_compatible, base_url: "{upstream.base_url}",
     models: ["ok-*"]}}
routes:
  - {{match: "mock", targets: [mock]}}
  - {{match: "ok-*", targets: [up]}}
tenants: [{{id: t, keys: [{{key: sk-claude-client}}]}}]
''')


@pytest.fixture(scope='module')
def client(gw):
    return anthropic.Anthropic(
        base_url=gw.url, api_key='sk-claude-client', max_retries=0
    )


def test_messages_create_text(client):
    msg = client.messages.create(
        model='mock',
        max_tokens=100,
        system='Be brief.',
        messages=[{'role': 'user', 'content': 'Hello there'}],
    )
    assert msg.type == 'message' and msg.role == 'assistant'
    assert msg.content[0].type == 'text'
    assert msg.content[0].text == '[mock] You said: Hello there'
    assert msg.stop_reason == 'end_turn'
    assert msg.usage.input_tokens == 3 + (3 + 3) + (3 + 2)  # system + user + priming
    assert msg.usage.output_tokens > 0


def test_messages_tool_use_round_trip(client):
    first = client.messages.create(
        model='mock',
        max_tokens=100,
        tools=TOOLS,
        messages=[{'role': 'user', 'content': 'Paris'}],
    )
    assert first.stop_reason == 'tool_use'
    (block,) = [b for b in first.content if b.type == 'tool_use']
    assert block.name == 'get_weather' and block.input == {'city': 'Paris'}
    second = client.messages.create(
        model='mock',
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {'role': 'user', 'content': 'Paris'},
            {'role': 'assistant', 'content': [b.model_dump() for b in first.content]},
            {
                'role': 'user',
                'content': [
                    {'type': 'tool_result', 'tool_use_id': block.id, 'content': '21C'}
                ],
            },
        ],
    )
    assert second.content[0].text == '[mock] Tool result: 21C'
    assert second.stop_reason == 'end_turn'


def test_messages_stream_text_and_tool(client):
    with client.messages.stream(
        model='mock',
        max_tokens=100,
        messages=[{'role': 'user', 'content': 'stream this please'}],
    ) as stream:
        text = ''.join(stream.text_stream)
        final = stream.get_final_message()
    assert text == '[mock] You said: stream this please'
    assert final.stop_reason == 'end_turn' and final.usage.output_tokens > 0
    with client.messages.stream(
        model='mock',
        max_tokens=100,
        tools=TOOLS,
        messages=[{'role': 'user', 'content': 'Rome'}],
    ) as stream:
        final = stream.get_final_message()
    (block,) = [b for b in final.content if b.type == 'tool_use']
    assert block.input == {'city': 'Rome'} and final.stop_reason == 'tool_use'


def test_messages_over_an_openai_compatible_provider(client, upstream):
    msg = client.messages.create(
        model='ok-1',
        max_tokens=50,
        stop_sequences=['END'],
        extra_body={'temperature': 0.5},
        metadata={'user_id': 'u-9'},
        messages=[{'role': 'user', 'content': 'ping'}],
    )
    assert msg.content[0].text == 'echo: ping'
    sent = upstream.requests[-1][1]
    assert sent['max_tokens'] == 50 and sent['stop'] == ['END']
    assert sent['temperature'] == 0.5 and sent['user'] == 'u-9'


def test_messages_errors_use_anthropic_envelope(gw, client):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=gw.url, api_key='wrong', max_retries=0
        ).messages.create(
            model='mock', max_tokens=5, messages=[{'role': 'user', 'content': 'x'}]
        )
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.messages.create(
            model='nope', max_tokens=5, messages=[{'role': 'user', 'content': 'x'}]
        )
    assert exc.value.body['type'] == 'error'
    assert exc.value.body['error']['type'] == 'not_found_error'
    r = requests.post(
        gw.url + '/v1/messages',
        timeout=5,
        headers={'x-api-key': 'sk-claude-client'},
        json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}]},
    )
    assert r.status_code == 400
    body = r.json()
    assert body['type'] == 'error' and 'max_tokens' in body['error']['message']
    assert json.dumps(body).count('sk-claude') == 0
