"""Gunicorn's gevent worker (greenlets: every socket wait yields to the other
requests of the process) with what the gthread worker has.

- Cooperation: Gunicorn's worker monkey-patches the standard library when the
  worker starts, before the app is loaded, so sockets (urllib3, redis-py), DNS,
  sleeps and ``threading.local`` objects made from then on are cooperative; the
  master is never patched. Waits for a contended shared-memory lock poll with
  sleeps that yield (`shm.locks.cooperative`), and the WASM epoch ticker is an
  OS thread (`aegisflow.policy.wasm`).
- ``server.worker_connections`` bounds the connections a worker serves at once
  (its greenlet pool).
- Slow senders: a request's head must arrive within ``server.header_timeout_s``
  of its first byte (else 408 in the JSON envelope and the connection is closed);
  a connection waits at most ``server.keepalive_s`` for a request's first byte;
  a body is read through a `Pacer` (`aegisflow.web.body`), as under gthread.
- Closes: a connection closed with request bytes unread lingers in its own
  greenlet, reading and discarding until its peer closes or `LINGER_S` (RFC 9112
  §9.6), so the client gets the response rather than a reset; a request whose
  body the app left unread closes its connection after the response (which says
  so) instead of waiting for the rest of the body.
- Graceful TERM and HUP: the worker stops accepting within a tenth of a second
  and gives the requests in flight ``server.graceful_timeout_s``.
"""

import re
import socket
import sys
import time
import warnings
from functools import partial

import gevent
from gevent.monkey import MonkeyPatchWarning
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.http.body import EOFReader
from gunicorn.http.body import LengthReader
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from aegisflow.netio import receiver
from aegisflow.netio import sender
from shm import locks
from workers import state
from workers.http_errors import response
from workers.linger import LINGER_S
from workers.linger import MAX_DRAIN

_TIMEOUT = response(
    408,
    'Request Timeout',
    'request_timeout',
    'The request line and headers did not arrive in time.',
)


_TICK_S = 0.1


class HeadTimeout(Exception):
    """A request's line and headers did not arrive in time."""


class ClientSocket:
    """A client connection as Gunicorn's parser reads it: the wait for a request's
    first byte is bounded by `idle_s` (past it the connection ends quietly), and
    from that byte the head must be whole within `head_s`."""

    __slots__ = (
        'sock',
        'sendall',
        'ready',
        'idle_s',
        'head_s',
        'deadline',
        'waiting',
        'pacer',
        'eof',
    )

    def __init__(self, sock, idle_s, head_s):
        self.sock = sock
        self.sendall = sender(sock)  # NOTE: Gunicorn writes responses through it
        self.ready = receiver(sock) or _nothing_ready
        self.idle_s = idle_s
        self.head_s = head_s
        self.deadline = None  # of the head being read
        self.waiting = True  # for the first byte of a request
        self.pacer = None
        self.eof = False  # the peer closed its side, and all it sent was read

    def recv(self, size):
        if self.waiting:
            data = self.ready(size)  # PERF: a request already there needs no timer
            if data is None:
                # NOTE: a new timer per wait: a gevent Timeout cancelled and started
                # again keeps its first deadline (then fires at once)
                with gevent.Timeout(self.idle_s, False):
                    data = self.sock.recv(size)
                if data is None:
                    return b''  # NOTE: idle too long; the peer may yet send (linger)
            if data:
                self.waiting = False
                self.deadline = time.monotonic() + self.head_s
            else:
                self.eof = True
            return data
        if self.deadline is None:
            return self.sock.recv(size)  # NOTE: a body: the app's read bounds it
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HeadTimeout()
        with gevent.Timeout(left, HeadTimeout):
            return self.sock.recv(size)

    def head_read(self):
        self.deadline = None

    def request_done(self):
        self.waiting = True

    def close(self):
        """Close without resetting a peer whose request bytes were not read: send
        FIN, then read and discard until the peer closes, `MAX_DRAIN` bytes, or
        `LINGER_S` (here, in the connection's own greenlet: the server closes
        the socket when its handler returns). A peer that closed between
        requests has nothing left to send: its socket is closed at once."""
        sock = self.sock
        if self.eof:
            sock.close()
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        _linger(sock)

    # PERF: what Gunicorn calls for every request, without `__getattr__`'s failed
    # lookup first
    def gettimeout(self):
        return self.sock.gettimeout()

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _nothing_ready(_size):
    return None


def _linger(sock):
    drained = 0
    try:
        with gevent.Timeout(LINGER_S, False):
            while drained < MAX_DRAIN:
                data = sock.recv(4096)
                if not data:
                    break
                drained += len(data)
    except OSError:
        pass
    finally:
        sock.close()


