"""Single-producer/single-consumer rings of fixed-size records, one per slot.

Ring header (128 bytes; the producer and the consumer each own one cache line):

    0   head      records ever published          written by the producer only
    8   dropped   records refused, ring was full  written by the producer only
    64  tail      records ever consumed           written by the consumer only
    72  torn      records found inconsistent       written by the consumer only

Then `capacity` records of `record_size` bytes. A record's first 8 bytes hold its
sequence number (its index + 1), the rest its payload. Counters run free (never
wrap); a record lives at ``index % capacity``.

Producer (`push`): if ``head - tail == capacity`` the record is dropped and counted, so
the request path never waits. Otherwise it writes the payload, then the sequence, then
advances ``head``. Consumer (`drain`): reads up to ``head``; a record whose sequence is
not its index + 1 is counted as torn and skipped; then advances ``tail``. A producer
that dies mid-record never advanced ``head``, so the consumer never sees the partial
record, and the next producer in the slot overwrites it.

NOTE: the publish order relies on aligned 8-byte stores being single-copy atomic and
stores not being reordered with stores (true on x86-64). On weakly ordered CPUs the
sequence check still detects a torn record, which is then counted and skipped.
"""

from shm.layout import RING_HEADER

HEAD, DROPPED, TAIL, TORN = 0, 1, 8, 9


class Ring:
    __slots__ = (
        'buf',
        'words',
        'hw',
        'capacity',
        'mask',
        'rsize',
        'payload',
        'rbase',
        'rwords',
    )

    def __init__(self, segment, slot):
        layout = segment.layout
        offset = layout.ring_at(slot)
        self.buf = segment.buf
        self.words = segment.words
        self.hw = offset // 8  # word index of the header
        self.capacity = layout.ring_capacity
        self.mask = self.capacity - 1
        self.rsize = layout.record_size
        self.payload = self.rsize - 8
        self.rbase = offset + RING_HEADER  # byte offset of record 0
        self.rwords = self.rsize // 8

    # -- producer ------------------------------------------------------------------

    def push(self, payload):
        """Publish one record (``payload`` of at most ``record_size - 8`` bytes)."""
        if len(payload) > self.payload:
            raise ValueError(
                f'record payload of {len(payload)} bytes exceeds {self.payload}'
            )
        words, hw = self.words, self.hw
        head = words[hw + HEAD]
        if head - words[hw + TAIL] >= self.capacity:
            words[hw + DROPPED] += 1
            return False
        at = self.rbase + (head & self.mask) * self.rsize
        # PERF: one slice assignment of the payload; the record's tail bytes beyond a
        # short payload keep old data, which readers never look at.
        self.buf[at + 8 : at + 8 + len(payload)] = payload
        words[at // 8] = head + 1  # ORDER: sequence after the payload ...
        words[hw + HEAD] = head + 1  # ORDER: ... and publish last
        return True

    # -- consumer ------------------------------------------------------------------

    def drain(self, limit=None):
        """Payloads of the published, unread records (at most `limit`), oldest first."""
        words, hw = self.words, self.hw
        head = words[hw + HEAD]
        tail = words[hw + TAIL]
        if limit is not None:
            head = min(head, tail + limit)
        out = []
        buf, mask, rsize, rbase = self.buf, self.mask, self.rsize, self.rbase
        torn = 0
        while tail < head:
            at = rbase + (tail & mask) * rsize
            if words[at // 8] == tail + 1:
                out.append(bytes(buf[at + 8 : at + rsize]))
            else:
                torn += 1
            tail += 1
        if torn:
            words[hw + TORN] += torn
        words[hw + TAIL] = tail  # ORDER: free the records only after copying them
        return out

    # -- figures -------------------------------------------------------------------

    @property
    def produced(self):
        return self.words[self.hw + HEAD]

    @property
    def consumed(self):
        return self.words[self.hw + TAIL]

    @property
    def dropped(self):
        return self.words[self.hw + DROPPED]

    @property
    def torn(self):
        return self.words[self.hw + TORN]
