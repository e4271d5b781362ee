"""Upstreams that echo secrets, break their wire format or send nonsense headers,
through real Gunicorn, with the official SDKs and raw HTTP.

- Nothing from an upstream's error reaches the client, or the gateway's log, with a
  secret the gateway holds for that provider: not the key, not the fragments
  providers print, not a credential header line, streamed or not.
- Valid JSON of the wrong shape is an upstream protocol error: retried and failed
  over before the first byte, an ``upstream_error`` event after it; never a 500.
- A hostile ``Retry-After`` is parsed defensively and bounded.
- A half-open probe that meets a broken stream gives its slot back.
"""

import json

import anthropic
import openai
import pytest
import requests

from tests.support import secrets
from tests.support.fake_hostile import FakeHostile
from tests.support.gateway import wait_until

OA_KEY = 'sk-hostile-oa-7Gq2mZ9xLp4RtY8wVb3N'
AN_KEY = 'sk-ant-api03-hostile9Zq4Wm2Kx7Pd5Rt'
ORG_TOKEN = 'orgtok-5Rk9vQ2mW7xZ3cJ8'
GOOD_KEY = 'sk-good-upstream-4Fh8Lq2Zs9'
TENANT = 'sk-hostile-tenant-1'
ENV = {
    'HOSTILE_OA_KEY': OA_KEY,
    'HOSTILE_AN_KEY': AN_KEY,
    'HOSTILE_ORG_TOKEN': ORG_TOKEN,
    'GOOD_UPSTREAM_KEY': GOOD_KEY,
}


def config(hostile, good, *, retry, breaker):
    return f'''
server: {{workers: 1}}
providers:
  - name: oa
    type: openai_compatible
    base_url: "{hostile.base_url}"
    api_key_env: HOSTILE_OA_KEY
    headers: {{X-Org-Token: "{ORG_TOKEN}"}}
    timeout_s: 5
    models: ["*"]
  - {{name: an, type: anthropic, base_url: "{hostile.base_url}",
     api_key_env: HOSTILE_AN_KEY, timeout_s: 5, models: ["an-*"]}}
  - {{name: good, type: openai_compatible, base_url: "{good.base_url}",
     api_key_env: GOOD_UPSTREAM_KEY, timeout_s: 5, models: ["*"]}}
routes:
  - {{match: "an-*", targets: [an]}}
  - {{match: "fb-*", targets: [oa, {{provider: good, model: ok-fallback}}]}}
  - {{match: "*", targets: [oa]}}
tenants:
  - {{id: t, keys: [{{key: {TENANT}}}]}}
retry: {retry}
circuit_breaker: {breaker}
'''


@pytest.fixture(scope='module')
def hostile():
    fake = FakeHostile().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, hostile, upstream):
    return gateway_factory(
        config(
            hostile,
            upstream,
            retry='{max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 20, '
            'max_retry_after_s: 1}',
            breaker='{enabled: false}',
        ),
        env=ENV,
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key=TENANT, max_retries=0)


def assert_clean(text, where):
    """No secret of any provider, nor a fragment as providers print one."""
    secrets.produced(f'client-visible {where}', text)
    for secret in (OA_KEY, AN_KEY, ORG_TOKEN, GOOD_KEY):
        assert secret not in text, where
        assert secret[:8] not in text, where
        assert secret[-4:] not in text, where
    lowered = text.lower()
    assert 'bearer sk' not in lowered and 'x-api-key": "sk' not in lowered


def post(gw, path, body, stream=False):
    return requests.post(
        gw.url + path,
        json=body,
        headers={'Authorization': f'Bearer {TENANT}'},
        stream=stream,
        timeout=15,
    )


def chat(model, stream=False):
    return {
        'model': model,
        'stream': stream,
        'messages': [{'role': 'user', 'content': 'hello'}],
    }


def sse_events(resp):
    return [
        line[6:]
        for line in resp.iter_lines(decode_unicode=True)
        if line[:6] == 'data: '
    ]


# -- secrets in upstream errors --------------------------------------------------


@pytest.mark.parametrize('stream', [False, True], ids=['json', 'stream'])
@pytest.mark.parametrize(
    ('model', 'status'),
    [
        ('echo-401', 502),
        ('echo-400', 400),
        ('echo-500', 502),
        ('echoraw-403', 502),
        ('echoraw-400', 400),
        ('partial', 502),
        ('an-echo-401', 502),
        ('an-echo-400', 400),
        ('an-echoraw-500', 502),
        ('an-partial', 502),
    ],
)
def test_upstream_error_text_reaches_the_client_scrubbed(gw, model, status, stream):
    resp = post(gw, '/v1/chat/completions', chat(model, stream))
    assert resp.status_code == status, resp.text
    error = resp.json()['error']
    assert_clean(resp.text, f'{model} error body')
    provider = 'an' if model.startswith('an-') else 'oa'
    assert f"Provider '{provider}'" in error['message']
    assert '[REDACTED]' in error['message']  # the echo was there, and was cut out
    assert len(error['message']) < 400


def test_upstream_error_scrubbed_on_the_messages_wire(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key=TENANT, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model='an-echo-401',
            max_tokens=10,
            messages=[{'role': 'user', 'content': 'hello'}],
        )
    assert caught.value.status_code == 502
    body = caught.value.response.text
    assert json.loads(body)['type'] == 'error'
    assert_clean(body, 'messages error body')
    assert '[REDACTED]' in body


