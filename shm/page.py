"""A double-buffered, seqlocked page: one writer publishes bytes, anyone reads them.

Header (64 bytes): 0 seq (odd while switching)  8 active buffer (0 or 1)
16 length of buffer 0  24 length of buffer 1; then two buffers of `page_size` bytes.

The writer fills the inactive buffer and its length, makes ``seq`` odd, flips
``active``, makes ``seq`` even again. A reader reads ``seq`` (retrying while it is
odd), copies the active buffer, and retries if ``seq`` changed meanwhile, so it never
returns a mix of two versions. Readers never block the writer.
"""

import time

from shm.layout import PAGE_HEADER

_SEQ, _ACTIVE, _LEN0 = 0, 1, 2


class Page:
    __slots__ = ('buf', 'words', 'hw', 'data', 'size')

    def __init__(self, segment):
        offset = segment.layout.region('page')
        self.buf = segment.buf
        self.words = segment.words
        self.hw = offset // 8
        self.data = offset + PAGE_HEADER
        self.size = segment.layout.page_size

    def publish(self, payload):
        """Writer only. Payloads larger than the page are refused (ValueError)."""
        if len(payload) > self.size:
            raise ValueError(f'{len(payload)} bytes do not fit a {self.size}-byte page')
        words, hw = self.words, self.hw
        spare = 1 - words[hw + _ACTIVE]
        start = self.data + spare * self.size
        self.buf[start : start + len(payload)] = payload
        words[hw + _LEN0 + spare] = len(payload)
        words[hw + _SEQ] += 1  # ORDER: odd while the active buffer changes
        words[hw + _ACTIVE] = spare
        words[hw + _SEQ] += 1

    def read(self, max_tries=1000):
        words, hw = self.words, self.hw
        for attempt in range(max_tries):
            seq = words[hw + _SEQ]
            if seq & 1:
                if attempt > 10:
                    time.sleep(0)
                continue
            active = words[hw + _ACTIVE]
            length = words[hw + _LEN0 + active]
            start = self.data + active * self.size
            data = bytes(self.buf[start : start + min(length, self.size)])
            if words[hw + _SEQ] == seq:
                return data
        raise TimeoutError('page kept changing while being read')

    @property
    def version(self):
        return self.words[self.hw + _SEQ] // 2
