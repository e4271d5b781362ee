"""``/v1/messages`` passed through to an Anthropic target: the official Anthropic
SDK against a fake Anthropic server that records the bytes it gets and sends,
through real Gunicorn. The request arrives as the client sent it (only ``model``
replaced, ``anthropic-beta`` and ``anthropic-version`` passed on, the client's key
never); the answer and its events come back as the upstream sent them, unless a
policy rewrote a text; usage with cache reads and writes reaches the ledger and the
cost; a fallback to another provider translates and drops what it cannot carry."""

import base64
import json

import anthropic
import pytest
import requests

from tests.support.fake_anthropic import SIGNATURE
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.ledger import COLUMNS
from tests.support.ledger import usage_rows
from tests.support.recording import Recorded

THINKING = {'type': 'enabled', 'budget_tokens': 1024}
PNG = base64.b64encode(b'\x89PNG\r\n\x1a\n' + b'\0' * 32).decode()


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
     api_key_env: RELAY_TEST_KEY, models: ["claude-*"],
     prices: {{"claude-*": {{input: 1000000, output: 2000000, cached_input: 100000,
                            cache_write_input: 1250000}}}}}}
  - {{name: mock, type: mock, models: ["*"]}}
routes:
  - {{match: "sonnet", targets: [{{provider: claude, model: claude-think}}]}}
  - {{match: "fb-think", targets: [{{provider: claude, model: claude-529}}, mock]}}
  - {{match: "claude-*", targets: [claude]}}
  - {{match: "*", targets: [mock]}}
tenants:
  - {{id: t, keys: [{{key: sk-relay-1}}], policies: []}}
  - {{id: cost, keys: [{{key: sk-relay-cost}}], policies: []}}
  - {{id: cut, keys: [{{key: sk-relay-cut}}], policies: []}}
  - {{id: guarded, keys: [{{key: sk-relay-guarded}}]}}
policies:
  input:
    - {{name: email, type: pii, kinds: [email], action: redact, restore: true}}
  output:
    - {{name: no-secret-word, type: keyword, keywords: [classified], action: redact}}
