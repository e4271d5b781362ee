"""The cooperative worker's own parts, each in a process of its own (patching the
standard library is for good): urllib3 imported before the worker patched ssl
builds cooperative TLS contexts again, and the warning about it is not logged."""

import subprocess
import sys
import textwrap

from tests.support.gateway import ROOT

SCRIPT = textwrap.dedent(
    """
    import warnings
    import urllib3.util.ssl_ as u  # as the master imports it with an OTLP exporter
    from gevent import monkey
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        monkey.patch_all()
    from workers.gevent import _report, rebind_ssl_names
    rebind_ssl_names()
    context = u.create_urllib3_context()
    print(type(context).__module__)

    class Log:
        def warning(self, *args):
            print('logged', args[1][:40])

    for warning in caught:
        _report(Log(), warning)
    """
)


def test_urllib3_imported_before_patching_makes_cooperative_tls_contexts():
    out = subprocess.run(
        [sys.executable, '-c', SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    # without the rebinding, creating the context recurses without end
    assert out.stdout.splitlines() == ['gevent.ssl']


class _Recorded:
    """A socket that records what was done to it; `recv` returns `data`."""

    def __init__(self, data, wait=None):
        self.data, self.wait, self.calls = data, wait, []

    def recv(self, size):
        self.calls.append('recv')
        if self.wait:
            import gevent

            gevent.sleep(self.wait)
        return self.data

    def sendall(self, data):
        self.calls.append('sendall')

    def shutdown(self, how):
        self.calls.append('shutdown')

    def close(self):
        self.calls.append('close')


def test_a_peer_that_closed_between_requests_is_closed_without_lingering():
    from workers.gevent import ClientSocket

    sock = _Recorded(b'')
    client = ClientSocket(sock, idle_s=5, head_s=5)
    assert client.recv(100) == b''
    client.close()
    assert sock.calls == ['recv', 'close']


def test_an_idle_connection_still_lingers_for_a_request_in_flight():
    from workers.gevent import ClientSocket

    sock = _Recorded(b'late', wait=1.0)  # NOTE: slower than the idle wait
    client = ClientSocket(sock, idle_s=0.05, head_s=5)
    assert client.recv(100) == b''  # the idle wait ended it
    sock.wait, sock.data = None, b''
    client.close()
    assert sock.calls[:3] == ['recv', 'shutdown', 'recv'] and sock.calls[-1] == 'close'


def test_each_wait_for_a_request_gets_the_whole_idle_time():
    # NOTE: waits that add up past the idle time, each within it: a timer reused
    # across waits (a gevent Timeout cancelled and started again) fired here
    import gevent
    from gevent import socket as gsocket

    from workers.gevent import ClientSocket

    a, b = gsocket.socketpair()
    client = ClientSocket(a, idle_s=0.3, head_s=5)

    def peer():
        for _ in range(4):
            gevent.sleep(0.2)
            b.sendall(b'GET / HTTP/1.1\r\n')

    sender = gevent.spawn(peer)
    for _ in range(4):
        client.request_done()
        assert client.recv(100) == b'GET / HTTP/1.1\r\n'
    sender.get(timeout=5)
    a.close()
    b.close()


def test_a_request_already_there_is_read_without_a_timer(monkeypatch):
    import gevent
    from gevent import socket as gsocket

    from workers import gevent as worker
    from workers.gevent import ClientSocket

    armed = []

    class Timer(gevent.Timeout):
        def __init__(self, *args, **kwargs):
            armed.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(worker.gevent, 'Timeout', Timer)
    a, b = gsocket.socketpair()
    client = ClientSocket(a, idle_s=5, head_s=5)
    b.sendall(b'GET / HTTP/1.1\r\n')
    assert client.recv(100) == b'GET / HTTP/1.1\r\n'
    assert armed == []
    client.request_done()
    gevent.spawn_later(0.05, b.sendall, b'POST / HTTP/1.1\r\n')
    assert client.recv(100) == b'POST / HTTP/1.1\r\n'  # waited, with the idle timer
    assert [args[0] for args in armed] == [5]
    a.close()
    b.close()
