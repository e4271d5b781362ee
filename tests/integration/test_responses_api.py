"""``/v1/responses`` with the official OpenAI SDK, through real Gunicorn: translated
for the mock and an Anthropic fake (the documented events, function tool round
trips over ``previous_response_id``, stored responses per tenant), passed through
to an OpenAI fake that speaks the Responses API (the bytes as sent both ways, the
upstream's ids owned per tenant); usage, errors and cut streams as for chat."""

import json

import openai
import pytest
import requests

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_responses import FakeResponses
from tests.support.ledger import usage_rows
from tests.support.metrics import scrape
from tests.support.metrics import total
from tests.support.recording import Recorded

WEATHER = {
    'type': 'function',
    'name': 'get_weather',
    'description': 'Weather in a city',
    'parameters': {
        'type': 'object',
        'properties': {'city': {'type': 'string'}},
        'required': ['city'],
    },
}


@pytest.fixture(scope='module')
def upstream():
    server = FakeResponses().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def claude():
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream, claude):
    return gateway_factory(
        f'''
server: {{workers: 2}}
providers:
  - {{name: oai, type: openai, base_url: "{upstream.base_url}",
     api_key_env: RESP_TEST_KEY, models: ["gpt-*"]}}
  - {{name: claude, type: anthropic, base_url: "{claude.base_url}",
     api_key_env: RESP_TEST_KEY, models: ["claude-*"]}}
  - {{name: mock, type: mock, models: ["*"]}}
routes:
  - {{match: "gpt-*", targets: [oai]}}
  - {{match: "claude-*", targets: [claude]}}
  - {{match: "*", targets: [mock]}}
tenants:
  - {{id: t, keys: [{{key: sk-resp-1}}], policies: []}}
  - {{id: other, keys: [{{key: sk-resp-2}}], policies: []}}
  - {{id: usage, keys: [{{key: sk-resp-usage}}], policies: []}}
  - {{id: cut, keys: [{{key: sk-resp-cut}}], policies: []}}
  - {{id: guarded, keys: [{{key: sk-resp-guarded}}]}}
policies:
  input:
    - {{name: email, type: pii, kinds: [email], action: redact, restore: true}}
  output:
    - {{name: no-secret-word, type: keyword, keywords: [classified], action: redact}}
retry: {{max_attempts: 1}}
circuit_breaker: {{enabled: false}}
storage: {{sqlite_path: aegisflow.sqlite}}
''',
        env={'RESP_TEST_KEY': 'sk-upstream-resp'},
    )


def recorded(gw, key='sk-resp-1'):
    """A openai SDK client that keeps the bytes of every request it sends."""
    return Recorded(openai, gw.base_url, key)


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-resp-1', max_retries=0)


@pytest.fixture(scope='module')
def other(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-resp-2', max_retries=0)


# -- translated ------------------------------------------------------------------------


def test_create_on_the_mock(client):
    r = client.responses.create(model='mock', input='hi', instructions='Be brief.')
    assert r.output_text == '[mock] You said: hi'
    assert r.id.startswith('resp_') and r.status == 'completed'
    assert r.instructions == 'Be brief.' and r.model == 'mock'
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_a_stream_yields_the_documented_events_in_order(client):
    events = list(client.responses.create(model='mock', input='one two', stream=True))
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == 'response.output_text.delta']
    assert kinds == [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        *['response.output_text.delta'] * len(deltas),
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert ''.join(deltas) == final.output_text == '[mock] You said: one two'
    assert final.id == events[0].response.id and final.usage.output_tokens > 0
    with client.responses.stream(model='mock', input='three') as stream:
        assert stream.get_final_response().output_text == '[mock] You said: three'


def _round_trip(client, model, *, stream=False):
    first = client.responses.create(
        model=model, input='Kyoto', tools=[WEATHER], stream=stream
    )
    if stream:
        first = [e for e in first][-1].response
    call = next(item for item in first.output if item.type == 'function_call')
    assert call.name == 'get_weather'
    assert json.loads(call.arguments)['city'] == 'Kyoto'
    # sent the moment the first completed: it must be found
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[
            {'type': 'function_call_output', 'call_id': call.call_id, 'output': 'sunny'}
        ],
        tools=[WEATHER],
    )
    return first, second


@pytest.mark.parametrize('stream', [False, True])
def test_a_function_round_trip_on_the_mock(client, stream):
    _, second = _round_trip(client, 'mock', stream=stream)
    assert second.output_text == '[mock] Tool result: sunny'


