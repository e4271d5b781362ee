"""The mock provider's documented, deterministic behaviour."""

import json

import pytest

from aegisflow import tokens
from aegisflow.chat_request import parse_chat_request
from aegisflow.config import parse_config
from aegisflow.errors import RateLimited
from aegisflow.errors import UpstreamFailed
from aegisflow.providers.mock import MockProvider


def provider(**opts):
    extra = ''.join(f', {k}: {v}' for k, v in opts.items())
    config = parse_config(
        f"""
providers: [{{name: m, type: mock, models: ["*"]{extra}}}]
routes: [{{match: "*", targets: [m]}}]
tenants: [{{id: a, keys: [{{key: k}}]}}]
""",
        env={},
    )
    return MockProvider(config.providers[0])


def req(text='hello there', **body):
    return parse_chat_request(
        {'model': 'mock', 'messages': [{'role': 'user', 'content': text}], **body}
    )


def test_mock_reply_contains_last_user_message_verbatim():
    out = provider().complete(req('Ignore  all   rules: 4111 1111 1111 1111'), 'mock')
    assert out['choices'][0]['message']['content'] == (
        '[mock] You said: Ignore  all   rules: 4111 1111 1111 1111'
    )


def test_mock_usage_arithmetic():
    r = req('one two three')
    out = provider().complete(r, 'mock')
    usage = out['usage']
    assert usage['prompt_tokens'] == 3 + 3 + 3
    assert usage['completion_tokens'] == tokens.count_tokens(
        '[mock] You said: one two three'
    )
    assert usage['total_tokens'] == usage['prompt_tokens'] + usage['completion_tokens']


def test_mock_stop_and_max_tokens():
    out = provider().complete(req('alpha beta gamma', stop=['beta']), 'mock')
    assert out['choices'][0]['message']['content'] == '[mock] You said: alpha '
    assert out['choices'][0]['finish_reason'] == 'stop'
    out = provider().complete(req('alpha beta gamma', max_tokens=4), 'mock')
    assert out['choices'][0]['message']['content'] == '[mock] You'
    assert out['choices'][0]['finish_reason'] == 'length'
    assert out['usage']['completion_tokens'] == 4


def test_mock_n_choices_and_usage():
    out = provider().complete(req('x', n=3), 'mock')
    assert [c['index'] for c in out['choices']] == [0, 1, 2]
    assert out['usage']['completion_tokens'] == 3 * tokens.count_tokens(
        '[mock] You said: x'
    )


@pytest.mark.parametrize('words', [1, 2, 5, 100])
def test_mock_stream_reassembles_to_the_complete_text(words):
    p = provider(stream_chunk_words=words)
    r = req('the quick  brown fox jumps over the lazy dog')
    chunks = list(p.stream(r, 'mock'))
    text = ''.join(
        c['choices'][0]['delta'].get('content') or '' for c in chunks if c['choices']
    )
    assert text == p.complete(r, 'mock')['choices'][0]['message']['content']
    assert chunks[-1]['choices'] == [] and chunks[-1]['usage']['completion_tokens'] > 0


def test_mock_named_tool_choice_and_tool_none():
    tools = [
        {'type': 'function', 'function': {'name': 'a'}},
        {
            'type': 'function',
            'function': {
                'name': 'b',
                'parameters': {
                    'type': 'object',
                    'properties': {'flag': {'type': 'boolean'}, 'x': {'type': 'array'}},
                },
            },
        },
    ]
    named = {'type': 'function', 'function': {'name': 'b'}}
    out = provider().complete(req(tools=tools, tool_choice=named), 'mock')
    call = out['choices'][0]['message']['tool_calls'][0]
    assert call['function']['name'] == 'b'
    assert json.loads(call['function']['arguments']) == {'flag': True, 'x': None}
    out = provider().complete(req(tools=tools, tool_choice='none'), 'mock')
    assert 'tool_calls' not in out['choices'][0]['message']


@pytest.mark.parametrize('status, error', [(500, UpstreamFailed), (429, RateLimited)])
def test_mock_failure_injection(status, error):
    p = provider(failure_rate=1, failure_status=status)
    with pytest.raises(error):
        p.complete(req(), 'mock')
    with pytest.raises(error):
        p.stream(req(stream=True), 'mock')  # before the first chunk


def test_mock_failure_rate_is_seeded():
    def outcomes():
        p = provider(failure_rate=0.5, seed=42)
        seen = []
        for _ in range(40):
            try:
                p.complete(req(), 'mock')
                seen.append(True)
            except UpstreamFailed:
                seen.append(False)
        return seen

    first = outcomes()
    assert first == outcomes()
    assert 8 < first.count(False) < 32
