"""shm structures in one process (several slots simulated by index)."""

import os

import pytest

from shm import cells
from shm.errors import LayoutMismatch
from shm.errors import SlotExhausted
from shm.errors import TableFull
from shm.layout import Layout
from shm.locks import StripedLocks
from shm.page import Page
from shm.ring import Ring
from shm.segment import Segment
from shm.slots import ASSIGNED
from shm.slots import FREE
from shm.slots import LIVE
from shm.slots import STATE
from shm.slots import SlotTable
from shm.table import KeyedTable

SMALL = Layout(
    slots=4,
    stripes=4,
    cell_capacity=8,
    ring_capacity=8,
    record_size=64,
    table_capacity=16,
    page_size=4096,
)


@pytest.fixture
def seg():
    return Segment.anonymous(SMALL)


def test_layout_regions_are_page_aligned_and_disjoint():
    layout = Layout()
    spans = sorted(layout.offsets.values())
    for (a, size), (b, _) in zip(spans, spans[1:], strict=False):
        assert a % 4096 == 0 and a + size <= b
    assert layout.total_size % 4096 == 0


def test_layout_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Layout(ring_capacity=100)
    with pytest.raises(ValueError):
        Layout(record_size=100)
    with pytest.raises(ValueError):
        Layout(table_capacity=100, stripes=64)


def test_segment_is_unlinked_and_private():
    seg = Segment.create(SMALL)
    assert seg.name.startswith('/aegisflow-')
    assert seg.name[1:] not in os.listdir('/dev/shm')
    SMALL.check_header(seg.buf)
    assert seg.generation == 0
    seg.bump_generation()
    assert seg.generation == 1


def test_segment_kept_name_attaches_and_checks_layout():
    seg = Segment.create(SMALL, keep_name=True)
    try:
        assert seg.name[1:] in os.listdir('/dev/shm')
        assert oct(os.stat('/dev/shm' + seg.name).st_mode & 0o777) == '0o600'
        other = Segment.attach(seg.name, SMALL)
        other.words[100] = 42
        assert seg.words[100] == 42
        with pytest.raises(LayoutMismatch):
            Segment.attach(
                seg.name,
                Layout(
                    slots=5,
                    stripes=4,
                    cell_capacity=8,
                    ring_capacity=8,
                    record_size=64,
                    table_capacity=16,
                    page_size=4096,
                ),
            )
    finally:
        seg.unlink()
    assert seg.name[1:] not in os.listdir('/dev/shm')


def test_two_segments_never_collide():
    a, b = Segment.create(SMALL), Segment.create(SMALL)
    assert a.name != b.name
    a.words[600] = 1
    assert b.words[600] == 0


def test_slots_assign_bind_free_and_exhaust(seg):
    table = SlotTable(seg)
    got = [table.assign(generation=3) for _ in range(4)]
    assert got == [0, 1, 2, 3]
    assert table.get(2, STATE) == ASSIGNED
    with pytest.raises(SlotExhausted):
        table.assign()
    table.bind(2, pid=4242)
    assert table.get(2, STATE) == LIVE and (2, 4242) in table.live()
    table.free(1)
    assert table.get(1, STATE) == FREE
    assert table.assign() == 1


def test_ring_push_drain_and_drop_count(seg):
    ring = Ring(seg, 1)
    for i in range(10):
        ring.push(i.to_bytes(8, 'little'))
    assert ring.produced == 8 and ring.dropped == 2
    got = [int.from_bytes(p[:8], 'little') for p in ring.drain()]
    assert got == list(range(8))
    assert ring.produced == ring.consumed + 0 and ring.drain() == []
    assert ring.push(b'x' * 56) and not ring.torn
    with pytest.raises(ValueError):
        ring.push(b'x' * 57)
    other = Ring(seg, 2)
    assert other.produced == 0  # rings of other slots are untouched


