"""The response cache through a live gateway of 4 workers, against a fake OpenAI
server that counts its calls: one store for every worker, tenants never share an
entry, redacted values restored per request, streams stored and replayed both ways,
cut streams never stored, client cache control, TTL, limits and the ledger."""

import concurrent.futures
import os
import signal
import sqlite3

import openai
import pytest
import requests
import yaml

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import wait_until
from tests.support.metrics import samples
from tests.support.metrics import scrape
from tests.support.metrics import total

CONFIG = """
server: {{workers: 4, admin_key_env: CACHE_ADMIN}}
storage: {{sqlite_path: usage.sqlite}}
telemetry: {{flush_interval_ms: 50}}
cache: {{enabled: true, ttl_s: 600}}
providers:
  - name: up
    type: openai_compatible
    base_url: {base}
    models: ["*"]
    prices: {{"*": {{input: 1.0, output: 2.0}}}}
aliases: {{fast: ok-alias}}
routes:
  - {{match: "short-*", targets: [up], cache: {{ttl_s: 1}}}}
  - {{match: "nocache-*", targets: [up], cache: {{enabled: false}}}}
  - {{match: "*", targets: [up]}}
policies:
  input:
    - {{name: emails, type: pii, kinds: [email], action: redact, restore: true}}
tenants:
  - id: acme
    keys: [{{key: sk-acme-1, name: one}}, {{key: sk-acme-2, name: two}}]
    rate_limit: {{requests_per_minute: 1000, tokens_per_minute: 1000000}}
  - id: globex
    keys: [{{key: sk-globex-1}}]
  - id: books
    keys: [{{key: sk-books-1}}]
  - id: capped
    keys: [{{key: sk-capped-1}}]
    rate_limit: {{requests_per_minute: 3, tokens_per_minute: 2000}}
"""


ADMIN_KEY = 'adm-cache-secret'
ADMIN = {'Authorization': f'Bearer {ADMIN_KEY}'}


@pytest.fixture(scope='module')
def upstream():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream):
    return gateway_factory(
        CONFIG.format(base=upstream.base_url), env={'CACHE_ADMIN': ADMIN_KEY}
    )


def post(gw, model, text, key='sk-acme-1', headers=None, **body):
    h = {'Authorization': f'Bearer {key}'}
    h.update(headers or {})
    return requests.post(
        gw.base_url + '/chat/completions',
        json={'model': model, 'messages': [{'role': 'user', 'content': text}], **body},
        headers=h,
        timeout=30,
    )


def test_a_repeated_request_is_served_once_by_the_upstream_in_every_worker(
    gw, upstream
):
    first = post(gw, 'ok-repeat', 'the same question')
    assert first.status_code == 200
    assert first.headers['X-AegisFlow-Cache'] == 'miss'
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: post(
                    gw,
                    'ok-repeat',
                    'the same question',
                    headers={'Connection': 'close'},
                ),
                range(32),
            )
        )
    assert {a.status_code for a in answers} == {200}
    assert {a.headers['X-AegisFlow-Cache'] for a in answers} == {'hit'}
    assert {a.json()['choices'][0]['message']['content'] for a in answers} == {
        'echo: the same question'
    }
    assert upstream.calls['ok-repeat'] == 1
    assert all(int(a.headers['Age']) >= 0 for a in answers)


def test_an_alias_shares_the_entries_of_its_model(gw, upstream):
    assert post(gw, 'ok-alias', 'alias question').headers['X-AegisFlow-Cache'] == 'miss'
    r = post(gw, 'fast', 'alias question')
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert upstream.calls['ok-alias'] == 1


