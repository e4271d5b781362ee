"""The upstream call's HTTP/1.1 client: one keep-alive pool per provider origin.

Why not urllib3 here: an upstream call through urllib3 costs about 200 µs of CPU
on this machine (its connection checks, ``http.client``'s header parsing through
the ``email`` package, its response wrappers), the largest single cost of a
request through the gateway; this client does the same exchange in about 45 µs
(``bench/RESULTS.md``). It speaks only what the gateway sends and what providers
answer: a request with a ``Content-Length`` body (or none), and an answer framed by
``Content-Length``, chunked encoding or the end of the connection, over TCP or TLS
(the system's trust store, the host's name checked). It runs on whatever sockets
the process has: under the cooperative worker (gevent's patched ``socket`` and
``ssl``) every wait yields.

Connections: a pool keeps at most ``maxsize`` idle connections, never blocks for
one (a request finding none opens one), and closes those unused for `IDLE_MAX_S`
(what a burst left) when a connection next comes back. A connection goes back to
the pool only after its answer was read to the end and the upstream did not ask to
close it (a stream its reader left at its last event, before the few bytes that
close the body, is finished from what has arrived, or else just before the
connection's next use: a stream's connection serves the next one). Before a pooled
connection is used again it is checked for the upstream having closed it while
idle (one non-blocking peek); and if a pooled connection still fails before a
single byte of an answer arrives (the upstream closed it in the instant between),
the request is sent once more on a new connection: the upstream never read it.
(The peek is skipped for a connection idle under `IDLE_CHECK_S`: under load, the
resend covers the rare close at no cost per request.)

Errors: every failure is a `TransportError`; `Timeout` (also a ``TimeoutError``)
for a connect or a read that outlasted its timeout, `ConnectError` for an upstream
that could not be reached, `ProtocolError` for an answer that is not HTTP/1.x or
ends early. No error text holds a header value (the keys travel in headers).
"""

import collections
import ipaddress
import re
import select
import socket
import ssl
import time
import urllib.parse

from aegisflow import __version__
from aegisflow.netio import sender

USER_AGENT = f'aegisflow/{__version__}'
MAX_HEAD = 65536  # bytes of a status line and headers
MAX_HEADERS = 200
RECV = 65536
IDLE_CHECK_S = 1.0  # a pooled connection idle longer is checked before use
IDLE_MAX_S = 120.0  # a pooled connection idle longer is closed
TAIL_MAX = 4096  # bytes of an answer's end read for a caller done with it
_NO_BODY = frozenset((204, 304))
# a chunk's size (RFC 9112 §7.1: hex digits only; no sign, ``0x`` or ``_``, which
# int() would take), then optional whitespace and extensions
_CHUNK_SIZE = re.compile(rb'([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?\r?\Z', re.S)


class TransportError(Exception):
    """The upstream exchange failed."""


class Timeout(TransportError, TimeoutError):
    """A connect or a read outlasted its timeout."""


class ConnectError(TransportError, ConnectionError):
    """The upstream could not be reached."""


class ProtocolError(TransportError):
    """The upstream's answer is not HTTP/1.x, or it ended early."""


class Headers(dict):
    """A response's headers, by lower-case name (repeated ones joined by ", ")."""

    __slots__ = ()

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())


