"""Alert webhooks, sent from the master's side (``alerts:`` in the config).

The aggregator's tick looks at what it reads anyway (budget spend, breaker states,
the ledger's error count) and hands each event to this module without waiting;
a thread of its own ("aegisflow-alerts") claims and delivers them, so a slow or
dead receiver never delays the tick, and never a request.

Events: ``budget.warning`` (a budget's spend crossed its ``warn_at``),
``budget.exhausted``, ``breaker.opened``, ``breaker.closed``, ``key.expiring``
(7 days and 1 day before a key's ``expires_at``), ``ledger.error``.

At most once per subject and period: before its first delivery an alert claims a
row ``(event, subject, period)`` in the ledger database (``alerts_sent``); only the
process whose insert made the row sends it. So a budget crossed by several workers
at once is one alert, and with a PostgreSQL ledger, one for all the hosts.

A delivery is a JSON POST, signed: ``X-AegisFlow-Signature: t=<unix seconds>,
v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's secret>``. A receiver
checks the HMAC and that ``t`` is recent. A failed delivery (an error, a timeout,
or a status other than 2xx) is retried with backoff (1 s doubling to 60 s) for the
webhook's ``retry_s``, then logged and counted as failed.
"""

import collections
import hashlib
import hmac
import logging
import secrets
import threading
import time

import orjson
import urllib3

from aegisflow.config.scope import iso
from aegisflow.usage.database import ERRORS as DB_ERRORS
from aegisflow.usage.database import Database

