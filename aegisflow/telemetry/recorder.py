"""The worker side: an `Observation` follows each request; `Recorder.finish` turns it
into exact counter updates and one event record per span.

The recorder writes through a sink with three members, so it never sees where they
live: ``words`` (an indexable array of unsigned 64-bit values), ``cell(key, fallback)``
(the index of a counter cell's first value) and ``push(payload)`` (publish a record;
False when it was dropped). Workers use shared memory; `LocalSink` keeps them in this
process. Nothing here does I/O: a finished request costs a few dict lookups, a dozen
integer adds and one ``struct.pack``.
"""

import threading
import time

from aegisflow.telemetry import events as ev
from aegisflow.telemetry.labels import NONE
from aegisflow.telemetry.tracecontext import new_span_id

_ZERO8 = b'\0' * 8


class Attempt:
    __slots__ = (
        'span_id',
        'start_ns',
        't0',
        'duration_ns',
        'provider',
        'status',
        'model',
        'response_model',
    )

    def __init__(self, provider, model):
        self.span_id = new_span_id()
        self.start_ns = time.time_ns()
        self.t0 = time.perf_counter_ns()
        self.duration_ns = 0
        self.provider = provider
        self.status = 0
        self.model = model
        self.response_model = ''

    def end(self, status):
        self.duration_ns = time.perf_counter_ns() - self.t0
        self.status = status


_AUDITED = 32  # policy records per request; past it, only counted


class Observation:
    """What one request did; filled in along the request path."""

    __slots__ = (
        'request_id',
        'start_ns',
        't0',
        'trace_id',
        'span_id',
        'parent_id',
        'flags',
        'route',
        'tenant',
        'key',
        'model',
        'provider',
        'requested_model',
        'response_model',
        'prompt',
        'completion',
        'cached',
        'cache_write',
        'reasoning',
        'ttft_ns',
        'attempts',
        'done',
        'status',
        'reserved',
        'reject',
        'priced_model',
        'provider_name',
        'policy_hits',
        'client',
        'cache',
        'guard_runs',
    )

    def __init__(self, request_id, trace_id, parent_id, sampled, remote, route, client):
        self.request_id = request_id
        self.start_ns = time.time_ns()
        self.t0 = time.perf_counter_ns()
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.parent_id = parent_id
        self.flags = (ev.SAMPLED if sampled else 0) | (
            ev.REMOTE_PARENT if remote else 0
        )
        self.route = route
        self.tenant = self.key = self.model = self.provider = NONE
        self.requested_model = self.response_model = ''
        self.prompt = self.completion = self.cached = self.reasoning = 0
        self.cache_write = 0
        self.ttft_ns = 0
        self.attempts = []
        self.done = False
        self.status = 0
        self.reserved = 0  # tokens reserved at admission
        self.reject = 0  # 1-based index into limits.plan.REASONS when refused
        self.priced_model = ''  # the upstream model, for prices
        self.provider_name = ''
        self.policy_hits = None  # aegisflow.policy.engine.Hit, both phases
        self.client = client  # the client's address, packed (events.pack_address)
        self.cache = 0  # the response cache's result (events.CACHE_RESULTS), 1-based
        self.guard_runs = None  # aegisflow.guardrails.GuardRun, both phases

    def usage(self, usage):
        """Take token counts from an OpenAI ``usage`` object."""
        if not isinstance(usage, dict):
            return
        self.prompt = _int(usage.get('prompt_tokens'))
        self.completion = _int(usage.get('completion_tokens'))
        details = usage.get('prompt_tokens_details')
        if isinstance(details, dict):
            self.cached = _int(details.get('cached_tokens'))
            self.cache_write = _int(details.get('cache_write_tokens'))
        details = usage.get('completion_tokens_details')
        if isinstance(details, dict):
            self.reasoning = _int(details.get('reasoning_tokens'))


def _int(value):
    return value if isinstance(value, int) and 0 <= value < 1 << 32 else 0


_VERDICT = ('allow', 'block', 'error', 'timeout')