def test_two_tenants_never_share_an_entry(gw, upstream):
    assert post(gw, 'ok-tenants', 'shared words').headers['X-AegisFlow-Cache'] == 'miss'
    other = post(gw, 'ok-tenants', 'shared words', key='sk-globex-1')
    assert other.headers['X-AegisFlow-Cache'] == 'miss'
    assert upstream.calls['ok-tenants'] == 2
    # keys of one tenant share its entries (namespace_by: tenant)
    same = post(gw, 'ok-tenants', 'shared words', key='sk-acme-2')
    assert same.headers['X-AegisFlow-Cache'] == 'hit'


def test_fields_that_do_not_change_the_answer_share_an_entry_and_others_do_not(
    gw, upstream
):
    post(gw, 'ok-fields', 'fields', user='u1', metadata={'a': '1'})
    r = post(gw, 'ok-fields', 'fields', user='u2', metadata={'b': '2'})
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    r = post(gw, 'ok-fields', 'fields', temperature=0.3)
    assert r.headers['X-AegisFlow-Cache'] == 'miss'
    assert upstream.calls['ok-fields'] == 2


def test_redacted_values_share_an_entry_and_each_client_gets_its_own_back(gw, upstream):
    a = post(gw, 'ok-pii', 'mail alice@example.com now')
    b = post(gw, 'ok-pii', 'mail bob@example.org now')
    assert a.headers['X-AegisFlow-Cache'] == 'miss'
    assert b.headers['X-AegisFlow-Cache'] == 'hit'
    assert upstream.calls['ok-pii'] == 1
    assert (
        a.json()['choices'][0]['message']['content']
        == 'echo: mail alice@example.com now'
    )
    assert (
        b.json()['choices'][0]['message']['content'] == 'echo: mail bob@example.org now'
    )
    # the upstream saw a placeholder, never a value
    sent = [body for _, body in upstream.requests if body.get('model') == 'ok-pii']
    assert 'example' not in str(sent)


def test_a_stream_is_stored_once_complete_and_replayed_either_way(gw, upstream):
    client = openai.OpenAI(base_url=gw.base_url, api_key='sk-acme-1', max_retries=0)
    messages = [{'role': 'user', 'content': 'stream me please'}]
    raw = client.chat.completions.with_raw_response.create(
        model='ok-stream',
        messages=messages,
        stream=True,
        stream_options={'include_usage': True},
    )
    assert raw.headers['X-AegisFlow-Cache'] == 'miss'
    text = ''.join(c.choices[0].delta.content or '' for c in raw.parse() if c.choices)
    assert text.strip() == 'echo: stream me please'
    # a streamed hit: a well-formed stream, usage when asked
    raw = client.chat.completions.with_raw_response.create(
        model='ok-stream',
        messages=messages,
        stream=True,
        stream_options={'include_usage': True},
    )
    assert raw.headers['X-AegisFlow-Cache'] == 'hit'
    chunks = list(raw.parse())
    assert chunks[0].choices[0].delta.role == 'assistant'
    assert ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices) == (
        text
    )
    assert chunks[-2].choices[0].finish_reason == 'stop'
    assert chunks[-1].usage.completion_tokens > 0
    # a non-streamed hit on the entry stored from a stream
    raw = client.chat.completions.with_raw_response.create(
        model='ok-stream', messages=messages
    )
    assert raw.headers['X-AegisFlow-Cache'] == 'hit'
    assert raw.parse().choices[0].message.content == text
    assert upstream.calls['ok-stream'] == 1


def test_a_non_streamed_answer_replays_as_a_stream(gw, upstream):
    post(gw, 'ok-mixed', 'mixed')
    r = post(gw, 'ok-mixed', 'mixed', stream=True)
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert r.text.rstrip().endswith('data: [DONE]')
    assert '"echo: mixed"' in r.text
    assert upstream.calls['ok-mixed'] == 1


def test_a_cut_stream_is_not_stored(gw, upstream):
    for _ in range(2):
        r = post(gw, 'cut', 'cut me', stream=True)
        assert r.headers['X-AegisFlow-Cache'] == 'miss'
        assert 'data: [DONE]' not in r.text
    assert upstream.calls['cut'] == 2


