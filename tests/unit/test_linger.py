"""The lingering closer: FIN at once, the peer's bytes discarded, the socket closed
when the peer closes, past the drain cap, or at the deadline; never a wait for the
caller."""

import socket

from tests.support.gateway import wait_until
from workers.linger import MAX_DRAIN
from workers.linger import Lingerer


def pair():
    a, b = socket.socketpair()
    b.settimeout(5)
    return a, b


def test_linger_sends_fin_at_once_and_closes_when_the_peer_closes():
    lingerer = Lingerer(linger_s=60)
    ours, peer = pair()
    lingerer.close(ours)
    assert peer.recv(10) == b''  # the FIN arrived although the peer said nothing
    peer.sendall(b'late body bytes')  # read and discarded
    assert lingerer.lingering() == 1
    peer.close()
    wait_until(lambda: lingerer.lingering() == 0, timeout=5, what='closed')
    assert ours.fileno() == -1


def test_linger_closes_a_silent_peer_at_its_deadline():
    lingerer = Lingerer(linger_s=0.2)
    socks = [pair() for _ in range(20)]
    for ours, _ in socks:
        lingerer.close(ours)
    wait_until(lambda: lingerer.lingering() == 0, timeout=10, what='deadlines')
    assert all(ours.fileno() == -1 for ours, _ in socks)


def test_linger_stops_draining_a_peer_that_sends_without_end():
    lingerer = Lingerer(linger_s=60)
    ours, peer = pair()
    lingerer.close(ours)
    chunk = b'x' * 4096
    try:
        for _ in range(2 * MAX_DRAIN // len(chunk)):
            peer.sendall(chunk)
    except OSError:
        pass  # NOTE: the closer hung up once the cap was passed
    wait_until(lambda: ours.fileno() == -1, timeout=10, what='the cap')


class _Gone:
    """A socket object whose descriptor is already gone (the selector refuses it)."""

    closed = False

    def shutdown(self, how):
        pass

    def setblocking(self, flag):
        pass

    def fileno(self):
        return -1

    def close(self):
        self.closed = True


def test_linger_survives_a_socket_it_cannot_watch():
    lingerer = Lingerer(linger_s=0.2)
    gone = _Gone()
    lingerer.close(gone)
    wait_until(lambda: lingerer.lingering() == 0, timeout=5, what='the bad one')
    assert gone.closed
    # and it goes on lingering the next ones
    ours, peer = pair()
    lingerer.close(ours)
    assert peer.recv(10) == b''
    wait_until(lambda: ours.fileno() == -1, timeout=5, what='the next one closed')
