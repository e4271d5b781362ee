"""Model-backed guardrails against fake guard servers (real HTTP, OpenAI's wire
format): a moderation endpoint and a Llama Guard / JSON judge model, through the
real gateway under real Gunicorn, with the ``openai`` and ``anthropic`` SDKs.

Parallel mode is proven by the order of events, not by timing: a guard that answers
only once the main call has started, and a main call that answers only once the
guard has started, complete together (run one after the other, each would wait for
the other to its timeout); a guard that says "unsafe" only after the main upstream
has answered still blocks, and the answer never reaches the client; a stream's
upstream sees its connection closed on a block."""

import threading

import anthropic
import openai
import pytest
import requests

from tests.support.fake_guard import SECRET
from tests.support.fake_guard import FakeGuard
from tests.support.fake_guard import FakeMain
from tests.support.gateway import SERVING_CLASS
from tests.support.gateway import wait_until
from tests.support.ledger import usage_rows
from tests.support.metrics import scrape
from tests.support.metrics import total

ADMIN_KEY = 'adm-guard-secret'
ADMIN = {'Authorization': f'Bearer {ADMIN_KEY}'}
CONFIG = """
server: {{workers: 2, admin_key_env: GUARD_ADMIN}}
providers:
  - {{name: main, type: openai_compatible, base_url: "{main}", models: ["*"],
     prices: {{main-model: {{input: 1, output: 1}}}}}}
  - {{name: guard, type: openai_compatible, base_url: "{guard}",
     models: [llama-guard3, judge-small],
     prices: {{llama-guard3: {{input: 100, output: 100}},
              judge-small: {{input: 100, output: 100}}}}}}
routes:
  - {{match: llama-guard3, targets: [guard]}}
  - {{match: judge-small, targets: [guard]}}
  - {{match: "*", targets: [main]}}
retry: {{max_attempts: 1}}
policies:
  input:
    - {{name: lg, type: guard_model, model: llama-guard3, action: block,
       categories: [S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13]}}
    - {{name: lg-before, type: guard_model, model: llama-guard3, action: block,
       run: before}}
    - {{name: mod, type: moderation, provider: guard, action: block,
       categories: {{violence: 0.7, self-harm: 0.3}}, cache_ttl_s: 0}}
    - {{name: slow-block, type: guard_model, model: llama-guard3, action: block,
       timeout_ms: 300, on_error: block, cache_ttl_s: 0}}
    - {{name: slow-allow, type: guard_model, model: llama-guard3, action: block,
       timeout_ms: 300, on_error: allow, cache_ttl_s: 0}}
    - {{name: judge, type: guard_model, model: judge-small, template: judge,
       action: block, categories: [violence, fraud]}}
    - {{name: warned, type: guard_model, model: llama-guard3, action: warn}}
    - {{name: tool-mod, type: moderation, provider: guard, action: block,
       fields: [tool_results], cache_ttl_s: 0}}
  output:
    - {{name: out-window, type: guard_model, model: llama-guard3, action: block,
       run: stream_window, window_chars: 60, cache_ttl_s: 0}}
    - {{name: out-after, type: moderation, provider: guard, action: block,
       cache_ttl_s: 0}}
tenants:
  - {{id: lg, keys: [{{key: sk-lg}}], policies: [lg], allowed_models: [main-model]}}
  - {{id: before, keys: [{{key: sk-before}}], policies: [lg-before]}}
  - {{id: mod, keys: [{{key: sk-mod}}], policies: [mod]}}
  - {{id: slowb, keys: [{{key: sk-slowb}}], policies: [slow-block]}}
  - {{id: slowa, keys: [{{key: sk-slowa}}], policies: [slow-allow]}}
  - {{id: judge, keys: [{{key: sk-judge}}], policies: [judge]}}
  - {{id: warned, keys: [{{key: sk-warned}}], policies: [warned]}}
  - {{id: toolmod, keys: [{{key: sk-toolmod}}], policies: [tool-mod]}}
  - {{id: window, keys: [{{key: sk-window}}], policies: [out-window]}}
  - {{id: after, keys: [{{key: sk-after}}], policies: [out-after]}}
  - {{id: limited, keys: [{{key: sk-limited}}], policies: [lg],
     rate_limit: {{requests_per_minute: 2}}, budget: {{daily_usd: 10}}}}
telemetry:
  flush_interval_ms: 50
  traces: {{exporter: otlp_http, endpoint: "{collector}", sample_ratio: 1.0}}
"""


