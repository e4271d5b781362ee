"""Keys tried by brute force: invalid keys are counted per source address across
every worker and, past the limit, the address is refused before its key is looked at."""

import anthropic
import openai
import pytest
import requests

ADMIN = 'adm-guard-secret'
CONFIG = """
server: {workers: 2, failed_auth_per_minute: 5, admin_key_env: GUARD_ADMIN}
providers:
  - {name: mock, type: mock, models: [mock]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-guard-good, name: ci}]
"""
CHAT = {'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]}


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'GUARD_ADMIN': ADMIN})


def post(gw, key=None, path='/v1/chat/completions'):
    headers = {'Authorization': f'Bearer {key}'} if key else {}
    return requests.post(gw.url + path, json=CHAT, headers=headers, timeout=10)


def test_missing_keys_do_not_count(gw):
    for _ in range(12):
        r = post(gw)
        assert r.status_code == 401
        assert r.json()['error']['code'] == 'missing_api_key'
    assert post(gw, 'sk-guard-good').status_code == 200


def test_invalid_keys_are_refused_past_the_limit_even_the_right_one(gw):
    # NOTE: new connections each time, so both workers take some of the failures
    codes = [post(gw, f'sk-guess-{i}').status_code for i in range(5)]
    assert codes == [401] * 5
    r = post(gw, 'sk-guess-5')
    assert r.status_code == 429
    err = r.json()['error']
    assert err['type'] == 'rate_limit_error'
    assert err['code'] == 'too_many_failed_attempts'
    assert 'invalid API key' in err['message']
    assert 'sk-guess' not in r.text
    retry = int(r.headers['Retry-After'])
    assert 1 <= retry <= 60
    # a right key guessed now cannot be told from a wrong one
    r = post(gw, 'sk-guard-good')
    assert r.status_code == 429
    assert r.json()['error']['code'] == 'too_many_failed_attempts'
    # the SDKs see a rate limit error, on both wires
    client = openai.OpenAI(base_url=gw.base_url, api_key='sk-guard-good', max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**CHAT)
    messages = anthropic.Anthropic(
        base_url=gw.url, api_key='sk-guard-good', max_retries=0
    )
    with pytest.raises(anthropic.RateLimitError) as exc:
        messages.messages.create(
            model='mock', max_tokens=10, messages=[{'role': 'user', 'content': 'hi'}]
        )
    assert exc.value.body['error']['type'] == 'rate_limit_error'
    # the admin API is refused too: the counter is the address's, not the endpoint's
    r = requests.get(
        gw.url + '/admin/v1/usage',
        headers={'Authorization': f'Bearer {ADMIN}'},
        timeout=10,
    )
    assert r.status_code == 429
    # and the refusals are visible in the access log, without any key
    assert 'sk-guess' not in gw.log()
