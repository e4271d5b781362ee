"""Graceful closes that never block the worker's loop.

RFC 9112 §9.6: a server that closes a connection with unread request bytes in
its receive buffer must not reset it (the client could lose the response), so it
sends FIN, then reads and discards until the peer closes or a deadline passes.
Gunicorn does that linger on the gthread worker's main loop, blocking every
other connection of the worker for up to two seconds per silent peer. Here the
loop only shuts the write side (which never blocks) and hands the socket to one
`Lingerer` thread per worker, which drains every lingering socket at once from
its own selector and closes each when its peer closes, when it has sent
`MAX_DRAIN` bytes more, or at its deadline.
"""

import collections
import logging
import os
import selectors
import socket
import threading
import time

log = logging.getLogger('aegisflow.worker')

LINGER_S = 2.0
MAX_DRAIN = 65536


class Lingerer:
    def __init__(self, linger_s=LINGER_S, clock=time.monotonic):
        self.linger_s = linger_s
        self.clock = clock
        self._selector = selectors.DefaultSelector()
        self._incoming = collections.deque()  # sockets handed over, not yet watched
        self._deadlines = collections.deque()  # (deadline, sock): in hand-over order
        self._held = 0  # sockets handed over and not yet closed
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._pause = threading.Event().wait
        self._thread = threading.Thread(
            target=self._run, name='aegisflow-linger', daemon=True
        )
        self._thread.start()

    def close(self, sock):
        """Close `sock` gracefully, without waiting here."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        with self._lock:
            self._held += 1
        self._incoming.append(sock)
        try:
            os.write(self._wake_w, b'x')
        except BlockingIOError:
            pass  # NOTE: a wake-up is pending already

    def lingering(self):
        """How many sockets are handed over and not yet closed."""
        return self._held

    def _run(self):
        drained = {}
        while True:
            # NOTE: this thread must never die: a dead lingerer would leak every
            # socket handed to it afterwards
            try:
                self._step(drained)
            except Exception:
                log.exception('lingering close failed; going on')
                self._pause(0.1)  # NOTE: no hot loop if the failure repeats

    def _step(self, drained):
        timeout = None
        if self._deadlines:
            timeout = max(0.0, self._deadlines[0][0] - self.clock())
        for key, _ in self._selector.select(timeout):
            if key.fileobj == self._wake_r:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
                continue
            self._drain(key.fileobj, drained)
        while self._incoming:
            sock = self._incoming.popleft()
            try:
                self._selector.register(sock, selectors.EVENT_READ)
            except (ValueError, KeyError, OSError):
                self._close(sock)  # NOTE: closed meanwhile, or not a socket any more
                continue
            drained[sock] = 0
            self._deadlines.append((self.clock() + self.linger_s, sock))
        now = self.clock()
        while self._deadlines and (
            self._deadlines[0][0] <= now or self._deadlines[0][1] not in drained
        ):
            _, sock = self._deadlines.popleft()
            if sock in drained:
                self._finish(sock, drained)

    def _drain(self, sock, drained):
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data or drained[sock] + len(data) >= MAX_DRAIN:
            self._finish(sock, drained)
        else:
            drained[sock] += len(data)

    def _finish(self, sock, drained):
        del drained[sock]
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        self._close(sock)

    def _close(self, sock):
        try:
            sock.close()
        except OSError:
            pass
        with self._lock:
            self._held -= 1