def test_ring_detects_a_torn_record(seg):
    ring = Ring(seg, 0)
    ring.push(b'a')
    ring.push(b'b')
    at = ring.rbase + 1 * ring.rsize
    seg.words[at // 8] = 999  # corrupt the second record's sequence
    assert ring.drain() == [b'a' + bytes(55)]
    assert ring.torn == 1


def test_cells_exact_with_fallback_when_full(seg):
    w = cells.CellWriter(seg, 3)
    w.reserve(1000)  # the fallback
    for key in range(1, 12):
        base = w.cell(key, 1000)
        seg.words[base] += key
        seg.words[base + 14] += 1
    found, overflow = cells.read_cells(seg, 3)
    assert len(found) == 8 and overflow == 4
    assert sum(v[0] for _, v in found) == sum(range(1, 12))
    assert sum(v[14] for _, v in found) == 11
    assert dict(found)[1000][0] == 8 + 9 + 10 + 11
    cells.reset(seg, 3)
    assert cells.read_cells(seg, 3) == ([], 0)
    with pytest.raises(ValueError):
        w.reserve(0)


def test_cells_writer_resumes_an_existing_table(seg):
    w = cells.CellWriter(seg, 0)
    seg.words[w.cell(7, 7)] += 5
    again = cells.CellWriter(seg, 0)
    seg.words[again.cell(7, 7)] += 1
    assert cells.read_cells(seg, 0) == ([(7, (6,) + (0,) * 14)], 0)


def test_keyed_table_update_evict_and_full():
    seg = Segment.create(SMALL)
    table = KeyedTable(seg, StripedLocks(seg))

    def incr(words, base, created):
        words[base] += 1
        return words[base], created

    assert table.update(8, 1, incr, now_ns=100) == (1, True)
    assert table.update(8, 1, incr, now_ns=200) == (2, False)
    assert table.peek(8, 1)[0] == 2
    assert table.peek(8, 2) is None  # same hash, other key
    # Partition of stripe 0 holds 4 entries: fill it (hashes multiple of 4).
    for h in (4, 12, 16):
        table.update(h, 1, incr, now_ns=300)
    with pytest.raises(TableFull):
        table.update(20, 1, incr, now_ns=400, evict_idle_ns=1000)
    # Idle long enough: the least recently touched entry (hash 8, touched at 200) goes.
    assert table.update(20, 1, incr, now_ns=1250, evict_idle_ns=1000) == (1, True)
    assert table.peek(8, 1) is None and table.peek(4, 1) is not None


def test_page_publish_and_read(seg):
    page = Page(seg)
    assert page.read() == b''
    page.publish(b'first')
    page.publish(b'second version')
    assert page.read() == b'second version' and page.version == 2
    with pytest.raises(ValueError):
        page.publish(b'x' * 4097)


def test_cleanup_removes_only_objects_of_dead_creators(tmp_path):
    from shm import cleanup

    (tmp_path / 'aegisflow-999999999-abcd1234').write_bytes(b'')
    (tmp_path / f'aegisflow-{os.getpid()}-abcd1234').write_bytes(b'')
    (tmp_path / 'sem.aegisflow-999999999-ab12-s3').write_bytes(b'')
    (tmp_path / 'unrelated-1-ab').write_bytes(b'')
    found = sorted(os.path.basename(p) for p in cleanup.stale(directory=tmp_path))
    assert found == ['aegisflow-999999999-abcd1234', 'sem.aegisflow-999999999-ab12-s3']


def test_keyed_table_transaction_and_pinned_entries():
    seg = Segment.create(SMALL)
    locks = StripedLocks(seg)
    table = KeyedTable(seg, locks)
    with table.transaction([(5, 1), (6, 1), (5, 1)], now_ns=10) as entries:
        assert [created for _, created in entries] == [True, True, False]
        assert entries[0][0] == entries[2][0]
        assert {locks.owner(s) for s in (1, 2)} == {os.getpid()}  # both stripes held
        seg.words[entries[0][0]] = 42
    assert locks.owner(1) == 0 and locks.owner(2) == 0  # released
    assert table.peek(5, 1)[0] == 42
    # Fill partition 0 (hashes multiple of 4); pin two entries far into the future.
    for h in (4, 8, 12, 16):
        with table.transaction([(h, 1)], now_ns=100) as ((base, _),):
            if h in (4, 8):
                seg.words[base + 4] = 10**12
    with table.transaction([(20, 1)], now_ns=10**6, evict_idle_ns=1) as ((base, new),):
        assert new
    assert table.peek(4, 1) is not None and table.peek(8, 1) is not None
    assert table.peek(12, 1) is None  # the oldest unpinned entry was taken over
    # An exception inside the transaction still releases every lock.
    with pytest.raises(RuntimeError):
        with table.transaction([(5, 1), (6, 1)], now_ns=1):
            raise RuntimeError('boom')
    assert locks.owner(1) == 0 and locks.owner(2) == 0