@pytest.fixture(scope='module')
def fakes():
    main, guard = FakeMain().start(), FakeGuard().start()
    yield main, guard
    main.stop()
    guard.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, fakes, collector):
    main, guard = fakes
    return gateway_factory(
        CONFIG.format(
            main=main.base_url, guard=guard.base_url, collector=collector.endpoint
        ),
        env={'GUARD_ADMIN': ADMIN_KEY},
    )


@pytest.fixture
def main(fakes):
    fakes[0].reset()
    yield fakes[0]
    fakes[0].reset()


@pytest.fixture
def guard(fakes):
    g = fakes[1]
    g.gate = None
    g.started.clear()
    yield g
    g.gate = None


def client(gw, key):
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def ask(gw, key, text, **kwargs):
    return client(gw, key).chat.completions.create(
        model='main-model', messages=[{'role': 'user', 'content': text}], **kwargs
    )


def raw(gw, key, text, **body):
    return requests.post(
        gw.base_url + '/chat/completions',
        json={'model': 'main-model', 'messages': [{'role': 'user', 'content': text}]}
        | body,
        headers={'Authorization': f'Bearer {key}'},
        timeout=30,
    )


def _reached(main, text):
    """Whether a call with `text` reached the main upstream. NOTE: by its own
    text, not `main.started`: a call an earlier test's block cut short can still
    be read by the fake after that test ended."""
    return any(
        m.get('content') == text for _, body in main.requests for m in body['messages']
    )


def test_a_clean_request_runs_beside_the_guard_and_passes(gw, main, guard):
    # each side answers only once the other has started: only a parallel run ends
    main.gate = guard.started
    guard.gate = main.started
    answer = ask(gw, 'sk-lg', 'a clean parallel question')
    assert answer.choices[0].message.content == 'echo: a clean parallel question'


def test_before_judges_first_and_the_main_call_never_starts_on_a_block(gw, main, guard):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-before', 'KILL-MARKER before')
    err = refused.value.body
    assert err['code'] == 'policy_violation'
    assert "guardrail 'lg-before' (S1)" in err['message']
    assert 'KILL-MARKER' not in err['message']
    assert not _reached(main, 'KILL-MARKER before')


def test_a_verdict_after_the_answer_still_blocks_and_the_answer_never_leaves(
    gw, main, guard
):
    guard.gate = main.answered  # "unsafe" comes once the main answer is complete
    r = raw(gw, 'sk-lg', 'HOLD KILL-MARKER late verdict')
    assert r.status_code == 403
    assert r.json()['error']['code'] == 'policy_violation'
    assert SECRET not in r.text and main.answered.is_set()
    # the main call's usage is recorded, marked cancelled
    wait_until(
        lambda: (
            (403, 'cancelled', 11, 'chat')
            in usage_rows(
                gw, 'lg', 0, columns='status, outcome, prompt_tokens, endpoint'
            )
        ),
        timeout=10,
        what='the cancelled row',
    )


@pytest.mark.skipif(
    SERVING_CLASS != 'gevent',
    reason='a thread cannot be killed: under gthread the verdict waits for the answer',
)
def test_under_gevent_a_block_that_comes_first_cuts_the_main_call(gw, main, guard):
    release = threading.Event()
    main.gate = release  # the main upstream answers only once released
    r = raw(gw, 'sk-lg', 'KILL-MARKER cut before the answer')
    assert r.status_code == 403
    assert not main.answered.is_set()  # refused while the call was still out
    release.set()
    assert main.closed.wait(10), 'the main call was left running'
    wait_until(
        lambda: any(
            row[:2] == (403, 'cancelled') and row[2] > 0
            for row in usage_rows(gw, 'lg', 0, columns='status, outcome, prompt_tokens')
        ),
        timeout=10,
        what='the cut request in the ledger, with its prompt estimate',
    )


def test_a_stream_is_held_for_the_verdict_and_its_upstream_closed_on_a_block(
    gw, main, guard
):
    guard.gate = main.first_sent  # "unsafe" once the stream's first chunk is out
    r = requests.post(
        gw.base_url + '/chat/completions',
        json={
            'model': 'main-model',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'HOLD KILL-MARKER stream'}],
        },
        headers={'Authorization': 'Bearer sk-lg'},
        timeout=30,
    )
    assert r.status_code == 403  # nothing was sent before the verdict
    assert SECRET not in r.text
    assert main.closed.wait(10), 'the upstream stream was left open'


