"""Errors of the shared-memory layer; each also subclasses the matching built-in."""


class ShmError(Exception):
    """Base of every shared-memory error."""


class SegmentTooLarge(ShmError, MemoryError):
    """The segment does not fit in the shared-memory filesystem."""


class LayoutMismatch(ShmError, RuntimeError):
    """An existing segment has another magic, version or size than expected."""


class LockTimeout(ShmError, TimeoutError):
    """A stripe lock was not acquired within its timeout."""

    def __init__(self, stripe, *, owner_pid=0, timeout=0.0):
        self.stripe = stripe
        self.owner_pid = owner_pid
        self.timeout = timeout
        super().__init__(
            f'stripe {stripe} still held by pid {owner_pid or "?"} after '
            f'{timeout * 1000:.1f} ms'
        )

    def __reduce__(self):
        return (_lock_timeout, (self.stripe, self.owner_pid, self.timeout))


def _lock_timeout(stripe, owner_pid, timeout):
    return LockTimeout(stripe, owner_pid=owner_pid, timeout=timeout)


class TableFull(ShmError, LookupError):
    """No entry could be found or freed for a key in its stripe."""


class SlotExhausted(ShmError, RuntimeError):
    """Every worker slot is taken."""
