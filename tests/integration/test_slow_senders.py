"""Slow senders: a request body that stops arriving, and request headers that take
too long in total (slowloris), are refused with 408 and their connections closed, so
they cannot hold worker threads; a slow but steady body is read."""

import concurrent.futures
import json
import os
import select
import socket
import time

import pytest

from tests.support.gateway import SERVING_CLASS
from tests.support.gateway import wait_until

CONFIG = """
server:
  {workers: 1, threads: 4, body_timeout_s: 1, header_timeout_s: 1,
   body_min_bytes_per_s: 100}
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
    assert err['message'] == (
        'The request body arrived too slowly (nothing for 1s, or under 100 bytes/s '
        'after that); send the whole body promptly.'
    )
    assert 0.9 < waited < 10


def test_a_body_trickled_inside_each_pause_is_cut_at_the_minimum_pace(gw):
    """A byte every 0.05 s never pauses for the 1 s body timeout, but 20 bytes/s is
    under the 100 bytes/s minimum: the deadline (1 s, plus 1 s per 100 bytes
    received) passes after about 1.25 s, and the body gets 408."""
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        s.sendall(HEAD)
        started = time.monotonic()
        for i in range(len(BODY) - 1):
            readable, _, _ = select.select([s], [], [], 0.05)  # the trickle's pace
            if readable:
                break
            try:
                s.send(BODY[i : i + 1])
            except OSError:
                break
        answer = read_or_reset(s)
        waited = time.monotonic() - started
    head, _, body = answer.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 408'), answer[:200]
    assert json.loads(body)['error']['code'] == 'request_timeout'
    assert 1.0 < waited < 3


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


def read_or_reset(sock):
    try:
        return read_all(sock)
    except ConnectionResetError:
        return b''


def stall_body(gw):
    """A body that stops after 5 bytes; (answer, seconds until it came)."""
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        started = time.monotonic()
        s.sendall(HEAD + BODY[:5])
        return read_or_reset(s), time.monotonic() - started


def trickle_head(gw):
    """Headers sent a byte every 0.1 s for as long as the gateway listens;
    (answer, seconds until it came)."""
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ')
        started = time.monotonic()
        while time.monotonic() - started < 15:
            readable, _, _ = select.select([s], [], [], 0.1)  # the pace of the trickle
            if readable:
                break
            try:
                s.send(b'a')
            except OSError:
                break
        return read_or_reset(s), time.monotonic() - started


def served(gw):
    with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as s:
        started = time.monotonic()
        s.sendall(HEAD.replace(b'HTTP/1.1', b'HTTP/1.0', 1) + BODY)
        return read_all(s), time.monotonic() - started


def test_headers_that_trickle_past_the_deadline_get_408(gw):
    answer, waited = trickle_head(gw)
    head, _, body = answer.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 408'), answer[:200]
    err = json.loads(body)['error']
    assert err == {
        'message': 'The request line and headers did not arrive in time.',
        'type': 'invalid_request_error',
        'param': None,
        'code': 'request_timeout',
    }
    # the deadline (1 s) plus at most one turn of the worker's loop (1 s)
    assert 0.9 < waited < 4


@pytest.mark.parametrize('attack', [stall_body, trickle_head], ids=['body', 'headers'])
def test_every_thread_held_by_slow_senders_is_freed(gw, attack):
    """Four slow senders take all four threads of the one worker; a request sent
    after them is served once their deadlines free the threads (without the
    deadlines it would wait as long as they keep sending)."""
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        slow = [pool.submit(attack, gw) for _ in range(4)]
        time.sleep(0.3)  # NOTE: lets the four reach the worker first; not a sync
        normal = pool.submit(served, gw)
        answers = [f.result(timeout=20) for f in slow]
        answer, waited = normal.result(timeout=20)
    assert answer.startswith(b'HTTP/1.0 200')
    if SERVING_CLASS == 'gevent':
        # a slow sender holds nothing but its own connection: served at once
        assert waited < 0.4
    else:
        # it waited for a thread: the four held them all until their deadlines
        assert waited > 0.4
    for answer, waited in answers:
        assert answer.startswith(b'HTTP/1.1 408'), answer[:200]
        assert 0.9 < waited < 4


# -- closing never blocks the loop ----------------------------------------------

SILENT_HEAD = (
    b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
    b'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{'
)


def _server_sockets(port, pid):
    """{inode: state} of the worker's TCP sockets on `port` (hex states of
    /proc/net/tcp: 04 FIN_WAIT1, 05 FIN_WAIT2, 01 ESTABLISHED)."""
    owned = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            owned.add(target[8:-1])
    out = {}
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local_port = int(parts[1].split(':')[1], 16)
            if local_port == port and parts[9] in owned:
                out[parts[9]] = parts[3]
    return out


def test_silent_senders_closed_without_blocking_other_clients(gateway_factory):
    """A dozen clients send headers and one body byte, then nothing: each is
    answered (401, no key); the worker waits a bounded time for the unread body,
    then closes each connection gracefully, which lingers for the silent peer.
    Meanwhile every other client's request completes: all of them before the
    first silent sender's socket is let go."""
    gw = gateway_factory(CONFIG.replace('threads: 4, ', ''))  # the default threads
    [worker] = gw.worker_pids()
    silent = []
    try:
        for _ in range(12):
            s = socket.create_connection(('127.0.0.1', gw.port), timeout=15)
            s.sendall(SILENT_HEAD)
            silent.append(s)
        for s in silent:  # each is answered at once
            assert s.recv(65536).startswith(b'HTTP/1.1 401')

        def lingering():
            return [
                state for state in _server_sockets(gw.port, worker).values()
                if state in ('04', '05')  # the gateway's FIN sent, peer silent
            ]  # fmt: skip

        wait_until(lambda: len(lingering()) == 12, timeout=20, what='12 lingering')
        for _ in range(20):
            with socket.create_connection(('127.0.0.1', gw.port), timeout=15) as c:
                c.sendall(
                    b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                )
                assert read_all(c).startswith(b'HTTP/1.1 200')
        # every other request is done, and no silent sender has been let go yet
        assert len(lingering()) == 12
        # then each is let go at its deadline
        wait_until(lambda: not lingering(), timeout=30, what='silent senders closed')
    finally:
        for s in silent:
            s.close()
