"""Socket reads and writes at the cost of the system call.

gevent's ``sendall`` asks the kernel for the send buffer's size on every call
(``getsockopt``), cuts the data into memoryview chunks and arms a timer when the
socket has a timeout: about 3 µs a call on this machine against 1 µs for the send
itself, and a response takes two or three sends. `sender` gives, for a gevent TCP
socket, a ``sendall`` that first offers the data to the non-blocking socket gevent
wraps, and hands only what the kernel did not take to gevent's ``sendall``
(which waits cooperatively, with the socket's timeout). Any other socket (a
thread's, or TLS) keeps its own ``sendall``.

Reads: waiting for a keep-alive connection's next request costs a gevent timer
(made, started and cancelled) even when the request is already there, as it
mostly is once a worker is busy. `receiver` gives a read that returns what has
arrived without any timer, or None when nothing has, so the caller arms its
timer only to wait.
"""

_GEVENT_SOCKET = 'gevent._socket3'


def _raw(sock):
    """The non-blocking socket a gevent TCP socket wraps, or None for any other."""
    if type(sock).__module__ != _GEVENT_SOCKET:
        return None
    return getattr(sock, '_sock', None)


def sender(sock):
    """``sock.sendall``, or its equivalent without the per-call overhead."""
    raw = _raw(sock)
    if raw is None:
        return sock.sendall
    slow = sock.sendall

    def sendall(data):
        try:
            sent = raw.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            slow(memoryview(data)[sent:])

    return sendall


def receiver(sock):
    """For a gevent TCP socket, ``recv(size)`` without waiting: the bytes (b''
    when the peer closed), or None when nothing has arrived; None for any other
    socket (a thread's, or TLS), which has no such read."""
    raw = _raw(sock)
    if raw is None:
        return None

    def recv(size):
        try:
            return raw.recv(size)
        except (BlockingIOError, InterruptedError):
            return None

    return recv