def test_a_clean_stream_is_released_intact_after_the_verdict(gw, main, guard):
    main.gate = guard.started
    stream = client(gw, 'sk-lg').chat.completions.create(
        model='main-model',
        stream=True,
        messages=[{'role': 'user', 'content': 'one two three four five'}],
    )
    text = ''.join(c.choices[0].delta.content or '' for c in stream if c.choices)
    assert text == 'echo: one two three four five '


def test_moderation_blocks_over_a_threshold_only(gw, main, guard):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-mod', 'I feel SAD-MARKER today')  # self-harm 0.5 > 0.3
    assert "guardrail 'mod' (self-harm)" in refused.value.body['message']
    # violence scores 0.2 for harassment only: under every threshold configured
    assert ask(gw, 'sk-mod', 'a fine day').choices[0].message.content


def test_moderation_reads_images_too(gw, main, guard):
    r = raw(
        gw,
        'sk-mod',
        None,
        messages=[
            {
                'role': 'user',
                'content': [
                    {'type': 'text', 'text': 'what is this?'},
                    {
                        'type': 'image_url',
                        'image_url': {'url': 'https://example.test/bad-image.png'},
                    },
                ],
            }
        ],
    )
    # sexual is flagged by the endpoint but not in the policy's thresholds
    assert r.status_code == 200
    assert {
        'type': 'image_url',
        'image_url': {'url': 'https://example.test/bad-image.png'},
    } in guard.inputs


def test_codes_not_selected_pass_and_an_unreadable_verdict_follows_on_error(
    gw, main, guard
):
    # S14 is not among the codes the lg policy selects
    assert ask(gw, 'sk-lg', 'ODD-MARKER only').choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-lg', 'GARBLE-MARKER')
    assert "guardrail 'lg' could not decide (error)" in refused.value.body['message']


def test_a_timeout_blocks_or_passes_as_on_error_says(gw, main, guard):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-slowb', 'SLOW-MARKER blocked')
    assert '(timeout)' in refused.value.body['message']
    answer = ask(gw, 'sk-slowa', 'SLOW-MARKER allowed')
    assert answer.choices[0].message.content == 'echo: SLOW-MARKER allowed'

    def counted():
        text = scrape(gw.url)
        return (
            total(
                text,
                'aegisflow_guardrail_verdicts_total',
                policy='slow-allow',
                verdict='timeout',
            )
            >= 1
            and total(
                text,
                'aegisflow_guardrail_verdicts_total',
                policy='slow-block',
                verdict='timeout',
            )
            >= 1
        )

    wait_until(counted, timeout=10, what='the timeouts counted')


def test_the_judge_template_and_its_categories(gw, main, guard):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-judge', 'KILL-MARKER judged')
    assert "guardrail 'judge' (violence)" in refused.value.body['message']
    assert ask(gw, 'sk-judge', 'hello judge').choices


def test_warn_passes_with_a_header(gw, main, guard):
    r = raw(gw, 'sk-warned', 'KILL-MARKER but only warned')
    assert r.status_code == 200
    assert r.headers['X-AegisFlow-Policy-Warnings'] == 'warned'


def test_a_guard_scoped_to_tool_results_reads_only_them(gw, main, guard):
    user = raw(gw, 'sk-toolmod', 'KILL-MARKER typed by the user')
    assert user.status_code == 200  # not its kind of text
    messages = [
        {'role': 'user', 'content': 'What did the tool say?'},
        {
            'role': 'assistant',
            'content': None,
            'tool_calls': [
                {
                    'id': 'c1',
                    'type': 'function',
                    'function': {'name': 'fetch', 'arguments': '{}'},
                }
            ],
        },
        {'role': 'tool', 'tool_call_id': 'c1', 'content': 'KILL-MARKER in the page'},
    ]
    tool = raw(gw, 'sk-toolmod', None, messages=messages)
    assert tool.status_code == 403
    assert "guardrail 'tool-mod' (violence)" in tool.json()['error']['message']