class _Connection:
    """A socket and what was read from it but not yet consumed."""

    __slots__ = ('sock', 'send', 'buf', 'tls', 'reused', 'idle_since', 'tail')

    def __init__(self, sock, tls):
        self.sock = sock
        self.send = sender(sock)  # NOTE: `sendall`, cheaper under gevent
        self.buf = b''
        self.tls = tls
        self.reused = False
        self.idle_since = 0.0
        self.tail = None  # the answer whose last bytes are still to be read

    def arrived(self):
        """Read what has arrived into the buffer without waiting; False when the
        upstream closed the connection or reading failed."""
        try:
            data = _at_once(self.sock, RECV)
        except OSError:
            return False
        if data is None:
            return True  # nothing yet
        self.buf += data
        return bool(data)

    def fill(self):
        """Read what has arrived into the buffer; False at the end of the stream."""
        try:
            data = self.sock.recv(RECV)
        except TimeoutError:
            raise Timeout('the upstream did not answer in time') from None
        except OSError as exc:
            raise ProtocolError(f'reading failed ({type(exc).__name__})') from None
        if not data:
            return False
        self.buf += data
        return True

    def line(self, limit):
        """One CRLF-terminated line without its terminator."""
        while True:
            end = self.buf.find(b'\n')
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 1 :]
                return line[:-1] if line.endswith(b'\r') else line
            if len(self.buf) > limit:
                raise ProtocolError('a line of the answer is too long')
            if not self.fill():
                raise ProtocolError('the upstream closed the connection mid-answer')

    def take(self, n):
        """Up to `n` bytes: the buffer's, else what one read brings (b'' at EOF)."""
        if not self.buf and not self.fill():
            return b''
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def idle_closed(self):
        """Whether the upstream closed (or wrote on) this idle connection."""
        if self.buf:
            return True
        sock = self.sock
        if self.tls:
            # NOTE: a TLS socket cannot peek; a readable idle TLS connection holds
            # a close alert or stray bytes: unusable either way
            try:
                return bool(select.select([sock], [], [], 0)[0])
            except (OSError, ValueError):
                return True
        try:
            peeked = _at_once(sock, 1, socket.MSG_PEEK)
        except OSError:
            return True
        return peeked is not None  # EOF, or bytes nobody asked for; None: open

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _at_once(sock, size, flags=0):
    """``sock.recv`` without waiting: the bytes (b'' at EOF), or None when nothing
    has arrived; other failures raise ``OSError``."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return sock.recv(size, flags)
    except (BlockingIOError, ssl.SSLWantReadError):
        return None
    finally:
        sock.settimeout(timeout)


class Response:
    """An answer: `status`, `headers`, and its body read at once (`data`, `read`)
    or as it arrives (`read1`). `release_conn` gives the connection back to its pool
    when the body was read to the end, and closes it otherwise; `close` closes it."""

    __slots__ = (
        'status',
        'reason',
        'headers',
        '_conn',
        '_pool',
        '_left',
        '_chunked',
        '_keep',
        '_done',
        '_data',
    )

    def __init__(self, pool, conn, method):
        self._pool, self._conn = pool, conn
        self._data = None
        version, self.status, self.reason = self._status_line()
        while 100 <= self.status < 200 and self.status != 101:
            self._head()  # NOTE: an interim answer (100 Continue): the next follows
            version, self.status, self.reason = self._status_line()
        self.headers = headers = self._head()
        tokens = headers.get('connection', '').lower()
        if version == 11:
            self._keep = 'close' not in tokens
        else:
            self._keep = 'keep-alive' in tokens
        coding = headers.get('transfer-encoding')
        self._chunked = False
        self._left = None  # bytes left of a Content-Length body, None: no length
        if method == 'HEAD' or self.status in _NO_BODY or self.status < 200:
            self._done = True
            return
        self._done = False
        if coding is not None:
            # NOTE: RFC 9112 §6.3: chunked only as the last coding, else the body
            # ends with the connection; with a Content-Length beside it the
            # answer is read as chunked and the connection not used again
            self._chunked = coding.rsplit(',', 1)[-1].strip().lower() == 'chunked'
            if not self._chunked or 'content-length' in headers:
                self._keep = False
        else:
            length = headers.get('content-length')
            if length is not None:
                # NOTE: digits only (int() takes a sign and underscores); a list
                # (repeated headers) only of one value (RFC 9110 §8.6)
                values = {v.strip() for v in length.split(',')}
                value = values.pop()
                if values or not (value.isascii() and value.isdigit()):
                    raise ProtocolError('the answer has an invalid Content-Length')
                self._left = int(value)
                self._done = self._left == 0
            else:
                self._keep = False  # NOTE: the body ends with the connection

    def _status_line(self):
        line = self._conn.line(MAX_HEAD)
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b'HTTP/1.'):
            raise ProtocolError('the upstream did not answer in HTTP/1.x')
        try:
            status = int(parts[1])
        except ValueError:
            raise ProtocolError('the answer has an invalid status') from None
        if not 100 <= status <= 999:
            raise ProtocolError('the answer has an invalid status')
        reason = parts[2].decode('latin-1') if len(parts) > 2 else ''
        return (11 if parts[0] == b'HTTP/1.1' else 10), status, reason

    def _head(self):
        headers = Headers()
        size = 0
        while True:
            line = self._conn.line(MAX_HEAD)
            if not line:
                return headers
            size += len(line)
            if size > MAX_HEAD or len(headers) >= MAX_HEADERS:
                raise ProtocolError("the answer's headers are too large")
            name, sep, value = line.partition(b':')
            if not sep:
                continue  # NOTE: not a header (obsolete folding or noise): skipped
            name = name.strip().lower().decode('latin-1')
            value = value.strip().decode('latin-1')
            old = dict.get(headers, name)
            dict.__setitem__(headers, name, value if old is None else f'{old}, {value}')

    # -- the body ------------------------------------------------------------------

    @property
    def data(self):
        """The whole body (read once, then the connection released)."""
        if self._data is None:
            self._data = self.read()
            self.release_conn()
        return self._data

    def read(self):
        """The rest of the body."""
        parts = []
        while True:
            piece = self.read1(RECV)
            if not piece:
                return b''.join(parts)
            parts.append(piece)

    def read1(self, n=RECV):
        """Some of the body, as soon as any has arrived; b'' at its end."""
        if self._done:
            return b''
        conn = self._conn
        if self._chunked:
            if not self._left:
                self._left = self._chunk_size()
                if self._left == 0:
                    self._end_chunks()
                    return b''
            data = conn.take(min(n, self._left))
            if not data:
                raise ProtocolError('the upstream closed the connection mid-chunk')
            self._left -= len(data)
            if not self._left:
                if conn.line(64):
                    raise ProtocolError('a chunk of the answer is not followed by CRLF')
            return data
        if self._left is None:  # until the connection closes
            data = conn.take(n)
            if not data:
                self._done = True
            return data
        data = conn.take(min(n, self._left))
        if not data:
            raise ProtocolError(
                f'the upstream closed the connection {self._left} bytes short'
            )
        self._left -= len(data)
        self._done = not self._left
        return data

    def _chunk_size(self):
        m = _CHUNK_SIZE.match(self._conn.line(1024))
        if m is None:
            raise ProtocolError('the answer has an invalid chunk size')
        return int(m.group(1), 16)

    def _end_chunks(self):
        while self._conn.line(MAX_HEAD):
            pass  # NOTE: trailers, not used
        self._left = 0
        self._done = True

    def release_conn(self):
        """Give the connection back to the pool. An answer whose end has not been
        read (a stream left at its last event: the bytes that close its body are
        still on the way) is finished from what has arrived, or, if they have not
        arrived yet, goes back with them to be read before the connection is used
        again; anything more than `TAIL_MAX` bytes left, or malformed, closes it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._keep:
            conn.close()
            return
        ended = self._done or self.finish(conn)
        if ended is False:
            conn.close()
            return
        conn.tail = None if ended else self  # NOTE: no cycle: self no longer holds it
        self._pool._put(conn)

    def finish(self, conn):
        """Read the rest of this answer's body from `conn` without waiting: True
        when it ended cleanly, None when its end is still to come, False when the
        connection cannot be used again."""
        end = self._end(conn.buf)
        if end is None and len(conn.buf) < TAIL_MAX:
            if not conn.arrived():
                return False
            end = self._end(conn.buf)
        if end is None:
            return None if len(conn.buf) < TAIL_MAX else False
        if end is False or len(conn.buf) != end:
            return False  # NOTE: malformed, or bytes nobody asked for follow it
        conn.buf = b''
        return True

    def _end(self, buf):
        """Where this answer's body ends in `buf` (its unread rest): the index past
        its end, None if it ends later, False if the rest is malformed or longer
        than `TAIL_MAX`."""
        if not self._chunked:
            if self._left > TAIL_MAX:
                return False
            return self._left if len(buf) >= self._left else None
        pos = 0
        if self._left:  # NOTE: inside a chunk, its CRLF still to come
            pos = self._left + 2
            if len(buf) < pos:
                return None
            if buf[pos - 2 : pos] != b'\r\n':
                return False
        return _chunks_end(buf, pos)

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _chunks_end(buf, pos):
    """Where chunked data whose next chunk starts at `pos` ends in `buf` (its last
    chunk and trailers included), as `Response._end` tells it."""
    while True:
        eol = buf.find(b'\n', pos)
        if eol < 0:
            return None
        m = _CHUNK_SIZE.match(buf, pos, eol)
        if m is None:
            return False
        size = int(m.group(1), 16)
        if size > TAIL_MAX:
            return False
        pos = eol + 1
        if not size:
            break
        pos += size + 2
        if len(buf) < pos:
            return None
        if buf[pos - 2 : pos] != b'\r\n':
            return False
    while True:  # NOTE: trailers, up to an empty line
        eol = buf.find(b'\n', pos)
        if eol < 0:
            return None
        line, pos = buf[pos:eol], eol + 1
        if line in (b'', b'\r'):
            return pos


