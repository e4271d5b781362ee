"""The response cache on ``/v1/messages`` passed through to an Anthropic target,
with the official Anthropic SDK: a message is stored as the upstream answered it
(thinking and its signature included) and replayed whole or as the documented
event stream, whichever way it was stored; redacted values are restored per
request and never inside signed thinking; a cut stream is not stored."""

import anthropic
import pytest

from tests.support.fake_anthropic import SIGNATURE
from tests.support.fake_anthropic import FakeAnthropic

THINKING = {'type': 'enabled', 'budget_tokens': 1024}


@pytest.fixture(scope='module')
def fake():
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def client(gateway_factory, fake):
    gw = gateway_factory(
        f'''
server: {{workers: 2}}
cache: {{ttl_s: 600}}
providers:
  - {{name: claude, type: anthropic, base_url: "{fake.base_url}",
     api_key_env: CACHE_RELAY_KEY, models: ["claude-*"]}}
routes: [{{match: "*", targets: [claude]}}]
tenants:
  - {{id: t, keys: [{{key: sk-cache-relay}}]}}
policies:
  input:
    - {{name: email, type: pii, kinds: [email], action: redact, restore: true}}
''',
        env={'CACHE_RELAY_KEY': 'sk-ant-upstream-cache'},
    )
    return anthropic.Anthropic(base_url=gw.url, api_key='sk-cache-relay', max_retries=0)


def calls(fake, text):
    return sum(
        1
        for _, body in fake.requests
        if text in str(body.get('messages')) and 'count' not in str(body.get('type'))
    )


def ask(client, text, model='claude-think', stream=False, **kw):
    params = dict(
        model=model,
        max_tokens=2048,
        messages=[{'role': 'user', 'content': text}],
        **kw,
    )
    if stream:
        with client.messages.stream(**params) as s:
            events = list(s)
            return s.response.headers, s.get_final_message(), events
    raw = client.messages.with_raw_response.create(**params)
    return raw.headers, raw.parse(), None


def blocks(message):
    return [
        {k: v for k, v in b.model_dump().items() if k != 'parsed_output'}
        for b in message.content
    ]


def test_a_message_replays_whole_and_as_a_stream(client, fake):
    headers, first, _ = ask(client, 'cache this thought', thinking=THINKING)
    assert headers['X-AegisFlow-Cache'] == 'miss'
    headers, again, _ = ask(client, 'cache this thought', thinking=THINKING)
    assert headers['X-AegisFlow-Cache'] == 'hit'
    assert again.model_dump() == first.model_dump()
    assert again.content[0].type == 'thinking'
    assert again.content[0].signature == SIGNATURE
    headers, streamed, events = ask(
        client, 'cache this thought', thinking=THINKING, stream=True
    )
    assert headers['X-AegisFlow-Cache'] == 'hit'
    assert blocks(streamed) == blocks(first)
    assert streamed.stop_reason == first.stop_reason
    assert streamed.usage.output_tokens == first.usage.output_tokens
    kinds = [e.type for e in events]
    assert kinds[0] == 'message_start' and kinds[-1] == 'message_stop'
    assert calls(fake, 'cache this thought') == 1


def test_a_stream_is_stored_and_a_whole_request_gets_it(client, fake):
    headers, streamed, _ = ask(client, 'stream first', stream=True)
    assert headers['X-AegisFlow-Cache'] == 'miss'
    headers, whole, _ = ask(client, 'stream first')
    assert headers['X-AegisFlow-Cache'] == 'hit'
    assert blocks(whole) == blocks(streamed)
    assert calls(fake, 'stream first') == 1


def test_thinking_or_not_is_another_entry(client, fake):
    ask(client, 'think or not', thinking=THINKING)
    headers, plain, _ = ask(client, 'think or not')
    assert headers['X-AegisFlow-Cache'] == 'miss'
    assert [b.type for b in plain.content] == ['text']
    assert calls(fake, 'think or not') == 2


def test_redacted_values_are_restored_per_request_never_in_thinking(client, fake):
    _, a, _ = ask(client, 'write to ann@example.com', thinking=THINKING)
    headers, b, _ = ask(client, 'write to bob@example.net', thinking=THINKING)
    assert headers['X-AegisFlow-Cache'] == 'hit'
    assert a.content[-1].text == 'echo: write to ann@example.com'
    assert b.content[-1].text == 'echo: write to bob@example.net'
    # the signed thinking keeps the placeholder the upstream saw
    assert a.content[0].thinking == b.content[0].thinking
    assert '[EMAIL_1]' in b.content[0].thinking
    assert calls(fake, 'write to') == 1


def test_a_cut_stream_is_not_stored(client, fake):
    for _ in range(2):
        with pytest.raises(anthropic.APIError):
            ask(client, 'cut short', model='claude-cut', stream=True)
    assert calls(fake, 'cut short') == 2
