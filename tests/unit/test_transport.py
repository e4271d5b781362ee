"""The upstream HTTP client against real sockets: framing (length, chunks, the end
of the connection), keep-alive and its limits, a pooled connection the upstream
closed, timeouts never resent, broken answers, and TLS with the host's name
checked."""

import shutil
import socket
import ssl
import threading

import pytest

from aegisflow.providers import transport
from aegisflow.providers.transport import ConnectError
from aegisflow.providers.transport import Pool
from aegisflow.providers.transport import ProtocolError
from aegisflow.providers.transport import Timeout
from tests.support.tls import self_signed

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'


class Upstream:
    """A loopback server that runs `script(conn, request)` for each request it
    reads; it records the requests (head and body) and counts connections."""

    def __init__(self, script, tls=None):
        self.script = script
        self.requests = []
        self.connections = 0
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.tls = tls
        self._stop = False
        self.hung_up = threading.Event()  # a connection's peer closed it
        self._threads = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            buf = b''
            while True:
                while b'\r\n\r\n' not in buf:
                    data = conn.recv(65536)
                    if not data:
                        self.hung_up.set()
                        return
                    buf += data
                head, _, buf = buf.partition(b'\r\n\r\n')
                length = 0
                for line in head.split(b'\r\n')[1:]:
                    name, _, value = line.partition(b':')
                    if name.strip().lower() == b'content-length':
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                body, buf = buf[:length], buf[length:]
                self.requests.append((head.decode('latin-1'), body))
                if self.script(conn, len(self.requests)) == 'close':
                    conn.close()
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def pool(self, *, read_timeout=5.0, maxsize=4, scheme='http'):
        return Pool(
            f'{scheme}://127.0.0.1:{self.port}/v1',
            maxsize=maxsize,
            connect_timeout=5.0,
            read_timeout=read_timeout,
        )

    def close(self):
        self._stop = True
        self.listener.close()