class GeventWorker(_GeventWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_s = self.head_s = 10.0
        self.body_rate = None

    def init_process(self):
        config = state.current
        if config is not None:
            server = config.server
            self.head_s = server.header_timeout_s
            self.idle_s = server.keepalive_s or server.header_timeout_s
            self.body_rate = server.body_min_bytes_per_s or None
        # ORDER: Gunicorn's init_process patches, then loads the app and runs
        super().init_process()

    def patch(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', MonkeyPatchWarning)
            super().patch()
        rebind_ssl_names()
        for warning in caught:
            _report(self.log, warning)
        locks.cooperative(time.sleep)  # NOTE: time.sleep now yields

    def run(self):
        """Serve until told to stop; then stop accepting at once, and give the
        requests in flight ``graceful_timeout`` to finish."""
        servers = []
        for listener in self.sockets:
            listener.setblocking(1)
            server = StreamServer(
                listener,
                handle=partial(self.handle, listener),
                spawn=Pool(self.worker_connections),
            )
            if self.cfg.workers > 1:
                server.max_accept = 1  # NOTE: leave new connections to idle workers
            server.start()
            servers.append(server)
        # NOTE: the loop looks at `alive` ten times a second: after a HUP or TERM
        # no new request reaches this worker's old configuration
        while self.alive:
            self.notify()
            gevent.sleep(_TICK_S)
        for server in servers:
            server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline and any(
            server.pool.free_count() != server.pool.size for server in servers
        ):
            self.notify()
            gevent.sleep(_TICK_S)
        busy = sum(server.pool.size - server.pool.free_count() for server in servers)
        if busy:
            self.log.warning(
                'graceful timeout: %d connections still open are closed', busy
            )
            for server in servers:
                server.stop(timeout=1)

    def timeout_ctx(self):
        # NOTE: ClientSocket bounds the wait for a request and the head's arrival
        return _NO_TIMEOUT

    def handle(self, listener, client, addr):
        super().handle(listener, ClientSocket(client, self.idle_s, self.head_s), addr)

    def handle_request(self, listener_name, req, sock, addr):
        # NOTE: imported here, after the worker patched threading: the module's
        # thread-local binding of a pacer must be greenlet-local (Gunicorn
        # imports this worker class in the master, which is never patched)
        from aegisflow.web.body import Pacer
        from aegisflow.web.body import serve_with

        sock.head_read()  # ORDER: the head is read; the app may take long
        try:
            if self.body_rate is None:
                self._serve(listener_name, req, sock, addr)
                return
            pacer = sock.pacer
            if pacer is None:
                pacer = sock.pacer = Pacer(sock, self.body_rate)
            req.unreader.sock = pacer
            serve_with(pacer)
            try:
                self._serve(listener_name, req, sock, addr)
            finally:
                serve_with(None)
        finally:
            sock.request_done()

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = _closing_when_unread(self.wsgi)

    def _serve(self, listener_name, req, sock, addr):
        # NOTE: returns, or raises StopIteration when the response said it closes
        super().handle_request(listener_name, req, sock, addr)

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, HeadTimeout):
            try:
                client.sendall(_TIMEOUT)
            except OSError:
                pass
            self.log.info('request head not received in time; connection closed')
            return
        super().handle_error(req, client, addr, exc)


# modules that took names from ssl before the worker patched it and are harmless
# after it: redis.asyncio (never run: the limits use redis-py's blocking client)
# and urllib3 (`rebind_ssl_names`)
_HANDLED = ('redis.asyncio', 'urllib3')


def rebind_ssl_names():
    """Point urllib3 at the patched ``ssl.SSLContext`` when urllib3 was imported
    before the worker patched ssl (the master imports it with an OTLP trace
    exporter): urllib3 builds every upstream TLS context from the name it
    imported, and a context of the original class makes blocking sockets, which
    would stop every request of the worker while one reads from its upstream."""
    import ssl

    for name in ('urllib3.util.ssl_', 'urllib3.util'):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, 'SSLContext'):
            module.SSLContext = ssl.SSLContext


def _report(log, warning):
    """Log what gevent warned of when patching, unless it is harmless here.

    NOTE: the master imports ssl (through redis) before it forks, so gevent
    warns that ssl was patched late. The risk is code that took ssl's names
    before then; when that is only modules the gateway never uses, all is well.
    Anything else is logged."""
    text = str(warning.message)
    named = re.findall(r"'([\w.]+) \(", text)
    if 'ssl' in text and named and all(m.startswith(_HANDLED) for m in named):
        return
    log.warning('gevent: %s', text)


def _closing_when_unread(app):
    """Wrap the WSGI app so that a response to a request whose body the app left
    unread says ``Connection: close`` and closes after it.

    Gunicorn would read and drop the rest of the body before the next request,
    for as long as the client took to send it. Closing instead (gracefully: the
    peer still gets the response) must be said in the response's head, which is
    not sent yet when the app returns: a client that is not told reuses the
    connection and can have its next request cut."""

    def wsgi(environ, start_response):
        body = app(environ, start_response)
        resp = start_response.__self__  # Gunicorn's Response
        if _unread(resp.req):
            resp.force_close()
        return body

    return wsgi


def _unread(req):
    """Whether the app left some of the request's body unread."""
    body = req.body
    if body is None:
        return False
    reader = body.reader
    if isinstance(reader, LengthReader):
        return reader.length > 0
    return not isinstance(reader, EOFReader)  # NOTE: chunked: not known, so yes


class _NoTimeout:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_TIMEOUT = _NoTimeout()
