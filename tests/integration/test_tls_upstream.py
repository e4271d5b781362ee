"""An upstream over HTTPS, as every hosted provider is: the gateway trusts what the
system trusts (here ``SSL_CERT_FILE``), refuses a certificate it cannot verify,
streams over TLS, and one slow TLS upstream call does not hold up the worker's
other requests."""

import shutil
import ssl
import threading
import time

import openai
import pytest
import requests

from tests.support.fake_openai import FakeOpenAI
from tests.support.tls import self_signed


class TlsOpenAI(FakeOpenAI):
    def __init__(self, key, cert):
        super().__init__(healthy=False)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = self.http.server
        server.socket = context.wrap_socket(server.socket, server_side=True)

    @property
    def base_url(self):
        return self.http.url.replace('http://', 'https://') + self.prefix


@pytest.fixture(scope='module')
def upstreams(tmp_path_factory):
    if not shutil.which('openssl'):
        pytest.fail('openssl is needed (make test installs it)')
    where = tmp_path_factory.mktemp('tls')
    trusted = TlsOpenAI(*self_signed(where, 'trusted')).start()
    stranger = TlsOpenAI(*self_signed(where, 'stranger')).start()
    yield trusted, stranger, where / 'trusted.pem'
    trusted.stop()
    stranger.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, upstreams):
    trusted, stranger, bundle = upstreams
    return gateway_factory(
        f'''
server: {{workers: 1}}
providers:
  - {{name: tls, type: openai_compatible, base_url: "{trusted.base_url}",
     api_key_env: UPSTREAM_KEY, timeout_s: 10, models: ["ok-*", "slow-*"]}}
  - {{name: unknown, type: openai_compatible, base_url: "{stranger.base_url}",
     api_key_env: UPSTREAM_KEY, timeout_s: 10, models: ["stranger-*"]}}
routes:
  - {{match: "stranger-*", targets: [unknown]}}
  - {{match: "*", targets: [tls]}}
tenants:
  - {{id: t, keys: [{{key: sk-tls-1}}]}}
retry: {{max_attempts: 1}}
circuit_breaker: {{enabled: false}}
''',
        env={'UPSTREAM_KEY': 'sk-upstream-tls', 'SSL_CERT_FILE': str(bundle)},
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-tls-1', max_retries=0)


def _ask(client, model, **kw):
    return client.chat.completions.create(
        model=model, messages=[{'role': 'user', 'content': 'over tls'}], **kw
    )


def test_a_trusted_https_upstream_answers_and_streams(client, upstreams):
    trusted = upstreams[0]
    assert _ask(client, 'ok-1').choices[0].message.content == 'echo: over tls'
    text = ''.join(
        chunk.choices[0].delta.content or ''
        for chunk in _ask(client, 'ok-2', stream=True)
        if chunk.choices
    )
    assert text.strip() == 'echo: over tls'
    headers, _ = trusted.requests[-1]
    assert headers['Authorization'] == 'Bearer sk-upstream-tls'


def test_tls_streams_reuse_one_connection_and_handshake(client, upstreams):
    # NOTE: one worker, one request at a time: without reuse each stream would
    # pay a TCP connect and a TLS handshake before its first byte
    trusted = upstreams[0]
    _ask(client, 'ok-warm')
    before = trusted.connections
    for i in range(5):
        chunks = list(_ask(client, f'ok-s{i}', stream=True))
        assert chunks[-1].choices[0].finish_reason == 'stop'
    assert trusted.connections == before


def test_a_certificate_the_system_does_not_trust_is_refused(gw, upstreams):
    r = requests.post(
        gw.base_url + '/chat/completions',
        headers={'Authorization': 'Bearer sk-tls-1'},
        json={'model': 'stranger-1', 'messages': [{'role': 'user', 'content': 'x'}]},
        timeout=30,
    )
    assert r.status_code == 502, r.text
    message = r.json()['error']['message']
    assert "Provider 'unknown' could not be reached (ConnectError)" in message
    assert upstreams[1].requests == []  # NOTE: nothing was sent to it


def test_a_slow_tls_call_does_not_hold_up_the_workers_other_requests(
    gw, client, upstreams
):
    # NOTE: one worker; the fake answers a slow-* model after 2 s. Under a
    # cooperative worker the short requests finish while the slow one waits; under
    # gthread each has its own thread: either way none of them waits for it.
    done = threading.Event()
    slow = threading.Thread(target=lambda: (_ask(client, 'slow-1'), done.set()))
    before = len(upstreams[0].requests)
    slow.start()
    deadline = time.monotonic() + 10
    while len(upstreams[0].requests) == before:  # the slow call reached the fake
        assert time.monotonic() < deadline, 'the slow request never arrived'
        time.sleep(0.01)
    for i in range(10):
        assert _ask(client, f'ok-{i}').choices[0].message.content == 'echo: over tls'
    assert not done.is_set(), 'the short requests waited for the slow one'
    slow.join(10)
    assert done.is_set()