def test_errors_are_not_stored(gw, upstream):
    for _ in range(2):
        r = post(gw, 'err-400', 'bad')
        assert r.status_code == 400
    assert upstream.calls['err-400'] == 2


def test_client_cache_control(gw, upstream):
    post(gw, 'ok-control', 'control')
    r = post(gw, 'ok-control', 'control', headers={'Cache-Control': 'no-cache'})
    assert r.headers['X-AegisFlow-Cache'] == 'miss'  # looked past, stored again
    r = post(gw, 'ok-control', 'control', headers={'Cache-Control': 'no-store'})
    assert r.headers['X-AegisFlow-Cache'] == 'bypass'
    # an entry older than max-age is a miss (the SDK-friendly header says it too)
    r = post(
        gw, 'ok-control', 'control', headers={'X-AegisFlow-Cache-Control': 'max-age=0'}
    )
    assert r.headers['X-AegisFlow-Cache'] == 'miss'
    r = post(gw, 'ok-control', 'control', headers={'Cache-Control': 'max-age=3600'})
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert upstream.calls['ok-control'] == 4


def test_a_route_override_turns_the_cache_off_or_shortens_the_ttl(gw, upstream):
    for _ in range(2):
        r = post(gw, 'nocache-x', 'off')
        assert 'X-AegisFlow-Cache' not in r.headers
    assert upstream.calls['nocache-x'] == 2
    post(gw, 'short-x', 'ttl')
    assert post(gw, 'short-x', 'ttl').headers['X-AegisFlow-Cache'] == 'hit'
    wait_until(
        lambda: post(gw, 'short-x', 'ttl').headers['X-AegisFlow-Cache'] == 'miss',
        timeout=10,
        what='the 1-second entry to expire',
    )


def test_tool_calls_are_cached_with_their_arguments(gw, upstream):
    tools = [
        {
            'type': 'function',
            'function': {'name': 'lookup', 'parameters': {'type': 'object'}},
        }
    ]
    a = post(gw, 'ok-tools', 'use a tool', tools=tools)
    b = post(gw, 'ok-tools', 'use a tool', tools=tools)
    assert b.headers['X-AegisFlow-Cache'] == 'hit'
    assert a.json()['choices'] == b.json()['choices']
    c = post(gw, 'ok-tools', 'use a tool')  # without the tools: another request
    assert c.headers['X-AegisFlow-Cache'] == 'miss'


def test_a_hit_is_a_request_for_the_limits_and_spends_no_tokens(gw, upstream):
    def ask():
        return post(gw, 'ok-capped', 'limit me', key='sk-capped-1', max_tokens=20)

    assert ask().headers['X-AegisFlow-Cache'] == 'miss'
    hits = [ask(), ask()]
    assert [h.headers['X-AegisFlow-Cache'] for h in hits] == ['hit', 'hit']
    # the first hit's reservation was released, not charged: the second sees the
    # same tokens remaining (the answer it replays cost about 12)
    left = [int(h.headers['x-ratelimit-remaining-tokens']) for h in hits]
    assert left[1] >= left[0]
    refused = ask()
    assert refused.status_code == 429  # a cached answer is still a request
    assert refused.json()['error']['type'] == 'requests'
    assert upstream.calls['ok-capped'] == 1


