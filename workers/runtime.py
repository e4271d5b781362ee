"""The master's side of the shared-memory plane: the segment, the slot table, the
locks, and the aggregator thread.

Built in ``on_starting`` (before any fork); the aggregator thread starts in
``when_ready``. Every ``telemetry.flush_interval_ms`` it drains every slot's ring,
sums every slot's counter cells plus the ``retired`` totals of reaped workers, renders
the exposition into the shared page that every worker serves, then writes the ledger
and exports spans. `retire` (from ``child_exit``) drains a reaped worker's ring, folds
its cells into ``retired``, zeroes them, releases any stripe lock it held and frees
its slot.

Fork gate: the thread holds ``gate`` while it touches shared memory or master-side
Python state; ``os.register_at_fork`` takes the same lock before every fork, so a
worker is never forked in the middle of a step. Reaping (``child_exit``) runs on the
arbiter thread and takes the gate too, so folding a slot and summing it never
interleave: totals never count a request twice or skip it.
"""

import datetime
import logging
import os
import shutil
import signal
import threading
import time

from aegisflow.auth import runtime_key_limits
from aegisflow.auth import runtime_tenants
from aegisflow.cache import local as cache_store
from aegisflow.cache import local_wanted
from aegisflow.limits.engine import EVICT_IDLE_NS
from aegisflow.limits.engine import REFUSED
from aegisflow.limits.plan import Planner
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import STATE_NAMES
from aegisflow.routing.resilience import shown_state
from aegisflow.routing.router import configured_targets
from aegisflow.routing.targets import breaker_key
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.aggregate import Aggregator
from aegisflow.telemetry.labels import LabelSpace
from aegisflow.telemetry.metrics import Totals
from aegisflow.usage.database import ERRORS as DB_ERRORS
from aegisflow.usage.keystore import Generation
from aegisflow.usage.keystore import KeyStore
from aegisflow.usage.ledger import Ledger
from aegisflow.usage.ledger import spent_since
from shm import cells
from shm.layout import USER_WORDS_OFFSET
from shm.layout import Layout
from shm.locks import StripedLocks
from shm.names import NameTable
from shm.page import Page
from shm.ring import Ring
from shm.segment import Segment
from shm.slots import LOCK_WAITS
from shm.slots import SlotTable
from shm.table import KeyedTable
from workers.alerts import Alerts
from workers.context import redis_store
from workers.shm_store import release_dead

log = logging.getLogger('aegisflow.master')
_TICK = os.sysconf('SC_CLK_TCK')
_PAGE = os.sysconf('SC_PAGE_SIZE')
_PROCESS_EVERY_S = 1.0
# the signals that stop a worker: blocked from fork until its handlers are in place
STOP_SIGNALS = frozenset((signal.SIGTERM, signal.SIGINT, signal.SIGQUIT))
RUNTIME_TENANTS = 1024  # tenants created at run time that get their own label id
_KEY_POLL_S = 0.25  # keys changed on another host work here within a second


def seed_budgets(config, planner, table, redis):
    """Start every budget of the current periods from what the ledger recorded, so
    spend survives a restart."""
    now_unix = time.time()
    for check in planner.budget_checks(now_unix):
        scope = check.name.split(':', 3)[3]  # tenant:<t> or key:<t>/<k>
        kind, _, who = scope.partition(':')
        tenant, _, key_name = who.partition('/')
        nano = spent_since(
            config.storage,
            tenant,
            key_name if kind == 'key' else None,
            check.period_start,
            check.period_end,
        )
        if not nano:
            continue
        if redis is not None:
            redis.seed_spend(check, nano)
            continue
        now_ns = time.monotonic_ns()
        with table.transaction(
            [check.key], now_ns, timeout=1.0, evict_idle_ns=EVICT_IDLE_NS
        ) as ((base, _),):
            table.words[base] = max(table.words[base], nano)
            table.words[base + 4] = now_ns + int(
                (check.period_end - now_unix + 3600) * 1e9
            )
        log.info(
            'budget spend restored from the ledger',
            extra={'scope': scope, 'period': check.period, 'usd': nano / 1e9},
        )


# a ring record: events.RECORD (264 bytes) after the ring's 8-byte header, rounded up
# to whole cache lines
RECORD_SIZE = 320
assert RECORD_SIZE - 8 >= ev.RECORD.size and RECORD_SIZE % 64 == 0