retry: {{max_attempts: 1}}
circuit_breaker: {{enabled: false}}
storage: {{sqlite_path: aegisflow.sqlite}}
''',
        env={'RELAY_TEST_KEY': 'sk-ant-relay-upstream'},
    )


def recorded(gw, key='sk-relay-1'):
    """A anthropic SDK client that keeps the bytes of every request it sends."""
    return Recorded(anthropic, gw.url, key)


def _post(gw, key, model, text, **extra):
    """A raw ``POST /v1/messages`` of one user text, for the bytes of the answer."""
    body = {
        'model': model,
        'max_tokens': 2048,
        'messages': [{'role': 'user', 'content': text}],
        **extra,
    }
    return requests.post(
        gw.url + '/v1/messages', headers={'x-api-key': key}, json=body, timeout=10
    )


def _agent_turn():
    """A Claude Code-like turn: thinking, cached system and tool, a tool result
    holding an image, metadata, a service tier and a field the gateway never saw."""
    return dict(
        max_tokens=2048,
        thinking=THINKING,
        system=[
            {
                'type': 'text',
                'text': 'You are a careful agent.',
                'cache_control': {'type': 'ephemeral'},
            }
        ],
        tools=[
            {
                'name': 'screenshot',
                'description': 'Take a screenshot',
                'input_schema': {'type': 'object', 'properties': {}},
                'cache_control': {'type': 'ephemeral'},
            }
        ],
        messages=[
            {'role': 'user', 'content': 'Look at the screen.'},
            {
                'role': 'assistant',
                'content': [
                    {
                        'type': 'thinking',
                        'thinking': 'I should take a screenshot.',
                        'signature': SIGNATURE,
                    },
                    {
                        'type': 'tool_use',
                        'id': 'toolu_9',
                        'name': 'screenshot',
                        'input': {},
                    },
                ],
            },
            {
                'role': 'user',
                'content': [
                    {
                        'type': 'tool_result',
                        'tool_use_id': 'toolu_9',
                        'content': [
                            {'type': 'text', 'text': 'the screen:'},
                            {
                                'type': 'image',
                                'source': {
                                    'type': 'base64',
                                    'media_type': 'image/png',
                                    'data': PNG,
                                },
                            },
                        ],
                    }
                ],
            },
        ],
        metadata={'user_id': 'u-42'},
        service_tier='auto',
        extra_body={'x_future_field': {'kept': [1, 2.50, 'as sent']}},
        extra_headers={'anthropic-beta': 'interleaved-thinking-2025-05-14'},
    )


def test_the_request_arrives_byte_equal_with_the_beta_header(gw, fake):
    rec = recorded(gw)
    msg = rec.client.messages.create(model='claude-tool', **_agent_turn())
    assert msg.content[0].text.startswith('result was:')
    assert fake.raw[-1] == rec.sent[-1]  # byte for byte, model included
    headers, body = fake.requests[-1]
    assert headers['anthropic-beta'] == 'interleaved-thinking-2025-05-14'
    assert headers['anthropic-version'] == rec.headers[-1]['anthropic-version']
    assert headers['x-api-key'] == 'sk-ant-relay-upstream'
    assert 'sk-relay-1' not in json.dumps(headers)
    assert body['thinking'] == THINKING and body['x_future_field']['kept'][1] == 2.5


def test_only_the_model_is_replaced_when_the_route_names_another(gw, fake):
    rec = recorded(gw)
    rec.client.messages.create(model='sonnet', **_agent_turn())
    sent, got = rec.sent[-1], fake.raw[-1]
    assert b'"sonnet"' in sent and b'"claude-think"' in got
    assert got == sent.replace(b'"model":"sonnet"', b'"model":"claude-think"')


def test_a_complete_answer_comes_back_as_sent(gw, fake):
    r = _post(gw, 'sk-relay-1', 'claude-think', 'Kyoto', thinking=THINKING)
    assert r.status_code == 200 and r.content == fake.sent[-1]
    assert r.headers['X-AegisFlow-Provider'] == 'claude'
    block = r.json()['content'][0]
    assert block['type'] == 'thinking' and block['signature'] == SIGNATURE


def test_a_streamed_answer_with_thinking_arrives_intact(gw, fake):
    client = recorded(gw).client
    request = dict(
        model='claude-think',
        max_tokens=2048,
        thinking=THINKING,
        messages=[{'role': 'user', 'content': 'Kyoto'}],
    )
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    expected = client.messages.create(**request)  # the fake answers alike
    assert final.model_dump() == expected.model_dump() | {'id': 'msg_02'}
    thinking, text = final.content
    assert thinking.signature == SIGNATURE
    assert thinking.thinking == 'Thinking about Kyoto.'
    assert text.text == 'echo: Kyoto'
    # and on the wire: the event stream is the upstream's, byte for byte
    r = _post(gw, 'sk-relay-1', 'claude-think', 'Kyoto', thinking=THINKING, stream=True)
    assert r.content == fake.sent[-1]


def test_cache_reads_and_writes_reach_the_ledger_and_the_cost(gw):
    client = recorded(gw, 'sk-relay-cost').client
    client.messages.create(
        model='claude-text', max_tokens=64, messages=[{'role': 'user', 'content': 'a'}]
    )
    with client.messages.stream(
        model='claude-text', max_tokens=64, messages=[{'role': 'user', 'content': 'a'}]
    ) as stream:
        stream.get_final_message()
    rows = usage_rows(gw, 'cost', 2, columns=COLUMNS + ', cost_usd, outcome, provider')
    # 12 input, 3 cache reads, 2 cache writes; 5 output
    for streamed, (*tokens, cost, outcome, provider) in zip((0, 1), rows, strict=True):
        assert tokens == [streamed, 17, 5, 3, 2]
        assert cost == pytest.approx(12 * 1 + 3 * 0.1 + 2 * 1.25 + 5 * 2)
        assert (outcome, provider) == ('ok', 'claude')


def test_a_cut_stream_ends_with_an_error_event_and_an_error_row(gw):
    r = _post(gw, 'sk-relay-cut', 'claude-cut', 'one two three', stream=True)
    events = r.content.split(b'\n\n')
    assert b'event: content_block_delta' in r.content
    assert events[-2].startswith(b'event: error\n')
    error = json.loads(events[-2].split(b'data: ', 1)[1])
    assert 'ended the stream early' in error['error']['message']
    assert b'message_stop' not in r.content
    assert usage_rows(gw, 'cut', 1, columns='streamed, outcome') == [
        (1, 'stream_error')
    ]


def test_a_fallback_translates_and_drops_what_it_cannot_carry(gw, fake):
    client = recorded(gw).client
    before = len(fake.requests)
    raw = client.messages.with_raw_response.create(
        model='fb-think',
        max_tokens=64,
        thinking=THINKING,
        extra_body={'top_k': 5},
        messages=[{'role': 'user', 'content': 'hello'}],
    )
    msg = raw.parse()
    assert len(fake.requests) == before + 1  # the Anthropic target was tried first
    assert raw.headers['X-AegisFlow-Provider'] == 'mock'
    assert raw.headers['X-AegisFlow-Warning'].startswith('dropped thinking, top_k')
    assert 'hello' in msg.content[0].text


def test_input_redaction_rewrites_only_text(gw, fake):
    client = recorded(gw, 'sk-relay-guarded').client
    msg = client.messages.create(
        model='claude-say',
        max_tokens=64,
        system=[
            {'type': 'text', 'text': 'sys', 'cache_control': {'type': 'ephemeral'}}
        ],
        messages=[{'role': 'user', 'content': 'mail ann@example.com please'}],
        extra_headers={'anthropic-beta': 'prompt-caching-2024-07-31'},
    )
    _, body = fake.requests[-1]
    assert body['messages'][0]['content'] == 'mail [EMAIL_1] please'
    assert body['system'][0]['cache_control'] == {'type': 'ephemeral'}
    # the model said the placeholder back: restored for the client
    assert msg.content[0].text == 'mail ann@example.com please'


def test_a_redaction_inside_signed_thinking_blocks(gw, fake):
    client = recorded(gw, 'sk-relay-guarded').client
    turn = _agent_turn()
    turn['messages'][1]['content'][0]['thinking'] = 'Mail bob@example.com first.'
    before = len(fake.requests)
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        client.messages.create(model='claude-tool', **turn)
    assert exc.value.body['error']['type'] == 'permission_error'
    assert "policy 'email'" in exc.value.body['error']['message']
    assert len(fake.requests) == before


def test_output_redaction_rewrites_only_the_affected_deltas(gw, fake):
    text = 'this part is classified and this is not'
    r = _post(gw, 'sk-relay-guarded', 'claude-say', text, stream=True)
    got = r.content.split(b'\n\n')
    sent = fake.sent[-1].split(b'\n\n')
    # every event but the text deltas is the upstream's own
    assert [e for e in got if b'text_delta' not in e] == [
        e for e in sent if b'text_delta' not in e
    ]
    streamed = ''.join(
        json.loads(e.split(b'data: ', 1)[1])['delta']['text']
        for e in got
        if b'text_delta' in e
    )
    assert streamed == 'this part is [KEYWORD_1] and this is not'
    # a complete answer: the message re-encoded with the text rewritten
    r = _post(gw, 'sk-relay-guarded', 'claude-say', text)
    expected = json.loads(fake.sent[-1])
    expected['content'][0]['text'] = 'this part is [KEYWORD_1] and this is not'
    assert r.json() == expected


def test_output_redaction_inside_thinking_ends_the_stream_with_an_error(gw):
    client = recorded(gw, 'sk-relay-guarded').client
    with pytest.raises(anthropic.APIStatusError) as exc:
        with client.messages.stream(
            model='claude-think',
            max_tokens=2048,
            thinking=THINKING,
            messages=[{'role': 'user', 'content': 'classified'}],
        ) as stream:
            for _ in stream:
                pass
    assert "policy 'no-secret-word'" in str(exc.value)
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(
            model='claude-think',
            max_tokens=2048,
            thinking=THINKING,
            messages=[{'role': 'user', 'content': 'classified'}],
        )