def test_a_function_round_trip_on_a_translated_anthropic_target(client, claude):
    first, second = _round_trip(client, 'claude-tool')
    assert first.output[0].type == 'message'  # the text before the call
    assert second.output_text == 'result was: sunny'
    _, body = claude.requests[-1]
    assert [t['role'] for t in body['messages']] == ['user', 'assistant', 'user']
    result = body['messages'][2]['content'][0]
    assert result['type'] == 'tool_result' and result['content'] == 'sunny'


def test_a_stored_response_is_the_tenants_own(client, other):
    made = client.responses.create(model='mock', input='keep me')
    assert client.responses.retrieve(made.id).model_dump() == made.model_dump()
    for call in (
        lambda: other.responses.retrieve(made.id),
        lambda: other.responses.create(
            model='mock', input='x', previous_response_id=made.id
        ),
        lambda: other.responses.delete(made.id),
    ):
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert made.id in exc.value.body['message']
    follow = client.responses.create(
        model='mock', input='and?', previous_response_id=made.id
    )
    assert follow.output_text == '[mock] You said: and?'
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)


def test_store_false_keeps_nothing(client):
    made = client.responses.create(model='mock', input='forget me', store=False)
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.create(model='mock', input='x', previous_response_id=made.id)
    assert exc.value.body['param'] == 'previous_response_id'


def test_built_in_tools_are_refused_for_translated_targets(client, upstream):
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(
            model='mock', input='x', tools=[{'type': 'web_search_preview'}]
        )
    assert "'web_search_preview'" in exc.value.body['message']
    assert exc.value.body['param'] == 'tools'
    before = len(upstream.requests)
    client.responses.create(
        model='gpt-resp', input='x', tools=[{'type': 'web_search_preview'}]
    )
    assert upstream.requests[before][1]['tools'] == [{'type': 'web_search_preview'}]


def test_structured_output_goes_only_where_it_is_honoured(client, upstream):
    fmt = {
        'format': {
            'type': 'json_schema',
            'name': 'city',
            'schema': {'type': 'object', 'properties': {'city': {'type': 'string'}}},
        }
    }
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model='claude-text', input='x', text=fmt)
    assert exc.value.body['param'] == 'text.format'
    assert "'json_schema'" in exc.value.body['message']
    client.responses.create(model='gpt-resp', input='x', text=fmt)
    assert upstream.requests[-1][1]['text'] == fmt
    # a follow-up of a stored response is translated: built-in tools are refused
    made = client.responses.create(model='mock', input='first')
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(
            model='gpt-resp',
            input='x',
            previous_response_id=made.id,
            tools=[{'type': 'file_search', 'vector_store_ids': ['vs_1']}],
        )
    assert exc.value.body['param'] == 'tools'


@pytest.mark.parametrize(
    ('body', 'param'),
    [
        ({'input': 5}, 'input'),
        ({'input': [{'role': 'robot', 'content': 'x'}]}, 'input[0].role'),
        ({'input': 'x', 'max_output_tokens': 0}, 'max_output_tokens'),
        ({'input': 'x', 'temperature': 3}, 'temperature'),
        ({'input': [{'type': 'item_reference', 'id': 'x'}]}, 'input[0].type'),
        ({'input': 'x', 'text': {'format': {'type': 'xml'}}}, 'text.format.type'),
        ({}, 'input'),
    ],
)
def test_bad_requests_name_the_field(gw, body, param):
    r = requests.post(
        gw.base_url + '/responses',
        json={'model': 'mock', **body},
        headers={'Authorization': 'Bearer sk-resp-1'},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    assert r.json()['error']['param'] == param
    assert r.json()['error']['type'] == 'invalid_request_error'


# -- passed through --------------------------------------------------------------------


def test_the_request_and_answer_pass_through_unchanged(gw, upstream):
    rec = recorded(gw)
    made = rec.client.responses.create(
        model='gpt-resp',
        input=[{'role': 'user', 'content': [{'type': 'input_text', 'text': 'hi'}]}],
        reasoning={'effort': 'low'},
        extra_body={'x_future': {'n': 1.50}},
    )
    assert upstream.raw[-1] == rec.sent[-1]
    headers, _ = upstream.requests[-1]
    assert headers['Authorization'] == 'Bearer sk-upstream-resp'
    assert made.output_text == 'echo: hi' and made.id.startswith('resp_fake')
    r = requests.post(
        gw.base_url + '/responses',
        json={'model': 'gpt-resp', 'input': 'raw', 'stream': True},
        headers={'Authorization': 'Bearer sk-resp-1'},
        timeout=10,
    )
    assert r.status_code == 200 and r.content == upstream.sent[-1]
    assert r.headers['X-AegisFlow-Provider'] == 'oai'


def test_upstream_responses_are_owned_per_tenant(client, other, upstream):
    for stream in (False, True):
        made = client.responses.create(model='gpt-resp', input='mine', stream=stream)
        if stream:
            made = [e for e in made][0].response
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(
                model='gpt-resp', input='x', previous_response_id=made.id
            )
        assert client.responses.retrieve(made.id).id == made.id
        follow = client.responses.create(
            model='gpt-resp', input='next', previous_response_id=made.id
        )
        assert upstream.requests[-1][1]['previous_response_id'] == made.id
        assert follow.output_text == 'echo: next'
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(made.id)
        assert made.id in upstream.stored
        client.responses.delete(made.id)
        assert made.id not in upstream.stored
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(made.id)


def test_a_response_held_upstream_continues_only_there(client):
    made = client.responses.create(model='gpt-resp', input='upstream')
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model='mock', input='x', previous_response_id=made.id)
    assert exc.value.body['param'] == 'previous_response_id'
    assert "'oai'" in exc.value.body['message']