@pytest.fixture
def upstream():
    servers = []

    def start(script, **kwargs):
        server = Upstream(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _ok(conn, n):
    conn.sendall(OK)


def test_a_json_answer_and_the_connection_kept_for_the_next(upstream):
    up = upstream(_ok)
    pool = up.pool()
    for _ in range(3):
        resp = pool.request('POST', '/v1/chat', body=b'{"a":1}', headers={'X-K': 'v'})
        assert (resp.status, resp.data) == (200, b'{}')
        assert resp.headers['content-type'] == resp.headers.get('Content-Type')
    assert up.connections == 1
    head, body = up.requests[0]
    assert head.startswith('POST /v1/chat HTTP/1.1\r\n')
    assert f'Host: 127.0.0.1:{up.port}' in head and 'X-K: v' in head
    assert 'Content-Length: 7' in head and 'User-Agent: aegisflow/' in head
    assert body == b'{"a":1}'


def test_chunks_are_handed_on_as_they_arrive(upstream):
    second = threading.Event()

    def chunked(conn, n):
        conn.sendall(
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
            b'6;ext=1\r\ndata:1\r\n'
        )
        second.wait(10)  # NOTE: the client must have had the first chunk by now
        conn.sendall(b'6\r\ndata:2\r\n0\r\nX-Trailer: t\r\n\r\n')

    up = upstream(chunked)
    pool = up.pool()
    resp = pool.request('POST', '/v1/s', body=b'{}', preload=False)
    assert resp.read1() == b'data:1'  # NOTE: would hang if it waited for more
    second.set()
    assert resp.read1() == b'data:2'
    assert resp.read1() == b''
    resp.release_conn()
    assert pool.request('POST', '/v1/s2', body=b'{}', preload=False).status == 200
    assert up.connections == 1  # read to its end: the connection was reused


@pytest.mark.parametrize(
    ('answer', 'data', 'connections'),
    [
        # a body that ends with the connection: read whole, never reused
        (b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it', b'all of it', 2),
        # one length, repeated: taken, and the connection kept
        (b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}', b'{}', 1),
        # chunked beside a length: read chunked, the connection not kept (RFC 9112 §6.1)
        (b'HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'2\r\n{}\r\n0\r\n\r\n', b'{}', 2),
    ],
    ids=['until-close', 'one-length-twice', 'chunked-and-length'],
)  # fmt: skip
def test_how_an_answer_is_framed_decides_whether_its_connection_is_kept(
    upstream, answer, data, connections
):
    def script(conn, n):
        conn.sendall(answer)
        return 'close' if b'Content-Length' not in answer else None

    up = upstream(script)
    pool = up.pool()
    assert pool.request('POST', '/v1/x', body=b'').data == data
    assert pool.request('POST', '/v1/x', body=b'').data == data
    assert up.connections == connections


def test_connection_close_is_honoured(upstream):
    def closing(conn, n):
        conn.sendall(
            b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx'
        )
        return 'close'

    up = upstream(closing)
    pool = up.pool()
    assert [pool.request('GET', '/v1/m').data for _ in range(2)] == [b'x', b'x']
    assert up.connections == 2


def test_an_interim_100_continue_is_skipped(upstream):
    def interim(conn, n):
        conn.sendall(b'HTTP/1.1 100 Continue\r\n\r\n' + OK)

    up = upstream(interim)
    resp = up.pool().request('POST', '/v1/x', body=b'{}')
    assert (resp.status, resp.data) == (200, b'{}')


def test_a_pooled_connection_closed_while_idle_is_replaced_unseen(upstream):
    def once(conn, n):
        conn.sendall(OK)
        return 'close'  # NOTE: keep-alive announced, then closed while idle

    up = upstream(once)
    pool = up.pool()
    assert pool.request('POST', '/v1/x', body=b'1').data == b'{}'
    deadline = threading.Event()
    for _ in range(100):  # NOTE: until the server's close has reached this side
        if pool._idle and pool._idle[0].idle_closed():
            break
        deadline.wait(0.01)
    assert pool.request('POST', '/v1/x', body=b'2').data == b'{}'
    assert [body for _, body in up.requests] == [b'1', b'2']
    assert up.connections == 2


class _Spy:
    """A socket that records what is sent on it."""

    def __init__(self, sock):
        self.sock, self.sent = sock, []

    def sendall(self, data):
        self.sent.append(data)
        return self.sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_a_connection_idle_past_the_check_is_peeked_and_never_written(
    upstream, monkeypatch
):
    monkeypatch.setattr(transport, 'IDLE_CHECK_S', 0.0)

    def once(conn, n):
        conn.sendall(OK)
        return 'close'

    up = upstream(once)
    pool = up.pool()
    assert pool.request('POST', '/v1/x', body=b'1').data == b'{}'
    stale = pool._idle[0]
    stale.sock = spy = _Spy(stale.sock)
    pause = threading.Event()
    for _ in range(100):  # NOTE: until the server's close has reached this side
        if stale.idle_closed():
            break
        pause.wait(0.01)
    assert pool.request('POST', '/v1/x', body=b'2').data == b'{}'
    assert spy.sent == []  # dropped at the check, not found out by a failed send
    assert pool._idle and pool._idle[0] is not stale


def test_a_connection_used_a_moment_ago_is_not_peeked(upstream, monkeypatch):
    def never(self):
        raise AssertionError('peeked')

    monkeypatch.setattr(transport._Connection, 'idle_closed', never)
    up = upstream(_ok)
    pool = up.pool()
    for _ in range(3):
        assert pool.request('POST', '/v1/x', body=b'').data == b'{}'
    assert up.connections == 1


def test_a_pooled_connection_dropped_before_any_answer_is_sent_once_more(upstream):
    def drop_second(conn, n):
        if n == 2:
            return 'close'  # NOTE: as if it closed the idle connection just then
        conn.sendall(OK)

    up = upstream(drop_second)
    pool = up.pool()
    assert pool.request('POST', '/v1/x', body=b'a').data == b'{}'
    assert pool.request('POST', '/v1/x', body=b'b').data == b'{}'
    assert [body for _, body in up.requests] == [b'a', b'b', b'b']
    assert up.connections == 2


def test_a_new_connection_dropped_before_any_answer_is_an_error_not_a_resend(
    upstream,
):
    up = upstream(lambda conn, n: 'close')
    with pytest.raises(ProtocolError, match='without answering'):
        up.pool().request('POST', '/v1/x', body=b'once')
    assert len(up.requests) == 1


def test_a_read_timeout_is_never_resent_even_on_a_pooled_connection(upstream):
    release = threading.Event()

    def stall_second(conn, n):
        if n == 2:
            release.wait(10)
        conn.sendall(OK)

    up = upstream(stall_second)
    pool = up.pool(read_timeout=0.3)
    assert pool.request('POST', '/v1/x', body=b'a').data == b'{}'
    with pytest.raises(Timeout) as caught:
        pool.request('POST', '/v1/x', body=b'b')
    release.set()
    assert isinstance(caught.value, TimeoutError)
    assert [body for _, body in up.requests] == [b'a', b'b']


@pytest.mark.parametrize(
    ('answer', 'match'),
    [
        (b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', '5 bytes short'),
        (b'SSH-2.0-OpenSSH_9.6\r\n\r\n', 'HTTP/1.x'),
        (b'HTTP/1.1 abc OK\r\n\r\n', 'invalid status'),
        (b'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n', 'Content-Length'),
        (b'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}', 'Content-Length'),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n', 'Content-Length'),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}', 'Content-Length'),
        (
            b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
            'Content-Length',
        ),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'chunk size'),
        # NOTE: sizes int(x, 16) would take, which RFC 9112 does not allow
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n', 'chunk size'),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n', 'chunk size'),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n', 'chunk size'),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'mid-chunk'),
        (b'HTTP/1.1 200 OK\r\nX: ' + b'a' * 70000, 'too long'),
    ],
)
def test_a_broken_answer_is_a_protocol_error(upstream, answer, match):
    def broken(conn, n):
        conn.sendall(answer)
        return 'close'

    with pytest.raises(ProtocolError, match=match):
        upstream(broken).pool().request('POST', '/v1/x', body=b'{}')


def test_a_last_coding_other_than_chunked_ends_with_the_connection(upstream):
    def until_close(conn, n):
        conn.sendall(
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, x-raw\r\n\r\n'
            b'2\r\n{}\r\n0\r\n\r\n'
        )
        return 'close'

    up = upstream(until_close)
    pool = up.pool()
    assert pool.request('POST', '/v1/x', body=b'').data == b'2\r\n{}\r\n0\r\n\r\n'
    assert not pool._idle


def test_an_unreachable_upstream_is_a_connect_error():
    with socket.create_server(('127.0.0.1', 0)) as s:
        port = s.getsockname()[1]
    pool = Pool(
        f'http://127.0.0.1:{port}', maxsize=1, connect_timeout=2, read_timeout=2
    )
    with pytest.raises(ConnectError) as caught:
        pool.request('GET', '/')
    assert 'ConnectionRefusedError' in str(caught.value)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(upstream):
    up = upstream(_ok)
    with pytest.raises(ProtocolError, match='line break') as caught:
        up.pool().request('POST', '/v1/x', body=b'', headers={'X-A': 'v\r\nX-B: w'})
    assert 'v\r\n' not in str(caught.value)  # NOTE: a value is never echoed
    assert up.connections == 0


def _burst(pool, n):
    """`n` requests at once, then each answer read and its connection released."""
    answers = [pool.request('POST', '/v1/x', body=b'', preload=False) for _ in range(n)]
    for resp in answers:
        assert resp.read() == b'{}'
        resp.release_conn()


def test_idle_connections_are_bounded_by_maxsize(upstream):
    up = upstream(_ok)
    pool = up.pool(maxsize=2)
    _burst(pool, 4)
    assert len(pool._idle) == 2 and up.connections == 4
    pool.close()
    assert not pool._idle


def test_an_unfinished_answer_is_not_pooled(upstream):
    def big(conn, n):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + b'x' * 10)

    up = upstream(big)
    pool = up.pool()
    resp = pool.request('POST', '/v1/x', body=b'', preload=False)
    assert resp.read1()
    resp.release_conn()
    assert not pool._idle


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    if not shutil.which('openssl'):
        pytest.fail('openssl is needed (make test installs it)')
    key, cert = self_signed(tmp_path_factory.mktemp('tls'))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, cert