def test_a_repeated_text_is_judged_once(gw, main, guard):
    text = 'a system prompt seen on every turn'
    ask(gw, 'sk-lg', text)
    before = guard.calls['/v1/chat/completions']
    for _ in range(3):
        ask(gw, 'sk-lg', text)
    assert guard.calls['/v1/chat/completions'] == before
    wait_until(
        lambda: (
            total(
                scrape(gw.url),
                'aegisflow_guardrail_verdicts_total',
                policy='lg',
                source='cache',
            )
            >= 3
        ),
        timeout=10,
        what='cached verdicts counted',
    )


def test_the_guard_call_is_the_tenants_priced_usage_not_its_rate(gw, main, guard):
    # two requests a minute: each brings a guard call, which must not count
    for text in ('first limited question', 'second limited question'):
        assert ask(gw, 'sk-limited', text).choices
    with pytest.raises(openai.RateLimitError):
        ask(gw, 'sk-limited', 'third limited question')
    columns = 'endpoint, model, prompt_tokens, completion_tokens, cost_usd'

    def guard_rows():
        rows = usage_rows(gw, 'limited', 0, columns=columns)
        found = [r for r in rows if r[0] == 'guardrail']
        return found if len(found) >= 2 else None

    guards = wait_until(guard_rows, timeout=10, what='the guard calls in the ledger')
    assert len(guards) == 2
    assert all(r[1] == 'llama-guard3' and r[2:4] == (200, 4) for r in guards)
    assert all(abs(r[4] - 204 * 100 / 1e6) < 1e-9 for r in guards)
    # charged to the tenant's budget: the spend counter holds the guard calls too
    shown = requests.get(
        f'{gw.url}/admin/v1/tenants/limited', headers=ADMIN, timeout=5
    ).json()
    spent = next(c for c in shown['counters'] if c['kind'] == 'budget')['spent_usd']
    assert spent >= 2 * 204 * 100 / 1e6


def test_a_guard_whose_breaker_is_open_follows_on_error(gw, main, guard):
    r = requests.post(
        f'{gw.url}/admin/v1/breakers',
        json={'target': 'guard/llama-guard3', 'action': 'open', 'seconds': 60},
        headers=ADMIN,
        timeout=5,
    )
    assert r.status_code == 200
    try:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            ask(gw, 'sk-lg', 'while the guard is down')
        assert '(error)' in refused.value.body['message']
        # on_error allow: the request goes on
        assert ask(gw, 'sk-slowa', 'while the guard is down').choices
    finally:
        requests.post(
            f'{gw.url}/admin/v1/breakers',
            json={'target': 'guard/llama-guard3', 'action': 'close'},
            headers=ADMIN,
            timeout=5,
        )


def test_a_stream_is_released_a_window_at_a_time_and_cut_at_a_bad_one(gw, main, guard):
    words = ' '.join(f'word{i}' for i in range(30))
    stream = client(gw, 'sk-window').chat.completions.create(
        model='main-model',
        stream=True,
        messages=[{'role': 'user', 'content': f'{words} KILL-MARKER tail'}],
    )
    got = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                got.append(chunk.choices[0].delta.content or '')
    text = ''.join(got)
    assert text.startswith('echo: word0 word1') and 'KILL-MARKER' not in text
    clean = client(gw, 'sk-window').chat.completions.create(
        model='main-model',
        stream=True,
        messages=[{'role': 'user', 'content': words}],
    )
    whole = ''.join(c.choices[0].delta.content or '' for c in clean if c.choices)
    assert whole == f'echo: {words} '


def test_an_answer_judged_after_is_replaced_by_the_refusal(gw, main, guard):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gw, 'sk-after', 'say KILL-MARKER back')
    assert refused.value.body['message'].startswith(
        "Response blocked by guardrail 'out-after' (violence"
    )
    assert ask(gw, 'sk-after', 'say something kind').choices


