"""Where everything lives in the segment. Pure arithmetic: no I/O.

Byte layout (little-endian; every region starts on a page boundary, every record on a
64-byte line so two writers never share a cache line):

    header    one page   magic, layout version, sizes, creator pid, creation time,
                         generation and flags (live words), a 16-byte config hash,
                         then the region directory (offset, size) in `REGIONS` order
    slots     S x 64     worker slot table (`shm.slots`)
    stamps    K x 64     owner stamps of the K stripe locks (`shm.locks`)
    cells     S x (64 + C x 128)          per-slot metric cells (`shm.cells`)
    rings     S x (128 + R x record)      per-slot event rings (`shm.ring`)
    table     T x entry                   keyed multi-writer table (`shm.table`)
    page      64 + 2 x P                  double-buffered seqlocked page (`shm.page`)
    names     64 + N x 128                append-only name table (`shm.names`)

Header fields are written once by the creator before any other process attaches,
except ``generation`` and ``flags``, which only the creator updates afterwards.
"""

import struct
from dataclasses import dataclass
from dataclasses import field

from shm.errors import LayoutMismatch

MAGIC = b'AEGSHM01'
LAYOUT_VERSION = 2
PAGE = 4096
LINE = 64

# magic, version, header size, total size, creator pid, created ns, generation, flags,
# config hash
HEADER = struct.Struct('<8sIIQQQQQ16s')
GENERATION_OFFSET = 40
FLAGS_OFFSET = 48
# Eight u64 words in the header page left to the application (any process may write
# them; what they mean is up to it).
USER_WORDS_OFFSET = 2048
USER_WORDS = 8
DIRECTORY = struct.Struct('<QQ')
REGIONS = ('slots', 'stamps', 'cells', 'rings', 'table', 'page', 'names')
assert HEADER.size == 72
assert HEADER.size + len(REGIONS) * DIRECTORY.size <= PAGE

SLOT_SIZE = 64
STAMP_SIZE = 64
CELL_SIZE = 128  # key + 15 values
CELL_HEADER = 64
RING_HEADER = 128
PAGE_HEADER = 64
NAMES_HEADER = 64
NAME_SLOT = 128

FLAG_INITIALIZING = 1


def _align(n, to=PAGE):
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Layout:
    slots: int = 8
    stripes: int = 64
    cell_capacity: int = 2048
    ring_capacity: int = 4096
    record_size: int = 256
    table_capacity: int = 16384
    table_entry_size: int = 64
    page_size: int = 1 << 20
    names_capacity: int = 4096
    offsets: dict = field(init=False, repr=False, compare=False)
    total_size: int = field(init=False, compare=False)

    def __post_init__(self):
        if self.ring_capacity & (self.ring_capacity - 1) or self.ring_capacity < 2:
            raise ValueError('ring_capacity must be a power of two >= 2')
        if self.record_size % LINE or self.record_size < LINE:
            raise ValueError('record_size must be a positive multiple of 64')
        if self.table_capacity % self.stripes:
            raise ValueError('table_capacity must be a multiple of stripes')
        if self.table_entry_size % LINE:
            raise ValueError('table_entry_size must be a multiple of 64')
        sizes = {
            'slots': self.slots * SLOT_SIZE,
            'stamps': self.stripes * STAMP_SIZE,
            'cells': self.slots * self.cells_stride,
            'rings': self.slots * self.ring_stride,
            'table': self.table_capacity * self.table_entry_size,
            'page': PAGE_HEADER + 2 * self.page_size,
            'names': NAMES_HEADER + self.names_capacity * NAME_SLOT,
        }
        offsets, cursor = {}, PAGE
        for name in REGIONS:
            offsets[name] = (cursor, sizes[name])
            cursor = _align(cursor + sizes[name])
        object.__setattr__(self, 'offsets', offsets)
        object.__setattr__(self, 'total_size', cursor)

    @property
    def cells_stride(self):
        return CELL_HEADER + self.cell_capacity * CELL_SIZE

    @property
    def ring_stride(self):
        return RING_HEADER + self.ring_capacity * self.record_size

    def region(self, name):
        return self.offsets[name][0]

    def cells_at(self, slot):
        return self.region('cells') + slot * self.cells_stride

    def ring_at(self, slot):
        return self.region('rings') + slot * self.ring_stride

    def pack_header(self, *, creator_pid, created_ns, config_hash=b''):
        head = HEADER.pack(
            MAGIC,
            LAYOUT_VERSION,
            PAGE,
            self.total_size,
            creator_pid,
            created_ns,
            0,
            FLAG_INITIALIZING,
            config_hash[:16],
        )
        directory = b''.join(DIRECTORY.pack(*self.offsets[n]) for n in REGIONS)
        return head + directory

    def check_header(self, buf):
        """Raise `LayoutMismatch` unless `buf` starts with this layout's header."""
        magic, version, _, total, *_ = HEADER.unpack_from(buf, 0)
        if magic != MAGIC:
            raise LayoutMismatch(f'bad magic {magic!r}; not an AegisFlow segment')
        if version != LAYOUT_VERSION:
            raise LayoutMismatch(f'layout version {version}, expected {LAYOUT_VERSION}')
        if total != self.total_size:
            raise LayoutMismatch(f'segment size {total}, expected {self.total_size}')
        for i, name in enumerate(REGIONS):
            got = DIRECTORY.unpack_from(buf, HEADER.size + i * DIRECTORY.size)
            if got != self.offsets[name]:
                raise LayoutMismatch(
                    f'region {name} at {got}, expected {self.offsets[name]}'
                )