class Pool:
    """Keep-alive connections to one origin (``http://host:port`` or https)."""

    __slots__ = (
        'host',
        'port',
        'tls',
        'maxsize',
        'connect_timeout',
        'read_timeout',
        '_idle',
        '_host_header',
        '_context',
        '_closed',
        '_family',
    )

    def __init__(self, base_url, *, maxsize, connect_timeout, read_timeout):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ('http', 'https') or not url.hostname:
            raise ValueError(f'not an http(s) URL: {base_url!r}')
        self.tls = url.scheme == 'https'
        self.host = url.hostname
        default = 443 if self.tls else 80
        self.port = url.port or default
        name = f'[{self.host}]' if ':' in self.host else self.host
        self._host_header = name if self.port == default else f'{name}:{self.port}'
        try:  # PERF: an address needs no resolver (gevent's runs in a thread)
            version = ipaddress.ip_address(self.host).version
            self._family = socket.AF_INET6 if version == 6 else socket.AF_INET
        except ValueError:
            self._family = None
        self.maxsize = max(1, maxsize)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle = collections.deque()  # the oldest first
        self._context = None
        self._closed = False

    def request(self, method, path, *, body=None, headers=None, preload=True):
        """Send a request; its `Response` (the body read and the connection
        released already when `preload`)."""
        head = self._head(method, path, body, headers or {})
        conn = self._get()
        # NOTE: whatever ends the call (an error, or a kill: a greenlet killed by a
        # guardrail's block, a worker stopping) closes its connection at once, so
        # the upstream stops making what nobody will read
        try:
            resp = self._exchange(conn, method, head, body)
        except BaseException:
            conn.close()
            raise
        if preload:
            try:
                resp.data  # noqa: B018 (reads the body, releases the connection)
            except BaseException:
                resp.close()
                raise
        return resp

    def _exchange(self, conn, method, head, body):
        try:
            if body is not None and len(body) <= RECV:
                conn.send(head + body)
            else:
                conn.send(head)
                if body:
                    conn.send(body)
        except TimeoutError:
            raise Timeout('the upstream did not take the request in time') from None
        except OSError as exc:
            if conn.reused:
                return self._again(conn, method, head, body)
            raise ProtocolError(f'sending failed ({type(exc).__name__})') from None
        # NOTE: the upstream needs a moment anyway: the other requests of a
        # cooperative worker run first (gevent's patched sleep; a thread merely
        # lets go of the interpreter). Without it a greenlet whose socket calls
        # never wait keeps the loop: at 64 connections p99 was 176 ms, with it
        # 73 ms, at the same throughput and CPU (bench/RESULTS.md)
        time.sleep(0)
        try:
            answered = bool(conn.buf) or conn.fill()
        except Timeout:
            raise  # NOTE: the upstream has the request: never sent twice
        except ProtocolError:
            answered = False  # reset before a byte of an answer
        if not answered:
            if conn.reused:
                return self._again(conn, method, head, body)
            raise ProtocolError('the upstream closed the connection without answering')
        return Response(self, conn, method)  # NOTE: on error, the caller closes conn

    def _again(self, conn, method, head, body):
        # NOTE: a pooled connection the upstream closed in the instant before this
        # request, which it therefore never read: sent once more, on a new one
        conn.close()
        fresh = self._connect()
        try:
            return self._exchange(fresh, method, head, body)
        except BaseException:
            fresh.close()
            raise

    def _head(self, method, path, body, headers):
        lines = [f'{method} {path} HTTP/1.1', f'Host: {self._host_header}']
        agent = False
        for name, value in headers.items():
            value = str(value)
            if '\n' in value or '\r' in value or '\n' in name or '\r' in name:
                raise ProtocolError(f'header {name!r} holds a line break')
            agent = agent or name.lower() == 'user-agent'
            lines.append(f'{name}: {value}')
        if not agent:
            lines.append(f'User-Agent: {USER_AGENT}')
        if body is not None:
            lines.append(f'Content-Length: {len(body)}')
        lines.append('\r\n')
        try:
            return '\r\n'.join(lines).encode('latin-1')
        except UnicodeEncodeError:
            raise ProtocolError('a header holds characters HTTP cannot carry') from None

    def _get(self):
        idle = self._idle
        while idle:
            try:
                conn = idle.pop()
            except IndexError:  # NOTE: another thread took the last one
                break
            # PERF: a connection idle for under a second is not checked (a system
            # call per request under load); if the upstream did close it, the
            # request fails before any answer and is sent once more anyway
            tail, conn.tail = conn.tail, None
            if tail is not None and not tail.finish(conn):
                conn.close()  # NOTE: its last answer's end never came, or was broken
                continue
            if time.monotonic() - conn.idle_since > IDLE_CHECK_S and conn.idle_closed():
                conn.close()
                continue
            conn.reused = True
            return conn
        return self._connect()

    def _connect(self):
        try:
            if self._family is None:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=self.connect_timeout
                )
            else:
                sock = socket.socket(self._family, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.connect_timeout)
                    sock.connect((self.host, self.port))
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise Timeout(f'connecting took over {self.connect_timeout} s') from None
        except OSError as exc:
            raise ConnectError(f'connecting failed ({type(exc).__name__})') from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                sock = self._tls().wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)
        except TimeoutError:
            sock.close()
            raise Timeout('the TLS handshake did not finish in time') from None
        except OSError as exc:
            sock.close()
            raise ConnectError(f'TLS failed ({type(exc).__name__})') from None
        return _Connection(sock, self.tls)

    def _tls(self):
        # NOTE: made at the first TLS connection, after the worker's sockets are
        # what they will be (the cooperative worker patches ssl before this)
        if self._context is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(['http/1.1'])
            self._context = context
        return self._context

    def _put(self, conn):
        if self._closed or len(self._idle) >= self.maxsize:
            conn.close()
        else:
            conn.reused = False
            conn.idle_since = now = time.monotonic()
            idle = self._idle
            idle.append(conn)
            # NOTE: after a burst, what it left idle at the bottom of the pool
            # (taken from the top) is closed once unused for `IDLE_MAX_S`: not
            # held open for the next burst, nor left half-closed by the upstream
            try:
                while now - idle[0].idle_since > IDLE_MAX_S:
                    idle.popleft().close()
            except IndexError:
                pass  # NOTE: another thread took the last one

    def close(self):
        self._closed = True
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:
                break