def test_tls_checks_the_certificate_and_speaks_once_trusted(upstream, certificate):
    server, cert = certificate
    up = upstream(_ok, tls=server)
    pool = up.pool(scheme='https')
    with pytest.raises(ConnectError, match='SSLCertVerificationError'):
        pool.request('POST', '/v1/x', body=b'{}')  # NOTE: self-signed: not trusted
    trusting = ssl.create_default_context(cafile=str(cert))
    pool._context = trusting
    for _ in range(2):
        assert pool.request('POST', '/v1/x', body=b'{}').data == b'{}'
    assert up.connections == 2  # the refused handshake, then one kept connection


def test_a_host_name_is_resolved_and_named_in_the_host_header(upstream):
    up = upstream(_ok)
    pool = Pool(
        f'http://localhost:{up.port}/v1', maxsize=1, connect_timeout=5, read_timeout=5
    )
    assert pool._family is None  # NOTE: resolved per connection, not an address
    assert pool.request('POST', '/v1/x', body=b'').data == b'{}'
    assert f'Host: localhost:{up.port}\r\n' in up.requests[0][0] + '\r\n'


class _Killed(BaseException):
    """What a killed greenlet or a stopping worker raises inside a call."""


@pytest.mark.parametrize('where', ['waiting', 'reading'])
def test_a_call_ended_by_a_kill_closes_its_connection_at_once(
    upstream, monkeypatch, where
):
    def half(conn, n):
        # NOTE: waits for the client to close (or 10 s); a close that finds an
        # answer arriving is seen here as a reset rather than an end of stream
        try:
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab')
            closed = conn.recv(1) == b''
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        if closed:
            up.hung_up.set()
        return 'close'

    up = upstream(half)
    pool = up.pool()
    if where == 'waiting':

        def sleep(_):
            raise _Killed

        monkeypatch.setattr(transport, 'time', type('T', (), {'sleep': sleep}))
        with pytest.raises(_Killed):
            pool.request('POST', '/v1/x', body=b'{}')
    else:
        resp = pool.request('POST', '/v1/x', body=b'{}', preload=False)

        def fill(self):
            raise _Killed

        monkeypatch.setattr(transport._Connection, 'fill', fill)
        with pytest.raises(_Killed):
            resp.read(), resp.data  # noqa: B018
        resp.close()  # NOTE: what a reader's finally does (HttpProvider.lines)
    assert up.hung_up.wait(5)  # the upstream saw the connection close
    assert not pool._idle


