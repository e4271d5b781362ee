"""The anthropic provider type: OpenAI clients in, Anthropic's Messages API out,
against a fake Anthropic server, through real Gunicorn."""

import json

import openai
import pytest
import requests

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.gateway import wait_until
from tests.support.ledger import usage_rows
from tests.support.metrics import scrape
from tests.support.metrics import total

TOOLS = [
    {
        'type': 'function',
        'function': {
            'name': 'get_weather',
            'description': 'Weather in a city',
            'parameters': {
                'type': 'object',
                'properties': {'city': {'type': 'string'}},
            },
        },
    }
]


@pytest.fixture(scope='module')
def fake():
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, fake):
    return gateway_factory(
        f'''
server: {{workers: 2}}
providers:
  - {{name: claude, type: anthropic, base_url: "{fake.base_url}",
     api_key_env: ANTHROPIC_TEST_KEY, models: ["claude-*"]}}
routes: [{{match: "*", targets: [claude]}}]
tenants: [{{id: t, keys: [{{key: sk-t}}]}}, {{id: tc, keys: [{{key: sk-tc}}]}}]
retry: {{max_attempts: 1}}
circuit_breaker: {{enabled: false}}
''',
        env={'ANTHROPIC_TEST_KEY': 'sk-ant-upstream'},
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-t', max_retries=0)


def test_text_completion_and_request_translation(client, fake):
    out = client.chat.completions.create(
        model='claude-text',
        temperature=1.7,
        top_p=0.9,
        stop=['END'],
        user='u-1',
        messages=[
            {'role': 'system', 'content': 'Be brief.'},
            {'role': 'developer', 'content': 'Answer in English.'},
            {'role': 'user', 'content': 'Hello'},
        ],
    )
    assert out.choices[0].message.content == 'echo: Hello'
    assert out.choices[0].finish_reason == 'stop'
    assert out.usage.prompt_tokens == 12 + 3 + 2  # cache reads and writes inside
    assert out.usage.prompt_tokens_details.cached_tokens == 3
    assert out.usage.completion_tokens == 5
    headers, body = fake.requests[-1]
    assert headers['x-api-key'] == 'sk-ant-upstream'
    assert headers['anthropic-version'] == '2023-06-01'
    assert 'sk-t' not in json.dumps(headers).replace('sk-ant', '')
    assert body['system'] == 'Be brief.\n\nAnswer in English.'
    assert body['messages'] == [
        {'role': 'user', 'content': [{'type': 'text', 'text': 'Hello'}]}
    ]
    assert body['temperature'] == 1.0 and body['top_p'] == 0.9
    assert body['stop_sequences'] == ['END'] and body['max_tokens'] == 4096
    assert body['metadata'] == {'user_id': 'u-1'}


def test_tool_use_round_trip(client, fake):
    messages = [{'role': 'user', 'content': 'Paris'}]
    first = client.chat.completions.create(
        model='claude-tool',
        messages=messages,
        tools=TOOLS,
        tool_choice='required',
        parallel_tool_calls=False,
    )
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == 'tool_calls'
    assert msg.content == 'Let me check.'
    (call,) = msg.tool_calls
    assert call.id == 'toolu_01' and call.function.name == 'get_weather'
    assert json.loads(call.function.arguments) == {'city': 'Paris'}
    sent = fake.requests[-1][1]
    assert sent['tools'] == [
        {
            'name': 'get_weather',
            'description': 'Weather in a city',
            'input_schema': TOOLS[0]['function']['parameters'],
        }
    ]
    assert sent['tool_choice'] == {'type': 'any', 'disable_parallel_tool_use': True}
    messages += [
        msg.model_dump(exclude_none=True),
        {'role': 'tool', 'tool_call_id': call.id, 'content': '21C'},
    ]
    second = client.chat.completions.create(
        model='claude-tool', messages=messages, tools=TOOLS
    )
    assert second.choices[0].message.content == 'result was: 21C'
    turns = fake.requests[-1][1]['messages']
    assert turns[1] == {
        'role': 'assistant',
        'content': [
            {'type': 'text', 'text': 'Let me check.'},
            {
                'type': 'tool_use',
                'id': 'toolu_01',
                'name': 'get_weather',
                'input': {'city': 'Paris'},
            },
        ],
    }
    assert turns[2] == {
        'role': 'user',
        'content': [
            {'type': 'tool_result', 'tool_use_id': 'toolu_01', 'content': '21C'}
        ],
    }


def test_streamed_tool_call_keeps_index_id_and_arguments(client):
    chunks = list(
        client.chat.completions.create(
            model='claude-tool',
            stream=True,
            tools=TOOLS,
            stream_options={'include_usage': True},
            messages=[{'role': 'user', 'content': 'San Francisco'}],
        )
    )
    text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
    assert text == 'Let me check.'
    calls = [
        tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
    ]
    assert {tc.index for tc in calls} == {0}  # the text block does not shift it
    assert calls[0].id == 'toolu_01' and calls[0].function.name == 'get_weather'
    args = ''.join(tc.function.arguments or '' for tc in calls)
    assert json.loads(args) == {'city': 'San Francisco'}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == 'tool_calls'
    assert (
        chunks[-1].usage.prompt_tokens == 17 and chunks[-1].usage.completion_tokens == 5
    )


def test_streamed_text_and_stop_reasons(client):
    chunks = list(
        client.chat.completions.create(
            model='claude-max',
            stream=True,
            messages=[{'role': 'user', 'content': 'a b c'}],
        )
    )
    assert (
        ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
        == 'echo: a b c'
    )
    assert chunks[-1].choices[0].finish_reason == 'length'
    out = client.chat.completions.create(
        model='claude-max', messages=[{'role': 'user', 'content': 'x'}]
    )
    assert out.choices[0].finish_reason == 'length'


def test_streams_that_end_properly_leave_their_connection_to_the_next(client, fake):
    for _ in range(2):  # NOTE: each of the 2 workers may open its first here
        client.chat.completions.create(
            model='claude-x', messages=[{'role': 'user', 'content': 'x'}]
        )
    before = fake.connections
    for i in range(6):
        chunks = list(
            client.chat.completions.create(
                model='claude-x',
                stream=True,
                messages=[{'role': 'user', 'content': f'a b {i}'}],
            )
        )
        text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
        assert text == f'echo: a b {i}'
    assert fake.connections - before <= 2  # at most one more per worker


def test_image_parts_are_translated(client, fake):
    client.chat.completions.create(
        model='claude-text',
        messages=[
            {
                'role': 'user',
                'content': [
                    {'type': 'text', 'text': 'What is this?'},
                    {
                        'type': 'image_url',
                        'image_url': {'url': 'data:image/jpeg;base64,QUJD'},
                    },
                    {
                        'type': 'image_url',
                        'image_url': {'url': 'https://example.com/a.png'},
                    },
                ],
            }
        ],
    )
    blocks = fake.requests[-1][1]['messages'][0]['content']
    assert blocks[1] == {
        'type': 'image',
        'source': {'type': 'base64', 'media_type': 'image/jpeg', 'data': 'QUJD'},
    }
    assert blocks[2] == {
        'type': 'image',
        'source': {'type': 'url', 'url': 'https://example.com/a.png'},
    }


@pytest.mark.parametrize(
    'model, error, status, code',
    [
        ('claude-429', openai.RateLimitError, 429, 'upstream_rate_limited'),
        ('claude-529', openai.APIStatusError, 502, 'upstream_error'),
        ('claude-400', openai.BadRequestError, 400, 'upstream_rejected'),
    ],
)
def test_anthropic_errors_map_to_statuses(client, model, error, status, code):
    with pytest.raises(error) as exc:
        client.chat.completions.create(
            model=model, messages=[{'role': 'user', 'content': 'x'}]
        )
    assert exc.value.status_code == status and exc.value.body['code'] == code
    if status == 429:
        assert exc.value.response.headers['retry-after'] == '3'


def test_n_above_one_is_refused_before_the_provider(client, fake):
    before = len(fake.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model='claude-text', n=2, messages=[{'role': 'user', 'content': 'x'}]
        )
    assert exc.value.body['param'] == 'n' and len(fake.requests) == before


def test_error_event_mid_stream_ends_without_done(gw):
    r = requests.post(
        gw.base_url + '/chat/completions',
        timeout=10,
        headers={'Authorization': 'Bearer sk-t'},
        json={
            'model': 'claude-midfail',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'a b c'}],
        },
    )
    assert r.status_code == 200 and '[DONE]' not in r.text
    last = json.loads(r.text.strip().splitlines()[-1][6:])
    assert 'overloaded_error' in last['error']['message']


