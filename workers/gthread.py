"""Gunicorn's `gthread` worker with AegisFlow's thread pool (`workers.pool`) and a
deadline on request headers.

Gunicorn hands a connection to a thread once it has bytes to read, and the thread
then reads the request line and headers with blocking reads: a client that trickles
its headers a byte at a time would hold that thread for as long as it liked
(slowloris). Here each request's head must arrive within
``server.header_timeout_s`` of its first byte; the worker's loop (which wakes at
least once a second and looks at most four times a second) answers a late one 408
and shuts its socket, which ends the blocked read and frees the thread. A request's
body is read through a `Pacer` (see `aegisflow.web.body`), which holds it to
``server.body_min_bytes_per_s`` while the app reads it. A connection closed with
request bytes unread lingers for its peer on a thread of its own
(`workers.linger`), never on the loop.
"""

import socket
import time

from gunicorn import util
from gunicorn.workers.gthread import _DEFER
from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from aegisflow.web.body import Pacer
from aegisflow.web.body import serve_with
from workers import state
from workers.http_errors import response
from workers.linger import Lingerer
from workers.pool import ExactThreadPool

_TIMEOUT = response(
    408,
    'Request Timeout',
    'request_timeout',
    'The request line and headers did not arrive in time.',
)


class LingeringConn(TConn):
    """A connection whose graceful close is handed to the worker's `Lingerer`
    instead of lingering on the loop (see `workers.linger`)."""

    lingerer = None  # set per worker process in init_process

    def close(self, graceful=False):
        if graceful and self.lingerer is not None:
            self.lingerer.close(self.sock)
        else:
            util.close(self.sock)


class ThreadWorker(_ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # conn -> monotonic deadline, for each thread reading a request's head
        self.heads = {}
        self.header_timeout = None
        self.body_rate = None
        self.next_sweep = 0.0

    def init_process(self):
        # NOTE: after fork: the lingering thread belongs to this worker process
        LingeringConn.lingerer = Lingerer()
        config = state.current
        if config is not None:
            self.header_timeout = config.server.header_timeout_s
            self.body_rate = config.server.body_min_bytes_per_s or None
        super().init_process()

    def get_thread_pool(self):
        return ExactThreadPool(self.cfg.threads)

    def handle(self, conn):
        # NOTE: Gunicorn makes every connection a TConn; this subclass only changes
        # how it closes, and the main loop closes it only after this returns
        conn.__class__ = LingeringConn
        if self.header_timeout is None:
            return super().handle(conn)
        # NOTE: the clock starts with the first byte: a new connection waits for it
        # here as Gunicorn's handle would (and goes back to the poller without it).
        if not conn.initialized and not conn.wait_for_data(DEFAULT_WORKER_DATA_TIMEOUT):
            return _DEFER
        self.heads[conn] = time.monotonic() + self.header_timeout
        try:
            return super().handle(conn)
        finally:
            self.heads.pop(conn, None)

    def handle_request(self, req, conn):
        self.heads.pop(conn, None)  # ORDER: the head is read; the app may take long
        if self.body_rate is None:
            return super().handle_request(req, conn)
        unreader = conn.parser.unreader
        pacer = unreader.sock
        if not isinstance(pacer, Pacer):
            pacer = unreader.sock = Pacer(conn.sock, self.body_rate)
        serve_with(pacer)
        try:
            return super().handle_request(req, conn)
        finally:
            serve_with(None)

    def murder_pending(self):
        super().murder_pending()
        if not self.heads:
            return
        now = time.monotonic()
        # PERF: the loop turns once per event under load; a quarter second is
        # precise enough for a deadline of seconds
        if now < self.next_sweep:
            return
        self.next_sweep = now + 0.25
        for conn, deadline in list(self.heads.items()):
            if deadline <= now and self.heads.pop(conn, None) is not None:
                self.cut(conn)

    def cut(self, conn):
        """Answer 408 without waiting (a client that does not read gets nothing)
        and shut the socket, so the thread's blocked read returns at once."""
        try:
            conn.sock.send(_TIMEOUT, socket.MSG_DONTWAIT)
        except OSError:
            pass
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.log.info('request head not received in time; connection closed')
