"""An upstream that flaps: the breaker opens after the configured failures, keeps
every worker off the target while open, lets one probe through after open_s, closes
on its success, and does it again on the next outage; also with eight clients
sending all the while."""

import collections
import time

import pytest
import requests

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import wait_until
from tests.support.load import steady

MODEL = 'err-503-flap'  # the fake answers 503 to it unless it is healthy


@pytest.fixture(scope='module')
def upstream():
    fake = FakeOpenAI(healthy=False).start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, upstream):
    return gateway_factory(f"""
server: {{workers: 2}}
providers:
  - {{name: flappy, type: openai_compatible, base_url: "{upstream.base_url}",
     models: ["{MODEL}"]}}
routes: [{{match: "*", targets: [flappy]}}]
tenants: [{{id: t, keys: [{{key: sk-flap}}]}}]
retry: {{max_attempts: 1}}
circuit_breaker: {{consecutive_failures: 3, min_calls: 100, open_s: 1}}
telemetry: {{access_log: false}}
""")


def ask(gw):
    return requests.post(
        gw.base_url + '/chat/completions',
        headers={'Authorization': 'Bearer sk-flap', 'Connection': 'close'},
        json={'model': MODEL, 'messages': [{'role': 'user', 'content': 'hi'}]},
        timeout=10,
    )


def calls(upstream):
    return upstream.calls[MODEL]


def outage(gw, upstream):
    """Fail until the breaker opens: exactly 3 calls reach the upstream."""
    upstream.healthy = False
    before = calls(upstream)
    codes = [ask(gw).status_code for _ in range(3)]
    assert codes == [502, 502, 502]
    assert calls(upstream) == before + 3
    opened = time.monotonic()
    # open: every worker answers 503 at once, and nothing reaches the upstream
    for _ in range(10):
        r = ask(gw)
        if time.monotonic() - opened >= 0.9:
            break  # NOTE: open_s is 1 s; past it a probe may go through
        assert r.status_code == 503, r.text
        assert r.json()['error']['code'] == 'no_healthy_target'
        assert r.headers['Retry-After'] == '1'
    assert calls(upstream) == before + 3


def recovery(gw, upstream):
    """The upstream is back: after open_s one probe goes through and closes it."""
    upstream.healthy = True
    before = calls(upstream)
    wait_until(lambda: ask(gw).status_code == 200, timeout=5, what='probe success')
    assert calls(upstream) == before + 1  # the probe, and only it
    assert [ask(gw).status_code for _ in range(6)] == [200] * 6
    assert calls(upstream) == before + 7


def test_the_breaker_cycles_with_the_upstream(gw, upstream):
    for _ in range(2):
        outage(gw, upstream)
        recovery(gw, upstream)


def test_a_failed_probe_opens_it_again(gw, upstream):
    outage(gw, upstream)
    # still failing when probed: one call, then open again
    before = calls(upstream)
    wait_until(lambda: ask(gw).status_code == 502, timeout=5, what='the probe')
    assert calls(upstream) == before + 1
    r = ask(gw)
    assert r.status_code == 503 and calls(upstream) == before + 1
    recovery(gw, upstream)


def test_the_breaker_holds_under_load(gw, upstream):
    """Eight clients send without pause while the upstream goes down for 2.5 s,
    twice. Per outage the upstream sees only the failures that open the breaker,
    the requests already on their way, and about one probe per open_s; everything
    else is refused at once with 503; service comes back after each outage."""
    upstream.healthy = True
    with steady(lambda _: ask(gw).status_code) as answers:
        for _ in range(2):
            mark = len(answers)
            wait_until(
                lambda mark=mark: answers[mark:].count(200) >= 20,
                timeout=10,
                what='served while the upstream is up',
            )
            before, mark = calls(upstream), len(answers)
            upstream.healthy = False
            down = time.monotonic()
            # NOTE: the outage's length, part of the fault being injected
            wait_until(
                lambda down=down: time.monotonic() > down + 2.5,
                timeout=5,
                what='outage',
            )
            failing = calls(upstream) - before
            during = collections.Counter(answers[mark:])
            upstream.healthy = True
            # 3 to open, at most 8 already sent, about one probe per second
            assert 3 <= failing <= 3 + 8 + 4, (failing, during)
            assert during[503] > 10 * failing, (failing, during)
    assert set(answers) <= {200, 502, 503}, collections.Counter(answers)
    wait_until(lambda: ask(gw).status_code == 200, timeout=5, what='closed again')
