"""Alert webhooks from the master: a budget warning arrives exactly once when two
workers cross its warn_at together, signed so the receiver can check it; a
receiver that is down when the alert is due gets it once it is back; a breaker's
opening and closing are told."""

import hashlib
import hmac
import json
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
import requests

from tests.support.gateway import free_port
from tests.support.gateway import wait_until
from tests.support.httpserver import FakeHandler
from tests.support.metrics import samples
from tests.support.metrics import scrape

SECRET = 'whsec-test-alerts'
ADMIN_KEY = 'adm-alerts'


class Receiver:
    """A webhook receiver on `port`; it can start after the gateway does."""

    def __init__(self, port):
        self.port = port
        self.got = []  # (headers, raw body)
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        receiver = self

        class Handler(FakeHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers['Content-Length']))
                with receiver.lock:
                    receiver.got.append((dict(self.headers), body))
                # NOTE: one connection per delivery, so a stopped receiver gets none
                self.send_json(200, {'ok': True}, headers=[('Connection', 'close')])
                self.close_connection = True

        self.server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self, name):
        with self.lock:
            return [
                (h, json.loads(b))
                for h, b in self.got
                if json.loads(b)['event'] == name
            ]


def verify(headers, body):
    """The receiver's check: the HMAC over "<t>.<body>" and a recent t."""
    parts = dict(p.split('=', 1) for p in headers['X-AegisFlow-Signature'].split(','))
    expected = hmac.new(
        SECRET.encode(), f'{parts["t"]}.'.encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(parts['v1'], expected) and (
        abs(time.time() - int(parts['t'])) < 300
    )


CONFIG = """
server: {{workers: 2, admin_key_env: ALERT_ADMIN}}
providers:
  - {{name: mock, type: mock, models: [mock], prices: {{mock: {{input: 1, output: 1}}}}}}
routes: [{{match: "*", targets: [mock]}}]
tenants:
  - id: spender
    keys: [{{key: sk-spender}}, {{key: sk-soon, name: soon, expires_at: {soon}}}]
    budget: {{daily_usd: 0.0004, warn_at: 0.5}}
storage: {{sqlite_path: usage.sqlite}}
telemetry: {{flush_interval_ms: 50}}
alerts:
  - {{url: "http://127.0.0.1:{port}/hook", secret_env: ALERT_SECRET, retry_s: 60}}
"""


@pytest.fixture(scope='module')
def receiver_port():
    return free_port()


@pytest.fixture(scope='module')
def gw(gateway_factory, receiver_port):
    soon = int(time.time()) + 2 * 86400  # within 7 days, not within 1
    return gateway_factory(
        CONFIG.format(port=receiver_port, soon=soon),
        env={'ALERT_SECRET': SECRET, 'ALERT_ADMIN': ADMIN_KEY},
    )


def spend(gw, n):
    def one(_):
        return requests.post(
            gw.base_url + '/chat/completions',
            json={
                'model': 'mock',
                'max_tokens': 5,
                'messages': [{'role': 'user', 'content': 'spend a little'}],
            },
            headers={'Authorization': 'Bearer sk-spender', 'Connection': 'close'},
            timeout=10,
        ).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def outcomes(gw, event):
    return {
        labels['outcome']: v
        for labels, v in samples(scrape(gw.url), 'aegisflow_alerts_total')
        if labels['event'] == event
    }


def test_a_budget_warning_arrives_once_signed_even_after_the_receiver_was_down(
    gw, receiver_port
):
    # the receiver is down when the budget crosses warn_at: the first delivery fails
    statuses = spend(gw, 20)
    assert 200 in statuses
    wait_until(
        lambda: outcomes(gw, 'budget.warning').get('retried', 0) >= 1,
        timeout=15,
        what='a failed first delivery',
    )
    receiver = Receiver(receiver_port).start()
    try:
        wait_until(
            lambda: receiver.events('budget.warning'),
            timeout=30,
            what='the warning, once the receiver is back',
        )
        assert 429 in spend(gw, 20)  # the rest of the budget, and past it
        wait_until(
            lambda: receiver.events('budget.exhausted'),
            timeout=30,
            what='the exhaustion',
        )
        spend(gw, 5)  # more refusals of the same budget: no second alert
        wait_until(
            lambda: outcomes(gw, 'budget.warning').get('sent') == 1,
            timeout=10,
            what='the sent count',
        )
        [(headers, alert)] = receiver.events('budget.warning')
        raw = next(
            b for h, b in receiver.got if json.loads(b)['event'] == 'budget.warning'
        )
        assert verify(headers, raw)
        assert headers['X-AegisFlow-Event'] == 'budget.warning'
        assert alert['subject'] == 'tenant:spender'
        data = alert['data']
        assert data['limit_usd'] == pytest.approx(0.0004)
        assert data['spent_usd'] >= 0.5 * data['limit_usd']
        assert len(receiver.events('budget.exhausted')) == 1
        # a body changed in transit fails the check
        assert not verify(headers, raw.replace(b'spender', b'spendex'))
        # the key that expires in two days was told once, at the 7-day mark
        wait_until(
            lambda: receiver.events('key.expiring'), timeout=15, what='key.expiring'
        )
        [(headers, alert)] = receiver.events('key.expiring')
        assert alert['subject'] == 'spender/soon'
        assert alert['data']['within'] == '7d'
        assert headers['X-AegisFlow-Event'] == 'key.expiring'
    finally:
        receiver.stop()


def test_a_breaker_forced_open_then_closed_is_told_both_ways(gw, receiver_port):
    receiver = Receiver(receiver_port).start()
    admin = {'Authorization': f'Bearer {ADMIN_KEY}'}
    try:
        for action in ('open', 'close'):
            r = requests.post(
                gw.url + '/admin/v1/breakers',
                json={'target': 'mock/mock', 'action': action},
                headers=admin,
                timeout=10,
            )
            assert r.status_code == 200, r.text
            event = 'breaker.opened' if action == 'open' else 'breaker.closed'
            wait_until(lambda e=event: receiver.events(e), timeout=15, what=event)
        [(headers, opened)] = receiver.events('breaker.opened')
        [(_, closed)] = receiver.events('breaker.closed')
        assert opened['subject'] == closed['subject'] == 'mock/mock'
        assert opened['data'] == {'target': 'mock/mock'}
        assert headers['X-AegisFlow-Event'] == 'breaker.opened'
    finally:
        receiver.stop()