def test_hits_spend_no_tokens_and_the_ledger_records_what_they_saved(gw, upstream):
    def counts():
        text = scrape(gw.url)
        by = {
            labels['result']: v
            for labels, v in samples(text, 'aegisflow_cache_requests_total')
            if labels['tenant'] == 'books'
        }
        return by, total(text, 'aegisflow_cache_saved_usd_total', tenant='books')

    post(gw, 'ok-ledger', 'ledger words', key='sk-books-1')
    for _ in range(3):
        r = post(gw, 'ok-ledger', 'ledger words', key='sk-books-1')
        assert r.headers['X-AegisFlow-Cache'] == 'hit'

    def rows():
        db = sqlite3.connect(gw.workdir / 'usage.sqlite')
        try:
            return db.execute(
                'SELECT cache_hit, cost_usd, saved_usd, prompt_tokens FROM usage '
                "WHERE requested_model = 'ok-ledger' ORDER BY ts_ns"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    wait_until(lambda: len(rows()) == 4, timeout=15, what='4 ledger rows')
    got = rows()
    miss, hits = got[0], got[1:]
    assert miss[0] == 0 and miss[1] > 0 and miss[2] == 0 and miss[3] > 0
    assert all(h[0] == 1 and h[1] == 0 and h[3] == 0 for h in hits)
    assert all(h[2] == pytest.approx(miss[1]) for h in hits)
    want = {'hit': 3, 'miss': 1}
    wait_until(lambda: counts()[0] == want, timeout=15, what='the cache counters')
    assert counts()[1] == pytest.approx(3 * miss[1])
    text = scrape(gw.url)
    assert total(text, 'aegisflow_cache_bytes') > 0
    assert total(text, 'aegisflow_cache_entries') > 0


def test_admin_shows_the_cache_and_deletes_by_tenant_or_whole(gw, upstream):
    post(gw, 'ok-admin', 'admin words')
    post(gw, 'ok-admin', 'admin words', key='sk-globex-1')
    r = requests.get(gw.url + '/admin/v1/cache', headers=ADMIN, timeout=10)
    assert r.status_code == 200
    out = r.json()
    assert out['backend'] == 'local' and out['entries'] >= 2 and out['bytes'] > 0
    assert out['requests']['hit'] > 0 and 0 < out['hit_ratio'] < 1
    # a tenant key never reaches it
    r = requests.get(
        gw.url + '/admin/v1/cache',
        headers={'Authorization': 'Bearer sk-acme-1'},
        timeout=10,
    )
    assert r.status_code == 403
    r = requests.delete(
        gw.url + '/admin/v1/cache',
        params={'tenant': 'globex'},
        headers=ADMIN,
        timeout=10,
    )
    assert r.status_code == 200 and r.json()['deleted'] >= 1
    hit = post(gw, 'ok-admin', 'admin words')
    assert hit.headers['X-AegisFlow-Cache'] == 'hit'  # acme's entry is still there
    gone = post(gw, 'ok-admin', 'admin words', key='sk-globex-1')
    assert gone.headers['X-AegisFlow-Cache'] == 'miss'
    r = requests.delete(
        gw.url + '/admin/v1/cache', params={'colour': 'red'}, headers=ADMIN, timeout=10
    )
    assert r.status_code == 400 and r.json()['error']['param'] == 'colour'
    # ?tenant= from a script whose variable was unset: refused, not a purge of all
    r = requests.delete(gw.url + '/admin/v1/cache?tenant=', headers=ADMIN, timeout=10)
    assert r.status_code == 400 and r.json()['error']['param'] == 'tenant'
    assert "Query parameter 'tenant' is empty" in r.json()['error']['message']
    assert post(gw, 'ok-admin', 'admin words').headers['X-AegisFlow-Cache'] == 'hit'
    r = requests.delete(gw.url + '/admin/v1/cache', headers=ADMIN, timeout=10)
    assert r.status_code == 200 and r.json()['deleted'] >= 2
    assert post(gw, 'ok-admin', 'admin words').headers['X-AegisFlow-Cache'] == 'miss'
    audit = requests.get(
        gw.url + '/admin/v1/audit',
        params={'action': 'cache.delete'},
        headers=ADMIN,
        timeout=10,
    ).json()
    assert [e['action'] for e in audit['entries']] == ['cache.delete'] * 2


def test_embeddings_and_the_translated_apis_are_cached_too(gw, upstream):
    h = {'Authorization': 'Bearer sk-acme-1'}

    def embed():
        return requests.post(
            gw.base_url + '/embeddings',
            json={'model': 'ok-embed', 'input': ['one text', 'another']},
            headers=h,
            timeout=10,
        )

    first, second = embed(), embed()
    assert first.headers['X-AegisFlow-Cache'] == 'miss'
    assert second.headers['X-AegisFlow-Cache'] == 'hit'
    assert second.json()['data'] == first.json()['data']
    sent = [b for _, b in upstream.requests if b.get('model') == 'ok-embed']
    assert len(sent) == 1
    # /v1/messages and /v1/responses to an OpenAI-compatible target: translated,
    # cached in the chat form, answered in their own format
    for path, body in (
        (
            '/messages',
            {
                'model': 'ok-msgs',
                'max_tokens': 64,
                'messages': [{'role': 'user', 'content': 'as anthropic'}],
            },
        ),
        ('/responses', {'model': 'ok-resps', 'input': 'as responses'}),
    ):
        results = []
        for _ in range(2):
            r = requests.post(gw.base_url + path, json=body, headers=h, timeout=10)
            assert r.status_code == 200, r.text
            results.append(r)
        assert [r.headers['X-AegisFlow-Cache'] for r in results] == ['miss', 'hit']
        assert upstream.calls[body['model']] == 1
    answer = results[1].json()
    assert answer['object'] == 'response'
    assert answer['output'][0]['content'][0]['text'] == 'echo: as responses'


def test_a_writer_killed_in_the_middle_of_a_store_leaves_the_cache_correct(
    gw_paused, upstream
):
    gw, marker = gw_paused
    open(marker, 'w').close()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # the worker that answers stops before committing its entry, holding the
        # writer's lock; its client gets no answer
        cut = pool.submit(
            post, gw, 'ok-killed', 'killed mid-store', headers={'Connection': 'close'}
        )
        wait_until(
            lambda: os.path.exists(marker + '.paused'), timeout=15, what='paused'
        )
        os.unlink(marker)
        with open(marker + '.paused') as f:
            os.kill(int(f.read()), signal.SIGKILL)
        with pytest.raises(requests.RequestException):
            cut.result(timeout=30)
    # the next stores and lookups work: no torn entry, no lock left held
    r = post(gw, 'ok-killed', 'killed mid-store')
    assert r.status_code == 200 and r.headers['X-AegisFlow-Cache'] == 'miss'
    r = post(gw, 'ok-killed', 'killed mid-store')
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert r.json()['choices'][0]['message']['content'] == 'echo: killed mid-store'


def test_entries_survive_a_reload_and_the_store_keeps_its_size(gw_paused, upstream):
    gw, _ = gw_paused
    post(gw, 'ok-reload', 'before the reload')
    before = gw.worker_pids()
    config = yaml.safe_load(gw.config_path.read_text())
    config['cache']['max_bytes'] = 2 << 20
    gw.config_path.write_text(yaml.safe_dump(config))
    gw.signal(signal.SIGHUP)
    wait_until(
        lambda: not set(before) & set(gw.worker_pids()),
        timeout=30,
        what='workers replaced',
    )
    r = post(gw, 'ok-reload', 'before the reload')
    assert r.headers['X-AegisFlow-Cache'] == 'hit'
    assert upstream.calls['ok-reload'] == 1
    wait_until(
        lambda: 'cache.max_bytes changes need a restart' in gw.log(),
        timeout=10,
        what='the warning',
    )


@pytest.fixture(scope='module')
def gw_paused(gateway_factory, upstream, tmp_path_factory):
    marker = str(tmp_path_factory.mktemp('pause') / 'pause')
    gw = gateway_factory(
        CONFIG.format(base=upstream.base_url).replace('workers: 4', 'workers: 2'),
        env={'AEGISFLOW_TEST_CACHE_PAUSE_FILE': marker, 'CACHE_ADMIN': ADMIN_KEY},
    )
    return gw, marker