# -- a stream left at its last event: the connection serves the next request -------

SSE_HEAD = b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n'
SSE_HEAD += b'Transfer-Encoding: chunked\r\n\r\n'
LAST = b'data: [DONE]\n\n'
LAST_CHUNK = b'%x\r\n%s\r\n' % (len(LAST), LAST)


def _read_to_last_event(resp):
    """What a stream's reader does: read until the last event, then release."""
    seen = b''
    while LAST not in seen:
        piece = resp.read1()
        assert piece, 'the stream ended before its last event'
        seen += piece
    resp.release_conn()


def test_a_stream_left_at_its_last_event_is_finished_and_its_connection_reused(
    upstream,
):
    def stream(conn, n):
        conn.sendall(SSE_HEAD + LAST_CHUNK + b'0\r\nX-T: 1\r\n\r\n')

    up = upstream(stream)
    pool = up.pool()
    for _ in range(3):
        _read_to_last_event(pool.request('POST', '/v1/s', body=b'{}', preload=False))
        assert len(pool._idle) == 1 and pool._idle[0].tail is None
    assert up.connections == 1


def test_a_stream_whose_end_comes_after_the_release_is_finished_at_the_next_use(
    upstream,
):
    released, sent = threading.Event(), threading.Event()

    def stream(conn, n):
        if n == 1:
            conn.sendall(SSE_HEAD + LAST_CHUNK)
            released.wait(10)
            conn.sendall(b'0\r\n\r\n')  # NOTE: on loopback, in the peer's buffer now
            sent.set()
        else:
            conn.sendall(OK)

    up = upstream(stream)
    pool = up.pool()
    _read_to_last_event(pool.request('POST', '/v1/s', body=b'{}', preload=False))
    parked = pool._idle[0]
    assert parked.tail is not None  # NOTE: its end had not come: kept, to be read
    released.set()
    assert sent.wait(10)
    assert pool.request('POST', '/v1/x', body=b'').data == b'{}'
    assert up.connections == 1 and parked.tail is None
    assert up.requests[1][0].startswith('POST /v1/x ')