def test_usage_reaches_the_ledger_with_the_endpoint(gw):
    own = openai.OpenAI(base_url=gw.base_url, api_key='sk-resp-usage', max_retries=0)
    own.responses.create(model='gpt-resp', input='count me')
    list(own.responses.create(model='gpt-resp', input='count me', stream=True))
    own.responses.create(model='mock', input='count me')
    rows = usage_rows(
        gw,
        'usage',
        3,
        columns='streamed, prompt_tokens, completion_tokens, cached_tokens, '
        'reasoning_tokens, endpoint, provider',
    )
    assert rows[:2] == [
        (0, 20, 6, 8, 2, 'responses', 'oai'),
        (1, 20, 6, 8, 2, 'responses', 'oai'),
    ]
    assert rows[2][-2:] == ('responses', 'mock')
    counted = total(
        scrape(gw.url), 'aegisflow_requests_total', tenant='usage', endpoint='responses'
    )
    assert counted == 3


@pytest.mark.parametrize('model', ['gpt-cut', 'claude-cut'])
def test_a_cut_stream_ends_with_response_failed(gw, model):
    r = requests.post(
        gw.base_url + '/responses',
        json={'model': model, 'input': 'one two three', 'stream': True},
        headers={'Authorization': 'Bearer sk-resp-cut'},
        timeout=10,
    )
    events = [e for e in r.content.split(b'\n\n') if e]
    assert b'response.output_text.delta' in r.content
    assert b'response.completed' not in r.content
    last = json.loads(events[-1].split(b'data: ', 1)[1])
    assert last['type'] == 'response.failed'
    assert last['response']['status'] == 'failed'
    assert 'ended the stream early' in last['response']['error']['message']


def test_cut_streams_are_errors_in_the_ledger(gw):
    rows = usage_rows(gw, 'cut', 2, columns='requested_model, outcome, endpoint')
    assert sorted(rows) == [
        ('claude-cut', 'stream_error', 'responses'),
        ('gpt-cut', 'stream_error', 'responses'),
    ]


# -- policies --------------------------------------------------------------------------


@pytest.fixture(scope='module')
def guarded(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-resp-guarded', max_retries=0)


SAID = 'the classified plan, and the classified map'
REDACTED = SAID.replace('classified', '[KEYWORD_1]')


@pytest.mark.parametrize('model', ['gpt-resp', 'mock'])
def test_output_redaction_reaches_every_event_that_repeats_the_text(guarded, model):
    made = guarded.responses.create(model=model, input=SAID)
    assert made.output_text.endswith(REDACTED)
    events = list(guarded.responses.create(model=model, input=SAID, stream=True))
    deltas = ''.join(e.delta for e in events if e.type == 'response.output_text.delta')
    assert deltas.endswith(REDACTED)
    done = next(e for e in events if e.type == 'response.output_text.done')
    part = next(e for e in events if e.type == 'response.content_part.done')
    item = next(e for e in events if e.type == 'response.output_item.done')
    assert done.text == part.part.text == item.item.content[0].text == deltas
    assert events[-1].response.output_text == deltas
    assert 'classified' not in str([e.model_dump() for e in events])


def test_input_redaction_passes_through_and_is_restored(guarded, upstream):
    made = guarded.responses.create(
        model='gpt-resp',
        input=[{'role': 'user', 'content': 'mail ann@example.com now'}],
    )
    _, body = upstream.requests[-1]
    assert body['input'][0]['content'] == 'mail [EMAIL_1] now'
    assert made.output_text == 'echo: mail ann@example.com now'