def layout_for(config):
    shm = config.state.shm
    return Layout(
        slots=2 * config.server.workers + 4,
        stripes=64,
        cell_capacity=shm.metric_cells,
        ring_capacity=shm.ring_records,
        record_size=RECORD_SIZE,
        # NOTE: a multiple of the stripes, as the table needs
        table_capacity=-(-shm.limit_entries // 64) * 64,
        page_size=4 << 20,
        names_capacity=shm.runtime_names + RUNTIME_TENANTS,
    )


def _proc(pid):
    """(cpu seconds, rss bytes, open fds) of a process, or None when it is gone."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        with open(f'/proc/{pid}/statm', 'rb') as f:
            rss = int(f.read().split()[1]) * _PAGE
        fds = len(os.listdir(f'/proc/{pid}/fd'))
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK, rss, fds


class MasterRuntime:
    def __init__(self, config):
        self.config = config
        self.labels = LabelSpace(config)
        self.layout = layout_for(config)
        self.segment = Segment.create(
            self.layout,
            config_hash=config.digest.encode(),
            keep_name=config.state.shm.keep_names,
        )
        self.slots = SlotTable(self.segment)
        self.locks = StripedLocks(self.segment)
        self.page = Page(self.segment)
        self.rings = [Ring(self.segment, s) for s in range(self.layout.slots)]
        self.table = KeyedTable(self.segment, self.locks)
        # names of keys and tenants created at run time, one id each in every worker
        keys = config.state.shm.runtime_names
        self.labels.keys.registry = NameTable(
            self.segment, self.locks, which=0, capacity=keys
        )
        self.labels.tenants.registry = NameTable(
            self.segment, self.locks, which=1, first=keys, capacity=RUNTIME_TENANTS
        )
        self.ledger = Ledger(config.storage)
        self.ledger.ensure()
        # a shared ledger: keys created or revoked on other hosts are noticed here
        shared = self.ledger.database.shared
        self.keystore = KeyStore(config.storage) if shared else None
        self._key_version = None
        self._next_key_poll = 0.0
        self.planner = Planner(config)
        # the budgets of tenants and keys created at run time are restored too
        self._runtime_rules(config)
        self.redis = redis_store(config) if config.state.backend == 'redis' else None
        seed_budgets(config, self.planner, self.table, self.redis)
        self.aggregator = Aggregator(config, self.labels, ledger=self.ledger)
        self.alerts = Alerts(config, self.ledger.database)
        self.alerts.key_source = self._expiring_keys
        self.retired = Totals()
        self.gate = threading.Lock()
        self.stopping = threading.Event()
        self.thread = None
        self.pid = os.getpid()
        self._mask = set()
        # the local response cache's store: every worker maps it, sized at start
        # (made when a config first wants it: a reload may turn the cache on)
        self.cache_dir = None
        self.cache_max_bytes = config.cache.max_bytes
        self._cache_store(config)
        self.reaped = 0
        self._last_requests = -1
        self._last_process = 0.0
        self._process_gauges = {}
        self._page_generation = 0
        self._next_prune = 0.0  # NOTE: prune at the first tick, then hourly
        os.register_at_fork(
            before=self._before_fork,
            after_in_parent=self._after_fork_parent,
            after_in_child=self._after_fork_child,
        )
        self.tick()  # NOTE: so /metrics answers from the first request on

    # -- fork gate ----------------------------------------------------------------

    def _before_fork(self):
        if os.getpid() == self.pid:
            # NOTE: a stop signal that reaches a new worker before it installs its
            # own handlers would run the master's (which only queues it) and be
            # lost: the worker would then serve on until killed. Blocked across the
            # fork, it stays pending until the worker unblocks it, handlers in
            # place (`hooks.post_worker_init`).
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            self.gate.acquire()
            self.ledger.disconnect()  # ORDER: no SQLite connection crosses a fork
            # NOTE: nor the alerts' thread's database or network call: a fork in
            # the middle of one leaves the child a lock no thread will release
            self.alerts.fork_lock.acquire()

    def _after_fork_parent(self):
        if os.getpid() == self.pid:
            self.alerts.fork_lock.release()
            self.gate.release()
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    def _after_fork_child(self):
        if self.alerts.fork_lock.locked():
            self.alerts.fork_lock.release()
        if self.gate.locked():
            self.gate.release()
        self.thread = None  # NOTE: threads do not survive fork; workers never tick

    # -- the loop -----------------------------------------------------------------

    def start(self):
        self.thread = threading.Thread(
            target=self._run, name='aegisflow-aggregator', daemon=True
        )
        self.thread.start()
        self.alerts.start()

    def _runtime_rules(self, config):
        store = KeyStore(config.storage)
        file_tenants = {t.id for t in config.tenants}
        self.planner.set_runtime_tenants(runtime_tenants(store, file_tenants))
        self.planner.set_runtime_keys(runtime_key_limits(store))

    def _expiring_keys(self):
        """[(tenant, key name, expires_at)] of every key with an expiry (the
        alerts' thread calls it)."""
        out = [
            (t.id, k.name, k.scope.expires_at)
            for t in self.config.tenants
            for k in t.keys
            if k.scope.expires_at is not None
        ]
        for row in KeyStore(self.config.storage).active():
            expires_at = row.scope.get('expires_at')
            if expires_at:
                moment = datetime.datetime.fromisoformat(
                    expires_at.replace('Z', '+00:00')
                )
                out.append((row.tenant, row.name, moment.timestamp()))
        return out

    def _run(self):
        interval = self.config.telemetry.flush_interval_ms / 1000
        while not self.stopping.wait(interval):
            try:
                self.tick()
            except Exception:
                log.exception('aggregator tick failed')

    def _prune(self):
        days = self.config.storage.retention_days
        if days is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 3600
        deleted = self.ledger.prune(time.time_ns() - int(days * 86400e9))
        if deleted:
            log.info(
                'pruned usage rows past retention',
                extra={'rows': deleted, 'retention_days': days},
            )

    def tick(self):
        with self.gate:
            payloads = []
            for ring in self.rings:
                payloads.extend(ring.drain())
            self.aggregator.ingest(payloads)
            self._render()
            self._poll_keys()  # ORDER: under the gate: no connection crosses a fork
        self.aggregator.flush()
        self._prune()

    def _poll_keys(self):
        if self.keystore is None or time.monotonic() < self._next_key_poll:
            return
        self._next_key_poll = time.monotonic() + _KEY_POLL_S
        try:
            version = self.keystore.version()
        except DB_ERRORS as exc:
            log.warning('could not poll the key table', extra={'error': str(exc)})
            return
        if self._key_version is not None and version != self._key_version:
            Generation(self.segment.words, USER_WORDS_OFFSET // 8).bump()
        self._key_version = version

    def _render(self):
        totals = self.retired.copy()
        overflow = 0
        for slot in range(self.layout.slots):
            found, over = cells.read_cells(self.segment, slot)
            totals.add(found)
            overflow += over
        requests = totals.requests()
        now = time.monotonic()
        if (
            requests == self._last_requests
            and now - self._last_process < _PROCESS_EVERY_S
        ):
            return
        if now - self._last_process >= _PROCESS_EVERY_S:
            self._process_gauges = self._processes()
            self._last_process = now
        self._last_requests = requests
        counters = {
            'aegisflow_ring_dropped': (
                'Event records dropped because a ring was full.',
                sum(r.dropped for r in self.rings),
            ),
            'aegisflow_ring_torn': (
                'Event records found inconsistent and skipped.',
                sum(r.torn for r in self.rings),
            ),
            'aegisflow_lock_timeouts': (
                'Stripe lock acquisitions that timed out.',
                sum(self.slots.get(s, LOCK_WAITS) for s in range(self.layout.slots)),
            ),
            'aegisflow_metric_cells_overflow': (
                'Counts taken by a fallback cell because a cell table was full.',
                overflow,
            ),
            'aegisflow_workers_reaped': ('Workers reaped by the master.', self.reaped),
        }
        gauges = dict(self._process_gauges)
        gauges.update(self._cache_gauges())
        gauges['aegisflow_config_info'] = (
            'The config serving now (value 1).',
            ['digest'],
            [([self.config.digest], 1)],
        )
        text = self.aggregator.render(totals, counters, gauges)
        self.page.publish(text)

    def _cache_gauges(self):
        if self.cache_dir is None or self.config.cache.backend != 'local':
            return {}
        stats = cache_store.read_stats(self.cache_dir)
        return {
            'aegisflow_cache_bytes': (
                'Bytes of entries in the local response cache.',
                [],
                [([], stats['bytes'])],
            ),
            'aegisflow_cache_entries': (
                'Entries in the local response cache.',
                [],
                [([], stats['entries'])],
            ),
            'aegisflow_cache_evictions_total': (
                'Entries the local response cache evicted to stay within max_bytes.',
                [],
                [([], stats['evictions'])],
            ),
        }

    def _budget_values(self):
        """[(check, scope, spend in nano-USD, requests it refused)] of every
        budget's current period (refusals: this host's shared memory only)."""
        out = []
        for check in self.planner.budget_checks(time.time()):
            scope = check.name.split(':', 3)[3]
            refused = 0
            if self.redis is not None:
                value = self.redis.peek_spend(check)
            else:
                values = self.table.peek(*check.key)
                value = values[0] if values else 0
                refused = values[REFUSED] if values else 0
            out.append((check, scope, value or 0, refused))
        return out

    def _spend(self):
        samples, limits = [], []
        values = self._budget_values()
        self.alerts.budgets(values)
        for check, scope, value, _ in values:
            samples.append(([scope, check.period], value / 1e9))
            limits.append(([scope, check.period], check.limit / 1e9))
        return {
            'aegisflow_budget_spend_usd': (
                'Spend in the current budget period, committed and reserved.',
                ['scope', 'period'],
                samples,
            ),
            'aegisflow_budget_limit_usd': (
                'The budget of the current period (alert on spend / limit).',
                ['scope', 'period'],
                limits,
            ),
        }

    def _breakers(self):
        samples, states, now = [], [], time.monotonic_ns()
        # NOTE: the same list the request path keys breakers by, and the admin API
        for provider, scope in configured_targets(self.config):
            name = f'{provider}/{scope}'
            values = self.table.peek(*breaker_key(name))
            if values is None:
                samples.append(([name], CLOSED))
                states.append((name, STATE_NAMES[CLOSED], 0))
                continue
            state = shown_state(values[0], values[1], now)
            samples.append(([name], state))
            states.append((name, STATE_NAMES[state], values[1]))
        self.alerts.breaker_states(states)
        return {
            'aegisflow_circuit_state': (
                'Circuit breaker per target: 0 closed, 1 open, 2 half-open.',
                ['target'],
                samples,
            )
        }

    def _processes(self):
        samples = {'cpu': [], 'rss': [], 'fds': []}
        procs = [('master', self.pid)] + [
            (f'worker-{s}', pid) for s, pid in self.slots.live() if pid
        ]
        for name, pid in procs:
            got = _proc(pid)
            if got is None:
                continue
            samples['cpu'].append(([name], got[0]))
            samples['rss'].append(([name], got[1]))
            samples['fds'].append(([name], got[2]))
        spend = self._spend() if self.planner.budget_scopes() else {}
        self.alerts.ledger(self.ledger.errors)
        return {
            **spend,
            **self._breakers(),
            **self.alerts.gauges(),
            'aegisflow_process_cpu_seconds_total': (
                'CPU seconds used, by process (worker-N is slot N).',
                ['process'],
                samples['cpu'],
            ),
            'aegisflow_process_resident_memory_bytes': (
                'Resident memory, by process.',
                ['process'],
                samples['rss'],
            ),
            'aegisflow_process_open_fds': (
                'Open file descriptors, by process.',
                ['process'],
                samples['fds'],
            ),
            'aegisflow_workers': (
                'Workers holding a slot.',
                [],
                [([], len(procs) - 1)],
            ),
        }

    # -- worker lifecycle (arbiter thread) ----------------------------------------

    def assign(self):
        return self.slots.assign(self.segment.generation)

    def retire(self, slot, pid):
        with self.gate:
            self.aggregator.ingest(self.rings[slot].drain())
            # ORDER: locks first (the dead worker may hold one), then its parallel
            # slots, then its counters.
            freed = self.locks.release_owned_by(pid) if pid else []
            given = release_dead(self.segment, self.table, slot)
            found, _ = cells.read_cells(self.segment, slot)
            self.retired.add([c for c in found if c[0] >> 56 != ev.F_INFLIGHT])
            cells.reset(self.segment, slot)
            self.slots.free(slot)
            self.reaped += 1
            self._last_requests = -1
        if freed or given:
            log.warning(
                'released what a dead worker held',
                extra={'pid': pid, 'stripes': freed, 'parallel_slots': given},
            )

    def _cache_store(self, config):
        """Make the local store's directory when `config` first wants one; whether
        it was made now."""
        if self.cache_dir is not None or not local_wanted(config):
            return False
        self.cache_dir = cache_store.new_dir()
        self.cache_max_bytes = config.cache.max_bytes
        return True

    def reload(self, config):
        # ORDER: before the new workers are forked: they map it
        made = self._cache_store(config)
        kept = self.cache_dir is not None and not made
        if kept and config.cache.max_bytes != self.cache_max_bytes:
            log.warning(
                'cache.max_bytes changes need a restart; the local cache keeps '
                'its size',
                extra={
                    'max_bytes': self.cache_max_bytes,
                    'configured': config.cache.max_bytes,
                },
            )
        with self.gate:
            self.labels.extend(config)
            self.config = config
            self.planner = Planner(config)
            self._runtime_rules(config)
            self.aggregator.configure(config)
            self.alerts.configure(config)
            self.alerts.start()  # NOTE: when the first webhook came with this config
            self.segment.bump_generation()
            self._last_requests = -1

    def stop(self):
        """Final drain, render and flush; called once every worker is gone."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        self.tick()
        self.alerts.stop()
        self.aggregator.close()
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