class Recorder:
    __slots__ = ('sink', 'labels', 'prices', 'sampler', '_lock')

    def __init__(self, sink, labels, prices, sampler):
        self.sink = sink
        self.labels = labels
        self.prices = prices
        self.sampler = sampler
        # NOTE: the cells and the ring have one writer per worker *process*, but a
        # gthread worker finishes requests on many threads: two threads must not
        # read-add-store the same counter or claim the same ring record at once.
        self._lock = threading.Lock()
        for family in ev.FAMILIES:
            sink.reserve(ev.fallback(family))

    def begin(self, request_id, traceparent_header, route, client=''):
        """`client`: the client's address (text), for the access log and spans."""
        trace_id, parent, sampled, remote = self.sampler.start(traceparent_header)
        return Observation(
            request_id,
            trace_id,
            parent,
            sampled,
            remote,
            route,
            ev.pack_address(client) if client else ev.NO_ADDRESS,
        )

    def finish(self, obs, status, *, flags=0):
        """Count the request once. Safe to call twice: the second call does nothing."""
        if obs.done:
            return
        with self._lock:
            self._finish(obs, status, flags)

    def _finish(self, obs, status, flags):
        obs.done = True
        obs.status = status
        obs.flags |= flags
        duration = time.perf_counter_ns() - obs.t0
        sink, labels = self.sink, self.labels
        words, cell = sink.words, sink.cell
        rid = ev.fixed(obs.request_id, ev.REQUEST_ID_SIZE)
        provider_name = labels.providers.name(obs.provider) if obs.provider else None
        cost, priced = self.prices.cost_nano(
            obs.response_model or labels.models.name(obs.model),
            provider_name,
            obs.prompt,
            obs.completion,
            obs.cached,
            obs.cache_write,
        )
        if not priced and (obs.prompt or obs.completion):
            obs.flags |= ev.UNPRICED
        tm = obs.tenant << 42 | obs.model << 28
        if obs.cache:
            b = cell(ev.F_CACHE << 56 | tm | obs.cache, ev.FALLBACK_CACHE)
            words[b] += 1
            if obs.cache == ev.CACHE_HIT:
                words[b + 1] += cost
        if (obs.prompt or obs.completion) and obs.cache != ev.CACHE_HIT:
            b = cell(ev.F_TOKENS << 56 | tm, ev.FALLBACK_TOKENS)
            words[b] += obs.prompt
            words[b + 1] += obs.completion
            words[b + 2] += obs.cached
            words[b + 3] += cost
            words[b + 4] += obs.reasoning
            if obs.flags & ev.UNPRICED:
                words[b + 5] += 1
            words[b + 6] += obs.cache_write
        b = cell(ev.F_DURATION << 56 | tm, ev.FALLBACK_DURATION)
        words[b + ev.duration_bucket(duration)] += 1
        words[b + ev.SUM_INDEX] += duration // 1000
        if obs.ttft_ns:
            b = cell(ev.F_TTFT << 56 | tm, ev.FALLBACK_TTFT)
            words[b + ev.ttft_bucket(obs.ttft_ns)] += 1
            words[b + ev.SUM_INDEX] += obs.ttft_ns // 1000
        if obs.reserved or obs.flags & ev.DEGRADED:
            b = cell(ev.F_LIMITS << 56 | tm, ev.FALLBACK_LIMITS)
            words[b] += obs.reserved
            if obs.flags & ev.DEGRADED:
                words[b + 1] += 1
        if obs.reject:
            b = cell(ev.F_REJECTS << 56 | tm | obs.reject, ev.FALLBACK_REJECTS)
            words[b] += 1
        if obs.policy_hits or obs.guard_runs:
            self._decisions(obs, rid)
        for i, attempt in enumerate(obs.attempts):
            b = cell(
                ev.F_UPSTREAM << 56 | attempt.provider << 18 | attempt.status,
                ev.FALLBACK_UPSTREAM,
            )
            words[b] += 1
            if i:
                words[b + 1] += 1
            sink.push(self._attempt_record(obs, attempt, i, rid))
        # ORDER: the request count moves last: the master re-renders the page when it
        # moves, and must then find every other count of this request in place
        b = cell(
            ev.F_REQUESTS << 56 | tm | obs.provider << 18 | obs.route << 10 | status,
            ev.FALLBACK_REQUESTS,
        )
        words[b] += 1
        if obs.flags & ev.STREAM_ERROR:
            words[b + 1] += 1
        if obs.flags & ev.CLIENT_ABORT:
            words[b + 2] += 1
        sink.push(
            ev.RECORD.pack(
                ev.REQUEST,
                ev.VERSION,
                obs.flags,
                obs.start_ns,
                duration,
                obs.ttft_ns,
                obs.trace_id,
                obs.span_id,
                obs.parent_id,
                obs.tenant,
                obs.key,
                obs.model,
                obs.provider,
                status,
                len(obs.attempts),
                obs.prompt,
                obs.completion,
                obs.cached,
                obs.reasoning,
                cost,
                obs.route,
                len(obs.attempts),
                0,
                obs.cache,
                obs.cache_write,
                rid,
                ev.fixed(obs.response_model),
                ev.fixed(obs.requested_model),
                obs.client,
            )
        )

    def _decisions(self, obs, rid):
        if obs.policy_hits:
            self._policy(obs, rid)
        if obs.guard_runs:
            self._guards(obs, rid)

    def _policy(self, obs, rid):
        """Count each policy decision; a record (audit row, guardrail span) for each
        block and redaction, at most `_AUDITED` per request (the count stays exact)."""
        sink = self.sink
        words, cell = sink.words, sink.cell
        audited = 0
        now = time.time_ns()
        sampled = obs.flags & ev.SAMPLED
        for hit in obs.policy_hits:
            policy = hit.policy
            action = ev.POLICY_ACTIONS.index(hit.action)
            phase = 0 if policy.phase == 'input' else 1
            b = cell(
                ev.F_POLICY << 56
                | obs.tenant << 42
                | policy.label << 28
                | phase << 18
                | action << 1
                | policy.dry_run,
                ev.FALLBACK_POLICY,
            )
            words[b] += 1
            # NOTE: a guardrail's verdicts have records of their own (`_guards`)
            if action < 3 or audited >= _AUDITED or hit.path == 'guard':
                continue
            audited += 1
            sink.push(
                ev.POLICY_RECORD.pack(
                    ev.POLICY,
                    ev.VERSION,
                    (ev.DRY_RUN if policy.dry_run else 0) | sampled,
                    now,
                    obs.trace_id,
                    obs.span_id,
                    obs.tenant,
                    obs.key,
                    action,
                    phase,
                    0,
                    min(hit.start, 0xFFFFFFFF),
                    min(hit.end, 0xFFFFFFFF),
                    rid,
                    ev.fixed(policy.name),
                    ev.fixed(hit.kind, 32),
                    ev.fixed(hit.path, 64),
                )
            )

    def _guards(self, obs, rid):
        """Count each guardrail verdict by category, with its latency; a record
        (a guardrail span; an audit row for a block) for each, at most `_AUDITED`
        per request."""
        sink = self.sink
        words, cell = sink.words, sink.cell
        now = time.time_ns()
        sampled = obs.flags & ev.SAMPLED
        for n, run in enumerate(obs.guard_runs):
            policy, verdict = run.policy, run.verdict
            cached = 1 if verdict.cached else 0
            ids = [policy.category_id(c) for c in verdict.categories] or [0]
            base = ev.F_GUARD << 56 | obs.tenant << 42 | policy.label << 28
            for i, cid in enumerate(ids):
                b = cell(
                    base | cid << 18 | verdict.code << 1 | cached, ev.FALLBACK_GUARD
                )
                words[b] += 1
                if i == 0:
                    words[b + 1] += verdict.latency_ns // 1000
            if n >= _AUDITED:
                continue
            flags = ev.GUARD | (ev.GUARD_CACHED if cached else 0) | sampled
            sink.push(
                ev.POLICY_RECORD.pack(
                    ev.POLICY,
                    ev.VERSION,
                    flags | (ev.DRY_RUN if policy.dry_run else 0),
                    now,
                    obs.trace_id,
                    obs.span_id,
                    obs.tenant,
                    obs.key,
                    ev.POLICY_ACTIONS.index(run.action),
                    0 if policy.phase == 'input' else 1,
                    min(verdict.latency_ns // 1_000_000, 0xFFFF),
                    0,
                    0,
                    rid,
                    ev.fixed(policy.name),
                    ev.fixed(
                        ', '.join(verdict.categories) or _VERDICT[verdict.code], 32
                    ),
                    ev.fixed('guard', 64),
                )
            )

    def _attempt_record(self, obs, a, index, rid):
        return ev.RECORD.pack(
            ev.ATTEMPT,
            ev.VERSION,
            obs.flags & ev.SAMPLED,
            a.start_ns,
            a.duration_ns,
            0,
            obs.trace_id,
            a.span_id,
            obs.span_id,
            obs.tenant,
            obs.key,
            obs.model,
            a.provider,
            a.status,
            index,
            0,
            0,
            0,
            0,
            0,
            obs.route,
            0,
            0,
            0,
            0,
            rid,
            ev.fixed(a.response_model),
            ev.fixed(a.model),
            ev.NO_ADDRESS,
        )


class LocalSink:
    """Counters and records kept in this process (tests; the app outside Gunicorn)."""

    def __init__(self):
        self.words = []
        self.index = {}
        self.records = []

    def reserve(self, key):
        self.cell(key, key)

    def cell(self, key, fallback):
        base = self.index.get(key)
        if base is None:
            base = self.index[key] = len(self.words)
            self.words.extend([0] * 15)
        return base

    def push(self, payload):
        self.records.append(payload)
        return True

    def cells(self):
        return [(k, tuple(self.words[b : b + 15])) for k, b in self.index.items()]
