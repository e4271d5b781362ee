"""Several real processes on one segment: exact totals, rings, locks, crash recovery."""

import os
import signal
import time

import pytest

from shm import cells
from shm.errors import LockTimeout
from shm.layout import Layout
from shm.locks import StripedLocks
from shm.names import NameTable
from shm.page import Page
from shm.ring import Ring
from shm.segment import Segment
from shm.table import KeyedTable
from tests.support.forks import finished
from tests.support.forks import fork
from tests.support.forks import reap
from tests.support.forks import run_all
from workers.runtime import RECORD_SIZE

LAYOUT = Layout(
    slots=8,
    stripes=8,
    cell_capacity=64,
    ring_capacity=256,
    record_size=64,
    table_capacity=64,
    page_size=65536,
    names_capacity=256,
)


@pytest.fixture
def seg():
    return Segment.create(LAYOUT)


def test_counters_4_processes_x_50000_increments_are_exact(seg):
    def worker(slot):
        w = cells.CellWriter(seg, slot)
        base = w.cell(1, 1)
        other = w.cell(2, 2)
        words = seg.words
        for _ in range(50_000):
            words[base] += 1
            words[other] += 3

    def total():
        sums = [0, 0]
        for slot in range(4):
            for key, values in cells.read_cells(seg, slot)[0]:
                sums[key - 1] += values[0]
        return sums

    pids = [fork(worker, slot) for slot in range(4)]
    # Read while they write: totals only ever grow (no torn or zeroed reads).
    last = [0, 0]
    while not all(finished(p) for p in pids):
        now = total()
        assert now[0] >= last[0] and now[1] >= last[1]
        last = now
    for pid in pids:
        status = reap(pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert total() == [200_000, 600_000]


def test_ring_across_processes_produced_equals_consumed_plus_dropped(seg):
    ring = Ring(seg, 5)
    n = 60_000

    def producer():
        for i in range(n):
            ring.push(i.to_bytes(8, 'little') * 7)

    pid = fork(producer)
    seen = []
    while True:
        batch = ring.drain()
        for payload in batch:
            value = payload[:8]
            assert payload == value * 7  # never a record mixing two pushes
            seen.append(int.from_bytes(value, 'little'))
        if not batch and finished(pid):
            break
    seen += [int.from_bytes(p[:8], 'little') for p in ring.drain()]
    status = reap(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert ring.produced + ring.dropped == n
    assert ring.produced == ring.consumed == len(seen)
    assert ring.torn == 0
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_lock_holder_killed_does_not_stall_others(seg):
    locks = StripedLocks(seg)
    r, w = os.pipe()

    def holder():
        locks.acquire(3, timeout=1)
        os.write(w, b'x')
        time.sleep(60)

    pid = fork(holder)
    assert os.read(r, 1) == b'x'
    os.kill(pid, signal.SIGKILL)
    status = reap(pid)
    assert os.WIFSIGNALED(status)
    assert locks.owner(3) == pid
    started = time.monotonic()
    with pytest.raises(LockTimeout) as exc:
        locks.acquire(3, timeout=0.05)
    assert time.monotonic() - started < 1.0
    assert exc.value.owner_pid == pid
    assert locks.release_owned_by(pid) == [3]  # the parent's recovery path
    locks.acquire(3, timeout=0.05)
    assert locks.owner(3) == os.getpid()
    locks.release(3)
    locks.acquire(4, timeout=0.05)  # other stripes were never affected
    locks.release(4)


def test_lock_live_holder_is_waited_for_past_the_timeout(seg):
    """A holder that is alive and running is slow, not stuck (a thread starved of
    the interpreter lock among hundreds): the waiter waits past its timeout."""
    locks = StripedLocks(seg)
    r, w = os.pipe()

    def holder():
        locks.acquire(5, timeout=1)
        os.write(w, b'x')
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:  # busy: running, not stopped
            pass
        locks.release(5)

    pid = fork(holder)
    assert os.read(r, 1) == b'x'
    started = time.monotonic()
    locks.acquire(5, timeout=0.05)  # no LockTimeout although 0.4 s > 0.05 s
    waited = time.monotonic() - started
    locks.release(5)
    assert os.WEXITSTATUS(reap(pid)) == 0
    assert 0.05 < waited < 5.0


def _stopped_holder(locks, stripe):
    """The pid of a child that took `stripe` and stopped itself (SIGSTOP), once
    the kernel shows it stopped. Send it SIGCONT, then reap it."""
    r, w = os.pipe()

    def holder():
        locks.acquire(stripe, timeout=1)
        os.write(w, b'x')
        os.kill(os.getpid(), signal.SIGSTOP)
        locks.release(stripe)

    pid = fork(holder)
    assert os.read(r, 1) == b'x'
    deadline = time.monotonic() + 5
    while not _stopped(pid):
        assert time.monotonic() < deadline, 'holder never stopped'
        time.sleep(0.005)
    return pid


def test_lock_stopped_holder_times_out(seg):
    locks = StripedLocks(seg)
    pid = _stopped_holder(locks, 6)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as exc:
            locks.acquire(6, timeout=0.05)
        assert time.monotonic() - started < 1.0
        assert exc.value.owner_pid == pid
    finally:
        os.kill(pid, signal.SIGCONT)
    assert os.WEXITSTATUS(reap(pid)) == 0


def test_cooperative_wait_lets_the_other_requests_run(seg):
    """Under gevent (many requests on one OS thread) a wait for a stripe held by a
    stopped process yields: the worker's other requests keep running while the
    waiter times out. A blocking semaphore wait would freeze them all."""
    locks = StripedLocks(seg)

    def gevent_worker():
        from gevent import monkey

        monkey.patch_all()
        import gevent

        from shm import locks as striped

        striped.cooperative(time.sleep)  # NOTE: patched: it yields
        ticks = []

        def other_requests():
            while True:
                ticks.append(time.monotonic())
                gevent.sleep(0.001)

        other = gevent.spawn(other_requests)
        gevent.sleep(0)
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            locks.acquire(7, timeout=0.3)
        waited = time.monotonic() - started
        other.kill()
        assert 0.3 <= waited < 1.5
        during = [t for t in ticks if started <= t <= started + waited]
        assert len(during) > 50, len(during)  # about one per millisecond

    pid = _stopped_holder(locks, 7)
    try:
        assert os.WEXITSTATUS(reap(fork(gevent_worker))) == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert os.WEXITSTATUS(reap(pid)) == 0


def _stopped(pid):
    with open(f'/proc/{pid}/stat', 'rb') as f:
        return f.read().rsplit(b')', 1)[1].split()[0] in (b'T', b't')


def test_lock_acquire_survives_signals(seg):
    locks = StripedLocks(seg)
    signal.signal(signal.SIGUSR1, lambda *a: None)
    try:
        locks.acquire(0, timeout=1)
        r, w = os.pipe()

        def waiter():
            os.write(w, b'x')
            started = time.monotonic()
            locks.acquire(0, timeout=2)  # interrupted by SIGUSR1, must keep waiting
            assert time.monotonic() - started > 0.15
            locks.release(0)

        pid = fork(waiter)
        os.read(r, 1)
        for _ in range(5):
            time.sleep(0.03)
            os.kill(pid, signal.SIGUSR1)
        locks.release(0)
        status = reap(pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def test_keyed_table_updates_from_4_processes_are_exact(seg):
    table = KeyedTable(seg, StripedLocks(seg))

    def incr(words, base, created):
        words[base] += 1

    def worker():
        for _ in range(5_000):
            table.update(12345, 9, incr, time.monotonic_ns(), timeout=5)

    run_all([worker] * 4)
    assert table.peek(12345, 9)[0] == 20_000


def test_page_readers_never_see_a_mixed_version(seg):
    page = Page(seg)
    page.publish(b'v0' * 1000)

    def reader():
        for _ in range(20_000):
            data = page.read()
            assert data == data[:2] * 1000

    pid = fork(reader)
    i = 0
    while not finished(pid):
        i = (i + 1) % 10
        page.publish(f'v{i}'.encode() * 1000)
    status = reap(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert page.read() == f'v{i}'.encode() * 1000


def test_recorder_is_exact_with_many_threads_in_one_worker():
    """A gthread worker finishes requests on many threads: every count and every
    record must survive (the cells and the ring are single-writer per process)."""
    import threading

    from aegisflow.config import parse_config
    from aegisflow.pricing import PriceTable
    from aegisflow.telemetry import events as ev
    from aegisflow.telemetry.labels import LabelSpace
    from aegisflow.telemetry.recorder import Recorder
    from aegisflow.telemetry.tracecontext import Sampler
    from workers.context import ShmSink

    config = parse_config(
        """
providers: [{name: m, type: mock, models: [m]}]
routes: [{match: "*", targets: [m]}]
tenants: [{id: a, keys: [{key: k}]}]
""",
        env={},
    )
    labels = LabelSpace(config)
    seg = Segment.create(Layout(slots=8, record_size=RECORD_SIZE))
    recorder = Recorder(ShmSink(seg, 6), labels, PriceTable({}), Sampler(0.0))
    ring = Ring(seg, 6)
    drained = []
    stop = threading.Event()

    def drain():
        while not stop.wait(0.002):  # the aggregator drains periodically, too
            drained.extend(ring.drain())
        drained.extend(ring.drain())

    def work():
        for _ in range(1_000):
            obs = recorder.begin('r', None, 1)
            obs.tenant = labels.tenants.id('a')
            recorder.finish(obs, 200)

    # NOTE: switch threads as often as the interpreter can, so that a missing lock
    # shows up as lost counts or records instead of hiding behind 5 ms time slices.
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        consumer = threading.Thread(target=drain)
        consumer.start()
        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stop.set()
        consumer.join(10)
    finally:
        sys.setswitchinterval(interval)
    found, _ = cells.read_cells(seg, 6)
    requests = sum(v[0] for k, v in found if k >> 56 == ev.F_REQUESTS)
    assert requests == 16_000
    # NOTE: a consumer starved by the 1 us switch interval may let the ring fill;
    # a full ring drops and counts, so every record is either drained or counted
    assert len(drained) + ring.dropped == 16_000 and ring.torn == 0
    assert len(drained) > 0


def test_names_added_by_4_processes_get_one_index_each_everywhere(seg):
    """Four processes add overlapping names at once: each name ends with one index,
    which every process (and the parent) reads back as that name."""
    locks = StripedLocks(seg)
    names = [f'acme/key-{i}' for i in range(200)]

    def adder(offset):
        table = NameTable(seg, locks)
        for i in range(200):
            name = names[(i + offset) % 200]
            index = table.add(name)
            assert index is not None and table.name(index) == name

    run_all([lambda o=o: adder(o * 50) for o in range(4)])
    table = NameTable(seg, locks)
    assert len(table) == 200
    assert sorted(table.name(i) for i in range(200)) == sorted(names)
    assert {table.find(n) for n in names} == set(range(200))


def test_the_name_table_says_none_when_full_or_too_long(seg):
    table = NameTable(seg, StripedLocks(seg))
    for i in range(LAYOUT.names_capacity):
        assert table.add(f'n{i}') == i
    assert table.add('one-more') is None
    assert table.add('x' * 200) is None
    assert table.find('n7') == 7