log = logging.getLogger('aegisflow.alerts')

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_sent (
    event TEXT NOT NULL,
    subject TEXT NOT NULL,
    period TEXT NOT NULL,
    sent_ns INTEGER NOT NULL,
    PRIMARY KEY (event, subject, period)
);
"""
_CLAIM = (
    'INSERT INTO alerts_sent (event, subject, period, sent_ns) VALUES (?, ?, ?, ?) '
    'ON CONFLICT DO NOTHING RETURNING event'
)
EXPIRING = ((7 * 86400, '7d'), (86400, '1d'))
_KEYS_EVERY_S = 60.0
_BACKOFF_MAX_S = 60.0


class Delivery:
    __slots__ = ('target', 'body', 'event', 'due', 'deadline', 'delay', 'claimed')

    def __init__(self, target, body, event, now):
        self.target = target
        self.body = body
        self.event = event
        self.due = now
        self.deadline = now + target.retry_s
        self.delay = 1.0
        self.claimed = False


def sign(secret, body, ts):
    """The ``X-AegisFlow-Signature`` value of `body` sent at unix time `ts`."""
    mac = hmac.new(secret.encode(), f'{ts}.'.encode() + body, hashlib.sha256)
    return f't={ts},v1={mac.hexdigest()}'


class Alerts:
    def __init__(self, config, database=None, *, clock=time.time):
        self.targets = config.alerts
        self.database = database or Database.of(config.storage)
        self.clock = clock
        self.queued = set()  # (event, subject, period) handed over by this process
        self.pending = collections.deque()  # [(event, subject, period, data)]
        self.retrying = []  # [Delivery]
        self.counts = collections.Counter()  # (event, outcome)
        self.breakers = {}  # target -> (state name, open until)
        self.ledger_errors = None
        self.key_source = None  # () -> [(tenant, key name, expires_at)]
        self._next_keys = 0.0
        self._schema_ready = False
        self.http = urllib3.PoolManager(num_pools=4, maxsize=2, retries=False)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = None
        # NOTE: held by this thread around each database or network call, and by
        # the master around a fork (never by the aggregator's tick)
        self.fork_lock = threading.Lock()

    def configure(self, config):
        self.targets = config.alerts

    def wants(self, event):
        return any(event in t.events for t in self.targets)

    # -- what the tick sees (never blocks) ---------------------------------------

    def emit(self, event, subject, period, data):
        if not self.wants(event):
            return
        key = (event, subject, period)
        if key in self.queued:
            return
        self.queued.add(key)
        self.pending.append((event, subject, period, data))
        self.wake.set()

    def budgets(self, values):
        """`values`: [(limits.plan.Check, scope, spend in nano-USD, requests it
        refused)]. A budget is exhausted once it refused a request (its spend never
        passes the limit: a reservation that would is refused) or reached it."""
        for check, scope, spent, refused in values:
            if not check.limit:
                continue
            period = f'{check.period}:{iso(check.period_start)}'
            data = {
                'scope': scope,
                'period': check.period,
                'period_start': iso(check.period_start),
                'limit_usd': check.limit / 1e9,
                'spent_usd': spent / 1e9,
                'warn_at': check.warn_at,
            }
            if spent >= check.limit or refused:
                self.emit(
                    'budget.exhausted', scope, period, dict(data, refused=refused)
                )
            if check.warn_at and spent >= check.warn_at * check.limit:
                self.emit('budget.warning', scope, period, data)

    def breaker_states(self, states):
        """`states`: [(target, state name, open until (monotonic ns))]."""
        for target, state, until in states:
            before = self.breakers.get(target)
            self.breakers[target] = (state, until)
            if before is None:
                continue
            was_open = before[0] != 'closed'
            if state == 'open' and (not was_open or before[1] != until):
                self.emit('breaker.opened', target, str(until), {'target': target})
            elif state == 'closed' and was_open:
                self.emit('breaker.closed', target, str(before[1]), {'target': target})

    def ledger(self, errors):
        if self.ledger_errors is not None and errors > self.ledger_errors:
            hour = iso(self.clock() // 3600 * 3600)
            self.emit(
                'ledger.error',
                'ledger',
                hour,
                {'errors': errors, 'database': self.database.describe()},
            )
        self.ledger_errors = errors

    def _expiring(self, now):
        if self.key_source is None or now < self._next_keys:
            return
        self._next_keys = now + _KEYS_EVERY_S
        try:
            keys = self.key_source()
        except DB_ERRORS as exc:
            log.warning('could not read the keys for expiry', extra={'error': str(exc)})
            return
        for tenant, name, expires_at in keys:
            left = expires_at - now
            for before, label in EXPIRING:
                if 0 < left <= before:
                    self.emit(
                        'key.expiring',
                        f'{tenant}/{name}',
                        f'{label}:{iso(expires_at)}',
                        {
                            'tenant': tenant,
                            'key': name,
                            'expires_at': iso(expires_at),
                            'within': label,
                        },
                    )

    # -- the sender ---------------------------------------------------------------

    def start(self):
        if not self.targets or self.thread is not None:
            return
        self.thread = threading.Thread(
            target=self._run, name='aegisflow-alerts', daemon=True
        )
        self.thread.start()

    def stop(self, timeout=5.0):
        """Stop, after one more pass over what is due (a bounded wait)."""
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self):
        while True:
            now = self.clock()
            with self.fork_lock:
                self._expiring(now)
            self._deliver_due(now)
            if self.stopping.is_set():
                return
            waits = [d.due - self.clock() for d in self.retrying]
            timeout = max(0.05, min(waits + [1.0]))
            self.wake.wait(timeout)
            self.wake.clear()

    def _deliver_due(self, now):
        while self.pending:
            event, subject, period, data = self.pending.popleft()
            with self.fork_lock:
                claimed = self._claim(event, subject, period)
            if not claimed:
                self.counts[(event, 'duplicate')] += 1
                continue
            body = orjson.dumps(
                {
                    'id': 'alrt_' + secrets.token_hex(8),
                    'event': event,
                    'created_at': iso(now),
                    'subject': subject,
                    'period': period,
                    'data': data,
                }
            )
            for target in self.targets:
                if event in target.events:
                    self.retrying.append(Delivery(target, body, event, now))
        still = []
        for delivery in self.retrying:
            if delivery.due > self.clock():
                still.append(delivery)
                continue
            with self.fork_lock:
                sent = self._post(delivery)
            if sent:
                self.counts[(delivery.event, 'sent')] += 1
            elif self.clock() + delivery.delay > delivery.deadline:
                self.counts[(delivery.event, 'failed')] += 1
                log.error(
                    'alert not delivered; gave up',
                    extra={'event': delivery.event, 'url': delivery.target.url},
                )
            else:
                self.counts[(delivery.event, 'retried')] += 1
                delivery.due = self.clock() + delivery.delay
                delivery.delay = min(delivery.delay * 2, _BACKOFF_MAX_S)
                still.append(delivery)
        self.retrying = still

    def _claim(self, event, subject, period):
        """Whether this process makes the row (event, subject, period): the one
        that sends it. When the database cannot say, send (a duplicate is better
        than a lost alert)."""
        try:
            db = self.database.connect()
            try:
                if not self._schema_ready:
                    self.database.create_schema(db, SCHEMA)
                    self._schema_ready = True
                row = db.execute(
                    _CLAIM, (event, subject, period, time.time_ns())
                ).fetchone()
            finally:
                db.close()
        except DB_ERRORS as exc:
            log.warning(
                'could not claim an alert; sending it', extra={'error': str(exc)}
            )
            return True
        return row is not None

    def _post(self, delivery):
        target = delivery.target
        ts = int(self.clock())
        headers = {
            'Content-Type': 'application/json',
            'User-Agent': 'aegisflow-alerts',
            'X-AegisFlow-Event': delivery.event,
            'X-AegisFlow-Signature': sign(target.secret, delivery.body, ts),
        }
        try:
            r = self.http.request(
                'POST',
                target.url,
                body=delivery.body,
                headers=headers,
                timeout=target.timeout_ms / 1000,
            )
        except urllib3.exceptions.HTTPError as exc:
            log.warning(
                'alert delivery failed; will retry',
                extra={'event': delivery.event, 'url': target.url, 'error': str(exc)},
            )
            return False
        if 200 <= r.status < 300:
            return True
        log.warning(
            'alert delivery refused; will retry',
            extra={'event': delivery.event, 'url': target.url, 'status': r.status},
        )
        return False

    def gauges(self):
        return {
            'aegisflow_alerts_total': (
                'Alert deliveries by event and outcome (sent, retried, failed, '
                'duplicate: another process or host sent it).',
                ['event', 'outcome'],
                [([e, o], n) for (e, o), n in sorted(self.counts.items())],
            )
        }
