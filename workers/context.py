"""The per-worker context, bound in ``post_fork``: the worker's slot, its counter
cells and ring (the recorder's sink), and the shared metrics page it serves."""

import logging

from aegisflow.limits.limiter import Limiter
from aegisflow.limits.redis_store import RedisStore
from aegisflow.pricing import PriceTable
from aegisflow.telemetry.metrics import unpack
from aegisflow.telemetry.recorder import LocalSink
from aegisflow.telemetry.recorder import Recorder
from aegisflow.telemetry.tracecontext import Sampler
from aegisflow.usage.keystore import Generation
from shm.cells import CellWriter
from shm.layout import USER_WORDS_OFFSET
from shm.page import Page
from shm.ring import Ring
from workers.shm_store import ShmStore

log = logging.getLogger('aegisflow.worker')

current = None  # the WorkerTelemetry of this worker process


class ShmSink:
    """The recorder's sink in a worker: its slot's cells and ring."""

    __slots__ = ('words', 'cell', 'reserve', 'push', 'writer')

    def __init__(self, segment, slot):
        writer = CellWriter(segment, slot)
        self.writer = writer
        self.words = segment.words
        self.cell = writer.cell
        self.reserve = writer.reserve
        self.push = Ring(segment, slot).push


class WorkerTelemetry:
    __slots__ = ('runtime', 'slot', 'recorder', 'page', 'writer')

    def __init__(self, runtime, slot, config):
        self.runtime = runtime
        self.slot = slot
        if slot is None:
            # NOTE: no slot was free (more workers than the table holds): this worker
            # serves, but its counts stay local and are not in /metrics.
            log.error(
                'no shared-memory slot for this worker; its requests are not '
                'counted in /metrics'
            )
            sink = LocalSink()
            self.writer = None
        else:
            runtime.slots.bind(slot)
            runtime.locks.slot = slot
            sink = ShmSink(runtime.segment, slot)
            self.writer = sink.writer
        prices = PriceTable(config.prices, config.providers)
        sampler = Sampler.of(config.telemetry.traces)
        self.recorder = Recorder(sink, runtime.labels, prices, sampler)
        self.page = Page(runtime.segment)

    def metrics(self, openmetrics=False):
        return unpack(self.page.read(), openmetrics)

    def key_generation(self):
        """The shared word that moves when keys are created or revoked."""
        return Generation(self.runtime.segment.words, USER_WORDS_OFFSET // 8)

    def limiter(self, config):
        """This worker's limiter: the shared-memory store, or Redis with the
        shared-memory store as its fallback."""
        shm_store = ShmStore(
            self.runtime,
            self.slot,
            self.writer,
            config.state.shm.lock_timeout_ms / 1000,
        )
        if config.state.backend != 'redis':
            return Limiter(config, shm_store)
        return Limiter(config, redis_store(config), fallback=shm_store)

    def checks(self):
        return (self._shm,)

    def _shm(self):
        ok = self.slot is not None
        return 'shared_memory', ok, f'slot {self.slot}' if ok else 'no slot'


def redis_store(config):
    state = config.state
    return RedisStore(
        state.redis_url, prefix=state.key_prefix, timeout_ms=state.redis_timeout_ms
    )


def bind(runtime, slot, config):
    global current
    current = WorkerTelemetry(runtime, slot, config)
    return current
