"""The cheaper ``sendall``: on a gevent socket it sends what the kernel takes at
once and hands the rest to gevent, whole and in order; any other socket keeps its
own ``sendall``. The read without waiting: what has arrived, or None."""

import socket

import gevent
from gevent import socket as gsocket
from gevent import ssl as gssl

from aegisflow.netio import receiver
from aegisflow.netio import sender


def test_a_gevent_socket_gets_the_fast_sendall_and_every_byte_arrives_in_order():
    a, b = gsocket.socketpair()
    send = sender(a)
    assert send != a.sendall
    # NOTE: far past the socket buffers: most of it goes through gevent's wait
    data = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    got = bytearray()

    def read():
        while len(got) < 2 * len(data) + 5:
            chunk = b.recv(1 << 20)
            assert chunk
            got.extend(chunk)

    reader = gevent.spawn(read)
    send(b'hello')
    send(data)
    send(memoryview(data))
    reader.get(timeout=30)
    assert bytes(got) == b'hello' + data + data
    a.close()
    b.close()


def test_a_full_buffer_waits_cooperatively_within_the_socket_timeout():
    a, b = gsocket.socketpair()
    a.settimeout(0.2)
    send = sender(a)
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(5)])
    try:
        send(b'x' * (64 * 1024 * 1024))  # nobody reads: the buffer fills
    except TimeoutError:
        pass
    else:
        raise AssertionError('a send nobody reads ended without a timeout')
    ticker.join(timeout=5)
    assert len(ticks) == 5  # the other greenlet ran while the send waited
    a.close()
    b.close()


def test_a_closed_peer_raises_as_sendall_does():
    a, b = gsocket.socketpair()
    b.close()
    send = sender(a)
    try:
        for _ in range(100):
            send(b'x' * 65536)
    except OSError:
        pass
    else:
        raise AssertionError('sending to a closed peer never failed')
    a.close()


def test_other_sockets_keep_their_own_sendall():
    a, b = socket.socketpair()
    assert sender(a) == a.sendall
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    plain = gsocket.socket()
    try:
        wrapped = context.wrap_socket(
            plain, server_hostname='example.com', do_handshake_on_connect=False
        )
        assert type(wrapped).__module__.startswith('gevent')
        assert sender(wrapped) == wrapped.sendall
    finally:
        plain.close()
    a.close()
    b.close()


def test_the_read_without_waiting_returns_what_arrived_none_or_eof():
    a, b = gsocket.socketpair()
    recv = receiver(a)
    assert recv(4096) is None  # nothing sent yet
    b.sendall(b'GET / HTTP/1.1\r\n')
    gevent.sleep(0)
    assert recv(4096) == b'GET / HTTP/1.1\r\n'
    assert recv(4096) is None
    b.close()
    assert recv(4096) == b''  # the peer closed
    a.close()


def test_other_sockets_have_no_read_without_waiting():
    a, b = socket.socketpair()
    assert receiver(a) is None
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    plain = gsocket.socket()
    try:
        wrapped = context.wrap_socket(
            plain, server_hostname='example.com', do_handshake_on_connect=False
        )
        assert receiver(wrapped) is None
    finally:
        plain.close()
    a.close()
    b.close()
