"""The segment: created once by the parent before it forks, inherited by children.

`Segment.create` makes a POSIX shared-memory object with a name no other process
uses (prefix, creator pid, random suffix; ``O_CREX``, mode 0600), reserves every page
with ``posix_fallocate`` so a too-small ``/dev/shm`` fails here with a clear message
instead of a SIGBUS later, maps it, writes the header and, unless asked to keep it,
unlinks the name at once: children reach the mapping through fork, and nothing can be
left behind in ``/dev/shm`` whatever way the processes end.

`Segment.anonymous` gives the same layout in private memory, for a single process
(tests, running the app without Gunicorn).
"""

import errno
import mmap
import os
import secrets
import shutil
import time

import posix_ipc

from shm.errors import SegmentTooLarge
from shm.layout import FLAGS_OFFSET
from shm.layout import GENERATION_OFFSET


class Segment:
    __slots__ = ('layout', 'buf', 'words', 'name', '_mm')

    def __init__(self, layout, mm, name):
        self.layout = layout
        self._mm = mm
        self.buf = memoryview(mm)
        self.words = self.buf.cast('Q')  # every live u64 of the segment
        self.name = name

    @classmethod
    def create(cls, layout, *, prefix='aegisflow', config_hash=b'', keep_name=False):
        name = f'/{prefix}-{os.getpid()}-{secrets.token_hex(4)}'
        mem = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600)
        try:
            try:
                os.posix_fallocate(mem.fd, 0, layout.total_size)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.ENOMEM):
                    raise
                free = (
                    shutil.disk_usage('/dev/shm').free
                    if os.path.isdir('/dev/shm')
                    else 0
                )
                need, have = layout.total_size / 2**20, free / 2**20
                raise SegmentTooLarge(
                    f'shared memory needs {need:.1f} MiB but /dev/shm has {have:.1f} '
                    'MiB free: enlarge /dev/shm (for a container, --shm-size) or '
                    'lower state.shm.ring_records / metric_cells'
                ) from None
            mm = mmap.mmap(mem.fd, layout.total_size)
        except BaseException:
            mem.close_fd()
            mem.unlink()
            raise
        mem.close_fd()
        if not keep_name:
            mem.unlink()
        seg = cls(layout, mm, name)
        seg._write_header(config_hash)
        return seg

    @classmethod
    def anonymous(cls, layout, *, config_hash=b''):
        seg = cls(layout, mmap.mmap(-1, layout.total_size), None)
        seg._write_header(config_hash)
        return seg

    @classmethod
    def attach(cls, name, layout):
        """Map an existing, still-named segment (debug tooling) and check its header."""
        mem = posix_ipc.SharedMemory(name)
        try:
            mm = mmap.mmap(mem.fd, mem.size)
        finally:
            mem.close_fd()
        seg = cls(layout, mm, name)
        layout.check_header(seg.buf)
        return seg

    def _write_header(self, config_hash):
        header = self.layout.pack_header(
            creator_pid=os.getpid(), created_ns=time.time_ns(), config_hash=config_hash
        )
        self.buf[: len(header)] = header
        self.words[FLAGS_OFFSET // 8] = 0  # ORDER: clear INITIALIZING last

    @property
    def generation(self):
        return self.words[GENERATION_OFFSET // 8]

    def bump_generation(self):
        self.words[GENERATION_OFFSET // 8] = self.generation + 1

    def unlink(self):
        if self.name:
            try:
                posix_ipc.unlink_shared_memory(self.name)
            except posix_ipc.ExistentialError:
                pass

    def close(self):
        self.words.release()
        self.buf.release()
        self._mm.close()