def test_messages_clients_get_the_refusal_in_their_format(gw, main, guard):
    claude = anthropic.Anthropic(base_url=gw.url, api_key='sk-lg', max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        claude.messages.create(
            model='main-model',
            max_tokens=50,
            messages=[{'role': 'user', 'content': 'KILL-MARKER via messages'}],
        )
    assert refused.value.body['type'] == 'error'
    assert "guardrail 'lg' (S1)" in refused.value.body['error']['message']


def test_blocks_are_audited_and_every_verdict_is_a_span(gw, main, guard, collector):
    with pytest.raises(openai.PermissionDeniedError):
        ask(gw, 'sk-mod', 'KILL-MARKER audited')

    def audited():
        entries = requests.get(
            f'{gw.url}/admin/v1/audit',
            params={'tenant': 'mod', 'action': 'policy.block'},
            headers=ADMIN,
            timeout=5,
        ).json()['entries']
        return [
            e
            for e in entries
            if e['target'] == 'mod' and e['detail']['kind'] == 'violence'
        ]

    entry = wait_until(audited, timeout=10, what='the audit row')[0]
    assert isinstance(entry['detail']['latency_ms'], int)
    assert 'KILL-MARKER' not in str(entry)

    def spans():
        with collector.lock:
            return [
                s
                for s in collector.spans
                if s['name'] == 'guardrail mod'
                and s['attributes'].get('aegisflow.guardrail.verdict') == 'block'
                and s['attributes']['aegisflow.policy.finding'] == 'violence'
            ]

    span = wait_until(spans, timeout=15, what='the guardrail span')[0]
    assert (
        span['end'] - span['start']
        == span['attributes']['aegisflow.guardrail.latency_ms'] * 1_000_000
    )
    assert 'aegisflow.guardrail.latency_ms' in span['attributes']
    text = scrape(gw.url)
    assert (
        total(
            text,
            'aegisflow_guardrail_verdicts_total',
            policy='mod',
            verdict='block',
            category='violence',
        )
        >= 1
    )


def test_no_label_comes_from_upstream_text(gw, main, guard):
    text = scrape(gw.url)
    categories = {
        line.split('category="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith('aegisflow_guardrail_verdicts_total{')
    }
    allowed = {'', 'other', 'violence', 'self-harm', 'fraud'} | {
        f'S{i}' for i in range(1, 15)
    }
    assert categories <= allowed, categories


def test_concurrent_requests_keep_their_own_verdicts(gw, main, guard):
    results = {}

    def one(i):
        text = f'KILL-MARKER {i}' if i % 2 else f'clean {i}'
        try:
            ask(gw, 'sk-lg', text)
            results[i] = 'ok'
        except openai.PermissionDeniedError:
            results[i] = 'blocked'

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: 'blocked' if i % 2 else 'ok' for i in range(12)}


def test_under_meinheld_a_parallel_guard_runs_before_with_a_warning(
    gateway_factory, fakes, collector
):
    main, guard = fakes
    main.reset()
    config = CONFIG.format(
        main=main.base_url, guard=guard.base_url, collector=collector.endpoint
    ).replace('workers: 2,', 'workers: 1, worker_class: meinheld,')
    gw = gateway_factory(config, env={'GUARD_ADMIN': ADMIN_KEY})
    assert 'parallel guardrails run before the call' in gw.log()
    with pytest.raises(openai.PermissionDeniedError):
        ask(gw, 'sk-lg', 'KILL-MARKER under meinheld')
    # judged first: the main call never began (had it run, it would have been
    # answered, so recorded, before the refusal)
    assert not _reached(main, 'KILL-MARKER under meinheld')
    assert ask(gw, 'sk-lg', 'clean under meinheld').choices
    main.reset()


def test_verdicts_in_redis_are_shared_by_two_gateways_and_hold_no_text(
    gateway_factory, fakes, collector, tmp_path_factory
):
    import redis

    from tests.support.redis_server import RedisServer

    main, guard = fakes
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    try:
        config = CONFIG.format(
            main=main.base_url, guard=guard.base_url, collector=collector.endpoint
        ) + (
            f'cache: {{enabled: false, backend: redis, redis_url: "{server.url}"}}\n'
            'state: {key_prefix: "guardtest"}\n'
        )
        first = gateway_factory(config, env={'GUARD_ADMIN': ADMIN_KEY})
        second = gateway_factory(config, env={'GUARD_ADMIN': ADMIN_KEY})
        text = 'a text judged by one gateway, known to the other'
        assert ask(first, 'sk-lg', text).choices
        calls = guard.calls['/v1/chat/completions']
        assert ask(second, 'sk-lg', text).choices
        assert guard.calls['/v1/chat/completions'] == calls  # judged once
        client = redis.Redis.from_url(server.url)
        names = [n.decode() for n in client.keys('*')]
        assert names and all(n.startswith('guardtest:cache:verdict:') for n in names)
        stored = b''.join(client.get(n) for n in names)
        assert b'judged by one gateway' not in stored
    finally:
        server.stop()