def test_a_stream_whose_end_never_comes_is_closed_at_the_next_use(upstream):
    def stream(conn, n):
        if n == 1:
            conn.sendall(SSE_HEAD + LAST_CHUNK)  # NOTE: and nothing more
        else:
            conn.sendall(OK)

    up = upstream(stream)
    pool = up.pool()
    _read_to_last_event(pool.request('POST', '/v1/s', body=b'{}', preload=False))
    assert pool._idle[0].tail is not None
    assert pool.request('POST', '/v1/x', body=b'').data == b'{}'
    assert up.connections == 2  # NOTE: the request went on a new connection
    assert up.hung_up.wait(10)  # and the one left waiting was closed
    assert [head.split(' ')[1] for head, _ in up.requests] == ['/v1/s', '/v1/x']


@pytest.mark.parametrize(
    'rest',
    [
        b'0\r\n\r\nHTTP/1.1 200 OK\r\n',  # bytes nobody asked for after the end
        b'zz\r\n\r\n',  # a chunk size that is not hex
        b'5\r\nabcdeXX0\r\n\r\n',  # a chunk not followed by CRLF
        b'0x0\r\n\r\n',  # a size int(x, 16) would take
        b'%x\r\n%s\r\n0\r\n\r\n'
        % (transport.TAIL_MAX + 1, b'x' * (transport.TAIL_MAX + 1)),
    ],
    ids=['trailing-bytes', 'bad-size', 'no-crlf', 'hex-prefix', 'too-long'],
)
def test_a_stream_whose_rest_is_not_a_clean_end_is_not_pooled(upstream, rest):
    def stream(conn, n):
        conn.sendall(SSE_HEAD + LAST_CHUNK + rest)

    up = upstream(stream)
    pool = up.pool()
    resp = pool.request('POST', '/v1/s', body=b'{}', preload=False)
    assert resp.read1() == LAST
    resp.release_conn()
    assert not pool._idle


def test_a_stream_left_inside_a_chunk_is_finished_from_where_it_was(upstream):
    def stream(conn, n):
        conn.sendall(SSE_HEAD + LAST_CHUNK + b'0\r\n\r\n')

    up = upstream(stream)
    pool = up.pool()
    resp = pool.request('POST', '/v1/s', body=b'{}', preload=False)
    assert resp.read1(4) == LAST[:4]  # NOTE: left with the chunk's rest unread
    resp.release_conn()
    assert len(pool._idle) == 1 and pool._idle[0].tail is None


def test_an_answer_that_asked_to_close_is_closed_even_at_its_last_event(upstream):
    def stream(conn, n):
        conn.sendall(
            SSE_HEAD.replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n')
            + LAST_CHUNK
            + b'0\r\n\r\n'
        )
        return 'close'

    up = upstream(stream)
    pool = up.pool()
    _read_to_last_event(pool.request('POST', '/v1/s', body=b'{}', preload=False))
    assert not pool._idle


def test_connections_left_idle_after_a_burst_are_closed_in_time(upstream):
    up = upstream(_ok)
    pool = up.pool(maxsize=8)
    _burst(pool, 3)
    assert len(pool._idle) == 3 and up.connections == 3
    oldest, newest = pool._idle[0], pool._idle[-1]
    for conn in list(pool._idle)[:2]:
        conn.idle_since -= transport.IDLE_MAX_S + 1  # NOTE: as if long unused
    assert pool.request('POST', '/v1/x', body=b'').data == b'{}'  # takes the newest
    assert list(pool._idle) == [newest]  # the two left unused were closed
    assert up.hung_up.wait(10)
    assert oldest.sock.fileno() == -1
