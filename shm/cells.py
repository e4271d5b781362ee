"""Per-slot metric cells: exact counters with one writer each, summed by a reader.

A slot's cell table (one per slot, `layout.cells_at(slot)`):

    header (64 bytes)   0 used: cells claimed      8 overflow: fallbacks taken
    cells (128 bytes)   0 key (0 = unused)         8..120 fifteen u64 values

Only the worker bound to the slot writes its table: it claims a cell for a new key by
writing the key and then advancing ``used`` (ORDER: publish last), and adds to values
with plain read-add-store, which is exact because nobody else writes them. Readers
(the parent's aggregator) read ``used`` cells at any time and see each value either
before or after an add, never torn. When the worker is gone, the parent folds its
table into its own totals and zeroes it (`reset`) before the slot is reused.

A full table never loses counts: the writer passes a fallback key with each key
(reserved at start with `reserve`), whose cell then takes the counts, and the
``overflow`` word counts how often that happened.
"""

from shm.layout import CELL_HEADER
from shm.layout import CELL_SIZE

VALUES = CELL_SIZE // 8 - 1
_STRIDE = CELL_SIZE // 8


class CellWriter:
    __slots__ = ('words', 'hw', 'cw', 'capacity', '_index')

    def __init__(self, segment, slot):
        offset = segment.layout.cells_at(slot)
        self.words = segment.words
        self.hw = offset // 8
        self.cw = (offset + CELL_HEADER) // 8
        self.capacity = segment.layout.cell_capacity
        # The table may hold cells of an earlier process only after a fold reset it,
        # so this writer starts from the cells it finds.
        self._index = {}
        for i in range(self.words[self.hw]):
            at = self.cw + i * _STRIDE
            self._index[self.words[at]] = at + 1

    def reserve(self, key):
        """Claim a cell for `key` now (fallback keys must be reserved up front)."""
        return self._claim(key, force=True)

    def cell(self, key, fallback):
        """Word index of value 0 of `key`'s cell (claimed on first use)."""
        base = self._index.get(key)
        if base is None:
            base = self._claim(key)
            if base is None:
                self.words[self.hw + 1] += 1
                base = self._index[fallback]
        return base

    def _claim(self, key, force=False):
        if not key:
            raise ValueError('cell key 0 is reserved for unused cells')
        base = self._index.get(key)
        if base is not None:
            return base
        used = self.words[self.hw]
        if used >= self.capacity:
            if force:
                raise MemoryError('cell table full while reserving fallback keys')
            return None
        at = self.cw + used * _STRIDE
        self.words[at] = key
        self.words[self.hw] = used + 1  # ORDER: publish the cell after its key
        self._index[key] = at + 1
        return at + 1

    @property
    def overflow(self):
        return self.words[self.hw + 1]


def read_cells(segment, slot):
    """[(key, values tuple)] of a slot's claimed cells, plus its overflow count."""
    offset = segment.layout.cells_at(slot)
    words = segment.words
    hw, cw = offset // 8, (offset + CELL_HEADER) // 8
    used = min(words[hw], segment.layout.cell_capacity)
    cells = []
    for i in range(used):
        at = cw + i * _STRIDE
        key = words[at]
        if key:
            cells.append((key, tuple(words[at + 1 : at + _STRIDE])))
    return cells, words[hw + 1]


def reset(segment, slot):
    """Zero a slot's table. Only for a slot whose writer is gone."""
    offset = segment.layout.cells_at(slot)
    end = offset + segment.layout.cells_stride
    segment.buf[offset:end] = bytes(end - offset)
