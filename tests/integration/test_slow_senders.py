"""Slow senders: a request body that stops arriving is refused with 408 and its
connection closed, so it cannot hold a worker thread; a slow but steady one is read."""

import json
import socket
import time

import pytest

CONFIG = """
server: {workers: 1, body_timeout_s: 1}
providers:
  - {name: mock, type: mock, models: [mock]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-slow, name: ci}]
"""
BODY = json.dumps(
    {'model': 'mock', 'messages': [{'role': 'user', 'content': 'hello there'}]}
).encode()
HEAD = (
    b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-slow\r\n'
    b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(BODY)
)


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG)


def read_all(sock):
    out = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(gw):
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        started = time.monotonic()
        s.sendall(HEAD + BODY[:10])  # then nothing more
        answer = read_all(s)  # returns once the gateway closes the connection
        waited = time.monotonic() - started
    head, _, body = answer.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 408')
    err = json.loads(body)['error']
    assert err['code'] == 'request_timeout'
    assert err['type'] == 'invalid_request_error'
    assert 'nothing for 1s' in err['message']
    assert 0.9 < waited < 10


def test_a_slow_but_steady_body_is_read(gw):
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        s.sendall(HEAD)
        for i in range(0, len(BODY), 20):
            s.sendall(BODY[i : i + 20])
            time.sleep(0.05)  # NOTE: the slow sender itself, not synchronisation
        s.shutdown(socket.SHUT_WR)
        answer = read_all(s)
    assert answer.startswith(b'HTTP/1.1 200')
    assert b'[mock] You said: hello there' in answer


def test_the_worker_keeps_serving_while_a_sender_stalls(gw):
    """One worker: a stalled body must not keep others from being served."""
    stalled = socket.create_connection(('127.0.0.1', gw.port), timeout=15)
    try:
        stalled.sendall(HEAD + BODY[:5])
        with socket.create_connection(('127.0.0.1', gw.port), timeout=5) as s:
            s.sendall(HEAD.replace(b'HTTP/1.1', b'HTTP/1.0', 1) + BODY)
            assert read_all(s).startswith(b'HTTP/1.0 200')
    finally:
        stalled.close()
