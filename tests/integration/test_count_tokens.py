"""``POST /v1/messages/count_tokens`` with the official Anthropic SDK: Anthropic's
own count through an Anthropic target (the body as the client sent it, thinking
included), the gateway's estimate through any other; auth, the tenant's model rules
and the input policies apply; no limit is charged and no usage row written; it is
counted in metrics under its own endpoint."""

import json

import anthropic
import pytest
import requests

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.gateway import wait_until
from tests.support.ledger import usage_rows
from tests.support.metrics import scrape
from tests.support.metrics import total


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
     api_key_env: COUNT_TEST_KEY, models: ["claude-*"]}}
  - {{name: mock, type: mock, models: [mock]}}
routes:
  - {{match: "claude-*", targets: [claude]}}
  - {{match: "mock", targets: [mock]}}
tenants:
  - {{id: t, keys: [{{key: sk-count-1}}], rate_limit: {{requests_per_minute: 2}}}}
  - {{id: narrow, keys: [{{key: sk-count-narrow}}], allowed_models: [mock]}}
policies:
  input: [{{name: no-cards, type: pii, kinds: [credit_card], action: block}}]
retry: {{max_attempts: 1}}
telemetry: {{flush_interval_ms: 50}}
''',
        env={'COUNT_TEST_KEY': 'sk-ant-count-upstream'},
    )


@pytest.fixture(scope='module')
def client(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key='sk-count-1', max_retries=0)


MESSAGES = [{'role': 'user', 'content': 'How many tokens is this sentence?'}]


def test_count_through_an_anthropic_target_is_anthropics_own(client, fake):
    out = client.messages.count_tokens(
        model='claude-sonnet-4',
        system='Be brief.',
        messages=MESSAGES,
        thinking={'type': 'enabled', 'budget_tokens': 1024},
    )
    headers, body = fake.requests[-1]
    assert body['thinking'] == {'type': 'enabled', 'budget_tokens': 1024}
    assert body['messages'] == MESSAGES and body['model'] == 'claude-sonnet-4'
    assert headers['x-api-key'] == 'sk-ant-count-upstream'
    expected = 1000 + len(json.dumps(MESSAGES)) + len('Be brief.')
    assert out.input_tokens == expected


def test_count_through_another_target_is_the_estimate(client):
    short = client.messages.count_tokens(model='mock', messages=MESSAGES)
    longer = client.messages.count_tokens(
        model='mock',
        messages=[
            {'role': 'user', 'content': 'How many tokens is this sentence? ' * 20}
        ],
    )
    assert 0 < short.input_tokens < longer.input_tokens


def test_count_is_charged_against_no_limit_and_writes_no_usage_row(client, gw):
    for _ in range(5):  # the tenant may make 2 requests a minute
        assert client.messages.count_tokens(model='mock', messages=MESSAGES)
    # both requests of the minute are still there: the counts took none
    for _ in range(2):
        client.messages.create(model='mock', max_tokens=16, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model='mock', max_tokens=16, messages=MESSAGES)
    # the master writes rows in order: once the two answers and the refusal are
    # there, every count before them would be too; there is none
    assert len(usage_rows(gw, 't', 3)) == 3
    wait_until(
        lambda: (
            total(scrape(gw.url), 'aegisflow_requests_total', endpoint='count_tokens')
            >= 5
        ),
        timeout=15,
        what='the counts on the metrics page',
    )


def test_count_keeps_the_rules(gw, client):
    bad_key = anthropic.Anthropic(base_url=gw.url, api_key='sk-wrong', max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.count_tokens(model='mock', messages=MESSAGES)
    narrow = anthropic.Anthropic(
        base_url=gw.url, api_key='sk-count-narrow', max_retries=0
    )
    with pytest.raises(anthropic.PermissionDeniedError):
        narrow.messages.count_tokens(model='claude-sonnet-4', messages=MESSAGES)
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        client.messages.count_tokens(
            model='claude-sonnet-4',
            messages=[{'role': 'user', 'content': 'card 4111 1111 1111 1111'}],
        )
    assert exc.value.body['error']['type'] == 'permission_error'
    r = requests.post(
        gw.url + '/v1/messages/count_tokens',
        headers={'x-api-key': 'sk-count-1', 'Content-Type': 'application/json'},
        json={'model': 'mock', 'messages': 'not a list'},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()['type'] == 'error'


def test_count_upstream_error_is_anthropics_envelope(client):
    with pytest.raises(anthropic.APIStatusError) as exc:
        client.messages.count_tokens(model='claude-500', messages=MESSAGES)
    assert exc.value.status_code == 502
    assert exc.value.body['type'] == 'error'