def test_anthropic_sdk_through_messages_to_the_anthropic_provider(gw, fake):
    import anthropic

    client = anthropic.Anthropic(base_url=gw.url, api_key='sk-t', max_retries=0)
    msg = client.messages.create(
        model='claude-tool',
        max_tokens=64,
        messages=[{'role': 'user', 'content': 'Kyoto'}],
        tools=[{'name': 'get_weather', 'input_schema': {'type': 'object'}}],
    )
    assert msg.stop_reason == 'tool_use'
    text, tool = msg.content
    assert text.text == 'Let me check.'
    assert tool.id == 'toolu_01' and tool.input == {'city': 'Kyoto'}
    assert msg.usage.cache_read_input_tokens == 3 and msg.usage.input_tokens == 12
    with client.messages.stream(
        model='claude-text',
        max_tokens=64,
        messages=[{'role': 'user', 'content': 'a b'}],
    ) as stream:
        assert ''.join(stream.text_stream) == 'echo: a b'


def test_cache_reads_and_writes_reach_metrics_and_the_ledger(gw):
    own = openai.OpenAI(base_url=gw.base_url, api_key='sk-tc', max_retries=0)
    for _ in range(3):
        own.chat.completions.create(
            model='claude-text', messages=[{'role': 'user', 'content': 'hi'}]
        )

    def tokens(direction):
        return total(
            scrape(gw.url), 'aegisflow_tokens_total', tenant='tc', direction=direction
        )

    wait_until(lambda: tokens('prompt') == 3 * 17, timeout=10, what='tokens counted')
    assert (tokens('cached'), tokens('cache_write')) == (3 * 3, 3 * 2)
    # the same request streamed: usage from message_start and message_delta
    stream = own.chat.completions.create(
        model='claude-text',
        messages=[{'role': 'user', 'content': 'hi'}],
        stream=True,
        stream_options={'include_usage': True},
    )
    assert [c.usage for c in stream if c.usage][-1].prompt_tokens == 17
    assert usage_rows(gw, 'tc', 4) == [(0, 17, 5, 3, 2)] * 3 + [(1, 17, 5, 3, 2)]
