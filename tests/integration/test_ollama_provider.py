"""The ollama provider type against a fake Ollama server, with the OpenAI SDK (and
the Anthropic SDK through /v1/messages), through real Gunicorn."""

import json

import anthropic
import openai
import pytest

from tests.support.fake_ollama import FakeOllama
from tests.support.ledger import usage_rows

TOOLS = [
    {
        'type': 'function',
        'function': {
            'name': 'get_weather',
            'parameters': {
                'type': 'object',
                'properties': {'city': {'type': 'string'}},
            },
        },
    }
]


@pytest.fixture(scope='module')
def fake():
    server = FakeOllama().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, fake):
    return gateway_factory(f'''
server: {{workers: 2}}
providers: [{{name: local, type: ollama, base_url: "{fake.base_url}", models: ["*"]}}]
routes: [{{match: "*", targets: [local]}}]
tenants: [{{id: t, keys: [{{key: sk-t}}]}}, {{id: tu, keys: [{{key: sk-tu}}]}}]
retry: {{max_attempts: 1}}
''')


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-t', max_retries=0)


def test_ollama_text_and_options(client, fake):
    out = client.chat.completions.create(
        model='llama-text',
        temperature=0.3,
        max_tokens=64,
        seed=7,
        stop=['END'],
        response_format={'type': 'json_object'},
        messages=[
            {'role': 'developer', 'content': 'Be brief.'},
            {'role': 'user', 'content': 'Hi'},
        ],
    )
    assert out.choices[0].message.content == 'echo: Hi'
    assert out.choices[0].finish_reason == 'stop'
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (26, 7)
    sent = fake.requests[-1]
    assert sent['options'] == {
        'temperature': 0.3,
        'seed': 7,
        'num_predict': 64,
        'stop': ['END'],
    }
    assert sent['format'] == 'json' and sent['stream'] is False
    assert sent['messages'][0] == {'role': 'system', 'content': 'Be brief.'}


def test_ollama_tool_round_trip_mints_ids(client, fake):
    messages = [{'role': 'user', 'content': 'Oslo'}]
    first = client.chat.completions.create(
        model='llama-tool', messages=messages, tools=TOOLS
    )
    (call,) = first.choices[0].message.tool_calls
    assert (
        call.id.startswith('call_') and first.choices[0].finish_reason == 'tool_calls'
    )
    assert json.loads(call.function.arguments) == {'city': 'Oslo'}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {'role': 'tool', 'tool_call_id': call.id, 'content': '-3C'},
    ]
    second = client.chat.completions.create(
        model='llama-tool', messages=messages, tools=TOOLS
    )
    assert second.choices[0].message.content == 'result was: -3C'
    sent = fake.requests[-1]['messages'][1]
    assert sent['tool_calls'] == [
        {'function': {'name': 'get_weather', 'arguments': {'city': 'Oslo'}}}
    ]


def test_ollama_ndjson_stream(client):
    chunks = list(
        client.chat.completions.create(
            model='llama-long',
            stream=True,
            stream_options={'include_usage': True},
            messages=[{'role': 'user', 'content': 'a b c'}],
        )
    )
    text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
    assert text == 'echo: a b c '
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == 'length'
    assert chunks[-1].usage.completion_tokens == 7


def test_ollama_streamed_tool_call(client):
    chunks = list(
        client.chat.completions.create(
            model='llama-tool',
            stream=True,
            tools=TOOLS,
            messages=[{'role': 'user', 'content': 'Lima'}],
        )
    )
    calls = [
        tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
    ]
    assert calls[0].index == 0 and calls[0].id.startswith('call_')
    assert json.loads(calls[0].function.arguments) == {'city': 'Lima'}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == 'tool_calls'


def test_ollama_errors_and_unsupported(client):
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(
            model='llama-404', messages=[{'role': 'user', 'content': 'x'}]
        )
    assert exc.value.status_code == 502 and 'not found' in exc.value.body['message']
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model='llama-text',
            messages=[
                {
                    'role': 'user',
                    'content': [
                        {'type': 'image_url', 'image_url': {'url': 'https://x/a.png'}}
                    ],
                }
            ],
        )
    assert exc.value.body['param'] == 'messages[0].content[0].image_url.url'


def test_anthropic_sdk_through_messages_to_ollama(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key='sk-t', max_retries=0)
    msg = client.messages.create(
        model='llama-text',
        max_tokens=20,
        messages=[{'role': 'user', 'content': 'Hola'}],
    )
    assert msg.content[0].text == 'echo: Hola' and msg.usage.output_tokens == 7


def test_usage_in_the_ledger_equals_what_ollama_reported(gw):
    own = openai.OpenAI(base_url=gw.base_url, api_key='sk-tu', max_retries=0)
    messages = [{'role': 'user', 'content': 'Hi there'}]
    own.chat.completions.create(model='llama-text', messages=messages)
    list(
        own.chat.completions.create(model='llama-text', messages=messages, stream=True)
    )
    # prompt_eval_count 26, eval_count 7, on the final object streamed or not
    assert usage_rows(gw, 'tu', 2) == [(0, 26, 7, 0, 0), (1, 26, 7, 0, 0)]