@pytest.mark.parametrize('model', ['streamecho', 'an-streamecho'])
def test_mid_stream_error_event_is_scrubbed(gw, model):
    resp = post(gw, '/v1/chat/completions', chat(model, True), stream=True)
    assert resp.status_code == 200
    events = sse_events(resp)
    assert events[-1] != '[DONE]'
    error = json.loads(events[-1])['error']
    assert error['code'] == 'upstream_error'
    assert '[REDACTED]' in error['message']
    assert_clean('\n'.join(events), f'{model} stream')


def test_gateway_log_holds_no_fragment_of_a_provider_secret(gw, client):
    # after every test above has run in this module's one gateway
    for model in ('echo-401', 'streamecho', 'an-echoraw-500', 'partial'):
        resp = post(gw, '/v1/chat/completions', chat(model, model == 'streamecho'))
        assert resp.status_code in (200, 502)
    assert_clean(gw.log(), 'gateway log')


# -- wrong shapes ----------------------------------------------------------------


@pytest.mark.parametrize('model', ['null', 'list', 'nochoices', 'baddelta', 'an-null'])
def test_stream_of_the_wrong_shape_before_the_first_byte_is_retried_then_502(
    gw, hostile, model
):
    before = hostile.calls[model]
    resp = post(gw, '/v1/chat/completions', chat(model, True))
    assert resp.status_code == 502, resp.text
    error = resp.json()['error']
    assert error['code'] == 'upstream_error'
    assert 'wire format' in error['message'] or 'shape' in error['message']
    assert hostile.calls[model] - before == 2  # retried: max_attempts 2


@pytest.mark.parametrize(
    ('model', 'where'),
    [('badcompletion', 'choices[0].message'), ('badfinish', 'finish_reason')],
)
@pytest.mark.parametrize('path', ['/v1/chat/completions', '/v1/messages'])
def test_completion_of_the_wrong_shape_is_502(gw, model, where, path):
    resp = post(gw, path, dict(chat(model), max_tokens=5))
    assert resp.status_code == 502, resp.text
    assert where in resp.json()['error']['message']


@pytest.mark.parametrize('path', ['/v1/chat/completions', '/v1/messages'])
def test_usage_counts_of_the_wrong_type_are_no_counts_not_errors(gw, path):
    resp = post(gw, path, dict(chat('oddusage'), max_tokens=5))
    assert resp.status_code == 200, resp.text
    usage = resp.json()['usage']
    if path == '/v1/messages':  # what the gateway made of them: integers
        assert usage['input_tokens'] == 0 and usage['output_tokens'] == 0
    else:  # the upstream's own answer, passed on as it came
        assert usage['prompt_tokens'] == '12'


def test_stream_of_the_wrong_shape_fails_over_to_the_next_target(client):
    chunks = list(
        client.chat.completions.create(
            model='fb-null',
            stream=True,
            messages=[{'role': 'user', 'content': 'hi there'}],
        )
    )
    text = ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices)
    assert text.strip() == 'echo: hi there'  # the fallback's answer


@pytest.mark.parametrize('model', ['mid-null', 'an-badblock'])
def test_wrong_shape_mid_stream_ends_with_an_upstream_error_event(gw, model):
    resp = post(gw, '/v1/chat/completions', chat(model, True), stream=True)
    assert resp.status_code == 200
    events = sse_events(resp)
    assert json.loads(events[0])['choices'][0]['delta']['role'] == 'assistant'
    assert events[-1] != '[DONE]'
    error = json.loads(events[-1])['error']
    assert error['code'] == 'upstream_error' and error['type'] == 'api_error'
    assert 'Traceback' not in gw.log() and 'stream failed' not in gw.log()


# -- Retry-After -----------------------------------------------------------------


@pytest.mark.parametrize(
    ('model', 'header'),
    [
        ('ra-neg', None),
        ('ra-nan', None),
        ('ra-inf', None),
        ('ra-junk', None),
        ('ra-past', '0'),
        ('ra-huge', '1'),
        ('ra-future', '1'),
        ('an-ra-nan', None),
        ('an-ra-neg', None),
    ],
)
def test_hostile_retry_after_is_parsed_and_bounded(gw, hostile, model, header):
    before = hostile.calls[model]
    resp = post(gw, '/v1/chat/completions', chat(model))
    assert resp.status_code == 429, resp.text
    assert resp.headers.get('Retry-After') == header
    assert hostile.calls[model] - before == 2  # waited (within the bound), retried


# -- the half-open probe ---------------------------------------------------------


def test_probe_that_meets_a_broken_stream_leaves_the_target_usable(
    gateway_factory, hostile, upstream
):
    gw = gateway_factory(
        config(
            hostile,
            upstream,
            retry='{max_attempts: 1}',
            breaker='{consecutive_failures: 1, open_s: 0.5, min_calls: 1}',
        ),
        env=ENV,
    )
    model = 'twice-null-probe'
    assert post(gw, '/v1/chat/completions', chat(model, True)).status_code == 502
    statuses = []

    def answered():
        # 503 while the breaker is open; the probes get through when it half-opens
        status = post(gw, '/v1/chat/completions', chat(model, True)).status_code
        statuses.append(status)
        return status == 200

    wait_until(answered, timeout=15, interval=0.05, what='the target to recover')
    assert hostile.calls[model] == 3  # the failing probe, then the good one
    assert 502 in statuses and 500 not in statuses
