"""The response cache on ``/v1/responses`` passed through to an OpenAI target that
speaks the Responses API, with the official OpenAI SDK: the response object is
stored as the upstream answered it and replayed whole or as the documented event
stream (numbered from 0), whichever way it was stored; tool calls included."""

import openai
import pytest

from tests.support.fake_responses import FakeResponses

WEATHER = {
    'type': 'function',
    'name': 'get_weather',
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
def client(gateway_factory, upstream):
    gw = gateway_factory(
        f'''
server: {{workers: 2}}
cache: {{ttl_s: 600}}
providers:
  - {{name: oai, type: openai, base_url: "{upstream.base_url}",
     api_key_env: CACHE_RESP_KEY, models: ["gpt-*"]}}
routes: [{{match: "*", targets: [oai]}}]
tenants:
  - {{id: t, keys: [{{key: sk-cache-resp}}]}}
''',
        env={'CACHE_RESP_KEY': 'sk-upstream-cache-resp'},
    )
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-cache-resp', max_retries=0)


def calls(upstream, text):
    return sum(1 for _, body in upstream.requests if text in str(body.get('input')))


def create(client, text, **kw):
    raw = client.responses.with_raw_response.create(model='gpt-resp', input=text, **kw)
    return raw.headers['X-AegisFlow-Cache'], raw.parse()


def stream(client, text, **kw):
    raw = client.responses.with_raw_response.create(
        model='gpt-resp', input=text, stream=True, **kw
    )
    events = list(raw.parse())
    assert events[-1].type == 'response.completed'
    return raw.headers['X-AegisFlow-Cache'], events[-1].response, events


def test_a_response_replays_whole_and_as_a_stream(client, upstream):
    result, first = create(client, 'respond once')
    assert result == 'miss'
    result, again = create(client, 'respond once')
    assert result == 'hit'
    assert again.model_dump() == first.model_dump()
    result, streamed, events = stream(client, 'respond once')
    assert result == 'hit'
    assert streamed.output_text == first.output_text == 'echo: respond once'
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == 'response.created'
    assert events[-1].type == 'response.completed'
    assert calls(upstream, 'respond once') == 1


def test_a_streamed_tool_call_is_stored_and_a_whole_request_gets_it(client, upstream):
    result, streamed, _ = stream(client, 'Paris', tools=[WEATHER])
    assert result == 'miss'
    result, whole = create(client, 'Paris', tools=[WEATHER])
    assert result == 'hit'
    call = whole.output[-1]
    assert call.type == 'function_call' and call.name == 'get_weather'
    assert call.arguments == streamed.output[-1].arguments
    result, replayed, events = stream(client, 'Paris', tools=[WEATHER])
    assert result == 'hit'
    assert replayed.output[-1].arguments == call.arguments
    assert any(e.type == 'response.function_call_arguments.delta' for e in events)
    assert calls(upstream, 'Paris') == 1


def test_a_cut_stream_is_not_stored(client, upstream):
    for _ in range(2):
        raw = client.responses.with_raw_response.create(
            model='gpt-cut', input='cut here', stream=True
        )
        assert raw.headers['X-AegisFlow-Cache'] == 'miss'
        assert [e.type for e in raw.parse()][-1] == 'response.failed'
    assert calls(upstream, 'cut here') == 2
