"""The cooperative worker class (``server.worker_class: gevent``) through real
Gunicorn: one worker holds hundreds of streams at once, an upstream that never
answers holds no one else's request, and the connections a worker serves are
bounded by ``worker_connections``."""

import concurrent.futures
import socket
import threading
import time

import pytest
import requests

from tests.support.gateway import free_port

KEY = {'Authorization': 'Bearer sk-coop'}


class SilentUpstream:
    """Accepts connections and reads requests, and never answers."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.create_server(('127.0.0.1', self.port), backlog=512)
        self.held = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(scope='module')
def silent():
    upstream = SilentUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, silent):
    return gateway_factory(
        f"""
server: {{workers: 1, worker_class: gevent, worker_connections: 400}}
providers:
  - {{name: mock, type: mock, models: [mock, mock-drip],
     stream_chunk_words: 1, stream_chunk_delay_ms: 100}}
  - {{name: silent, type: openai_compatible, base_url: "http://127.0.0.1:{silent.port}/v1",
     models: [hang], timeout_s: 20}}
routes:
  - {{match: "hang", targets: [silent]}}
  - {{match: "*", targets: [mock]}}
tenants:
  - {{id: coop, keys: [{{key: sk-coop}}]}}
retry: {{max_attempts: 1}}
circuit_breaker: {{enabled: false}}
telemetry: {{access_log: false}}
"""
    )


def _chat(gw, model, **extra):
    return requests.post(
        gw.base_url + '/chat/completions',
        headers=KEY,
        json={'model': model, 'messages': [{'role': 'user', 'content': 'hi'}], **extra},
        timeout=30,
    )


def test_the_worker_is_the_cooperative_class(gw):
    assert 'Using worker: workers.gevent.GeventWorker' in gw.log()
    assert len(gw.worker_pids()) == 1


def test_an_upstream_that_never_answers_holds_no_other_request(gw, silent):
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        hanging = [pool.submit(_chat, gw, 'hang') for _ in range(40)]
        deadline = time.monotonic() + 10
        while len(silent.held) < 40:  # every one of them waits on the upstream
            assert time.monotonic() < deadline, len(silent.held)
            time.sleep(0.01)
        took = []
        for _ in range(30):
            started = time.monotonic()
            assert _chat(gw, 'mock').status_code == 200
            took.append(time.monotonic() - started)
        assert not any(f.done() for f in hanging)
        # the same worker answered at once, all the while
        assert max(took) < 0.5, took
        for conn in list(silent.held):
            conn.close()  # the upstream goes away: each waiting request fails fast
        codes = {f.result(timeout=20).status_code for f in hanging}
    assert codes == {502}


def test_one_worker_holds_hundreds_of_streams_at_once(gw):
    """300 streams of two seconds each (20 words, 100 ms apart) on one worker:
    all are open at once, so all end in about the time of one."""
    words = ' '.join(f'w{i}' for i in range(19))

    def stream():
        r = requests.post(
            gw.base_url + '/chat/completions',
            headers=KEY,
            json={
                'model': 'mock-drip',
                'stream': True,
                'messages': [{'role': 'user', 'content': words}],
            },
            timeout=60,
            stream=True,
        )
        body = b''.join(r.iter_content(None))
        return r.status_code, body.rstrip().endswith(b'data: [DONE]')

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(300) as pool:
        results = list(pool.map(lambda _: stream(), range(300)))
    took = time.monotonic() - started
    assert results == [(200, True)] * 300
    assert took < 15, took  # one at a time would take 600 s


def test_worker_connections_bound_what_one_worker_serves(gateway_factory):
    gw = gateway_factory(
        """
server: {workers: 1, worker_class: gevent, worker_connections: 5}
providers:
  - {name: mock, type: mock, models: [mock], stream_chunk_words: 1,
     stream_chunk_delay_ms: 300}
routes: [{match: "*", targets: [mock]}]
tenants: [{id: coop, keys: [{key: sk-coop}]}]
telemetry: {access_log: false}
"""
    )
    opened = []
    try:
        for _ in range(5):  # five idle keep-alive connections fill the pool
            s = socket.create_connection(('127.0.0.1', gw.port), timeout=5)
            s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
            assert s.recv(4096).startswith(b'HTTP/1.1 200')
            opened.append(s)
        with pytest.raises(requests.Timeout):
            requests.get(gw.url + '/healthz', timeout=1)  # not accepted meanwhile
        opened.pop().close()
        assert requests.get(gw.url + '/healthz', timeout=5).status_code == 200
    finally:
        for s in opened:
            s.close()
