"""The fixed-size record each request leaves in its worker's ring, and the counter
families each request adds to its worker's metric cells.

Record (264 bytes payload, little-endian, `RECORD`, version 3):

    kind u16 (REQUEST or ATTEMPT)  version u16  flags u32
    start_unix_ns u64  duration_ns u64  ttft_ns u64
    trace_id 16s  span_id 8s  parent_span_id 8s
    tenant u16  key u16  model u16  provider u16  status u16  attempt u16
    prompt u32  completion u32  cached u32  reasoning u32
    cost_nano u64
    route u8  attempts u8  outcome u8  cache u8  cache_write u32
    request_id 44s  response_model 48s  requested_model 48s
    client 16s (the client's address: IPv6, or IPv4 mapped into IPv6; zeros: none)

A REQUEST record is the server span of a request; an ATTEMPT record is one upstream
call (a client span) whose parent is the request's span. A POLICY record (its own
layout, `POLICY_RECORD`, same leading kind and version) is one block or redaction by
a policy, or one guardrail's verdict (flag GUARD, whatever it was): the master writes
blocks and redactions to the audit log and exports each as a guardrail span:

    kind u16 (POLICY)  version u16  flags u32 (DRY_RUN, GUARD, GUARD_CACHED)
    ts_unix_ns u64  trace_id 16s  span_id 8s (the request's span)  tenant u16
    key u16  action u8 (allow for a guardrail that let it pass)  phase u8
    latency_ms u16 (a guardrail's)  start u32  end u32
    request_id 44s  policy 48s  finding 32s  field_path 64s Strings are UTF-8, truncated
to their field's size (request_id 44 bytes, models 48), NUL-padded. ``cached`` counts
prompt tokens read from a provider's prompt cache, ``cache_write`` those written to it;
both are part of ``prompt``. ``cache`` is the response cache's word on the
request (0: the cache did not apply; else 1 + its index in `CACHE_RESULTS`); on a
hit, the tokens and ``cost_nano`` are those of the stored answer: what the hit saved.

Counter cells are keyed ``family << 56 | a << 42 | b << 28 | c << 18 | d``, with the
label ids of `labels.LabelSpace` (a: tenant, b: model, c: provider, d: status).
"""

import bisect
import functools
import ipaddress
import struct

RECORD = struct.Struct('<HHIQQQ16s8s8sHHHHHHIIIIQBBBBI44s48s48s16s')
assert RECORD.size == 264
POLICY_RECORD = struct.Struct('<HHIQ16s8sHHBBHII44s48s32s64s4x')
assert POLICY_RECORD.size == 248

VERSION = 3
NO_ADDRESS = bytes(16)
REQUEST_ID_SIZE = 44
REQUEST, ATTEMPT, POLICY = 1, 2, 3
POLICY_ACTIONS = ('allow', 'log', 'warn', 'redact', 'block')
POLICY_PHASES = ('input', 'output')

# flags
STREAMED = 1
SAMPLED = 2
CLIENT_ABORT = 4
STREAM_ERROR = 8
REMOTE_PARENT = 16
UNPRICED = 32
DEGRADED = 64  # admitted without the limits store (fail open)
CANCELLED = 128  # a guardrail blocked it after the upstream call began: cut short
DRY_RUN = 1  # POLICY records: what a dry-run policy would have done
GUARD = 4  # POLICY records: a guardrail's verdict (its latency in `latency_ms`)
GUARD_CACHED = 8  # POLICY records: a guardrail's verdict from the verdict cache

# the response cache's result of a request (X-AegisFlow-Cache)
CACHE_RESULTS = ('hit', 'miss', 'bypass', 'store-skipped')
CACHE_HIT = 1  # the `cache` byte of a hit

# routes (what was called)
ROUTES = (
    'other',
    'chat',
    'models',
    'messages',
    'embeddings',
    'count_tokens',
    'responses',
    'guardrail',  # a guardrail's own call (a moderation or guard model request)
)
UNLEDGERED = frozenset((ROUTES.index('count_tokens'),))  # counted, no usage row
ROUTE_IDS = {name: i for i, name in enumerate(ROUTES)}

# counter families and what their values hold
# a=tenant b=model c=provider d=route<<10|status: [count, stream_errors, aborts]
F_REQUESTS = 1
F_TOKENS = 2  # a=tenant b=model: [prompt, completion, cached, cost_nano, reasoning,
#               unpriced_requests, cache_write]
F_DURATION = 3  # a=tenant b=model: [buckets..., +Inf, sum_us]
F_TTFT = 4  # a=tenant b=model: same shape as F_DURATION
F_UPSTREAM = 5  # c=provider d=upstream status: [attempts, retries]
F_REJECTS = 6  # a=tenant b=model d=reason (1-based in limits.plan.REASONS): [count]
F_LIMITS = 7  # a=tenant b=model: [tokens reserved, degraded admissions]
F_INFLIGHT = 8  # low 56 bits: a limiter entry; [parallel slots held] (not a metric)
F_POLICY = 9  # a=tenant b=policy c=phase d=action<<1|dry_run: [decisions]
F_CACHE = 10  # a=tenant b=model d=cache byte: [requests, saved cost_nano]
F_GUARD = 11  # a=tenant b=policy c=category (0 none, 1.. configured, 1023 other)
#               d=verdict<<1|cached: [verdicts, latency_us]
FAMILIES = (
    F_REQUESTS,
    F_TOKENS,
    F_DURATION,
    F_TTFT,
    F_UPSTREAM,
    F_REJECTS,
    F_LIMITS,
    F_INFLIGHT,
    F_POLICY,
    F_CACHE,
    F_GUARD,
)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)
SUM_INDEX = len(DURATION_BUCKETS) + 1  # after the +Inf bucket
_DUR_NS = [int(b * 1e9) for b in DURATION_BUCKETS]
_TTFT_NS = [int(b * 1e9) for b in TTFT_BUCKETS]


def key(family, a=0, b=0, c=0, d=0):
    return family << 56 | a << 42 | b << 28 | c << 18 | d


def unkey(k):
    """(family, a, b, c, d) of a cell key."""
    return (
        k >> 56,
        (k >> 42) & 0x3FFF,
        (k >> 28) & 0x3FFF,
        (k >> 18) & 0x3FF,
        k & 0x3FFFF,
    )


def fallback(family):
    """The cell that takes a family's counts when the cell table is full."""
    return key(family, 1, 1, 1, 0)


FALLBACK_REQUESTS = fallback(F_REQUESTS)
FALLBACK_TOKENS = fallback(F_TOKENS)
FALLBACK_DURATION = fallback(F_DURATION)
FALLBACK_TTFT = fallback(F_TTFT)
FALLBACK_UPSTREAM = fallback(F_UPSTREAM)
FALLBACK_REJECTS = fallback(F_REJECTS)
FALLBACK_LIMITS = fallback(F_LIMITS)
FALLBACK_INFLIGHT = fallback(F_INFLIGHT)
FALLBACK_POLICY = fallback(F_POLICY)
FALLBACK_CACHE = fallback(F_CACHE)
FALLBACK_GUARD = fallback(F_GUARD)


def duration_bucket(ns):
    return bisect.bisect_left(_DUR_NS, ns)


def ttft_bucket(ns):
    return bisect.bisect_left(_TTFT_NS, ns)


def fixed(text, size=48):
    """UTF-8 bytes of `text`, cut to `size` without splitting a character."""
    if text.isascii():
        return text[:size].encode()
    raw = text.encode('utf-8', 'replace')
    if len(raw) <= size:
        return raw
    return raw[:size].decode('utf-8', 'ignore').encode()


def text(raw):
    return raw.rstrip(b'\0').decode('utf-8', 'replace')


@functools.lru_cache(maxsize=4096)
def pack_address(address):
    """16 bytes for an address text (IPv4 mapped into IPv6); zeros when it is not
    an address (a Unix socket peer, nothing). PERF: on every request; clients come
    back, so the answers are kept."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return NO_ADDRESS
    if ip.version == 4:
        return ipaddress.IPv6Address(f'::ffff:{ip}').packed
    return ip.packed


def unpack_address(raw):
    """The address text of `pack_address` bytes, or '' for none."""
    if raw == NO_ADDRESS:
        return ''
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped or ip)


class Event:
    """A decoded record."""

    __slots__ = (
        'kind',
        'flags',
        'start_ns',
        'duration_ns',
        'ttft_ns',
        'trace_id',
        'span_id',
        'parent_id',
        'tenant',
        'key',
        'model',
        'provider',
        'status',
        'attempt',
        'prompt',
        'completion',
        'cached',
        'reasoning',
        'cost_nano',
        'cache_write',
        'route',
        'attempts',
        'cache',
        'request_id',
        'response_model',
        'requested_model',
        'client',
    )

    def __init__(self, payload):
        (
            self.kind,
            version,
            self.flags,
            self.start_ns,
            self.duration_ns,
            self.ttft_ns,
            self.trace_id,
            self.span_id,
            self.parent_id,
            self.tenant,
            self.key,
            self.model,
            self.provider,
            self.status,
            self.attempt,
            self.prompt,
            self.completion,
            self.cached,
            self.reasoning,
            self.cost_nano,
            self.route,
            self.attempts,
            _,
            self.cache,
            self.cache_write,
            rid,
            rmodel,
            qmodel,
            client,
        ) = RECORD.unpack_from(payload)
        if version != VERSION:
            raise ValueError(f'record version {version}, expected {VERSION}')
        self.request_id = text(rid)
        self.response_model = text(rmodel)
        self.requested_model = text(qmodel)
        self.client = unpack_address(client)


class PolicyEvent:
    """A decoded POLICY record."""

    __slots__ = (
        'flags',
        'ts_ns',
        'latency_ms',
        'trace_id',
        'span_id',
        'tenant',
        'key',
        'action',
        'phase',
        'start',
        'end',
        'request_id',
        'policy',
        'finding',
        'path',
    )

    def __init__(self, payload):
        (
            kind,
            version,
            self.flags,
            self.ts_ns,
            self.trace_id,
            self.span_id,
            self.tenant,
            self.key,
            action,
            phase,
            self.latency_ms,
            self.start,
            self.end,
            rid,
            policy,
            finding,
            path,
        ) = POLICY_RECORD.unpack_from(payload)
        if kind != POLICY or version != VERSION:
            raise ValueError(f'not a policy record: kind {kind}, version {version}')
        self.action = (
            POLICY_ACTIONS[action] if action < len(POLICY_ACTIONS) else 'other'
        )
        self.phase = POLICY_PHASES[phase] if phase < len(POLICY_PHASES) else 'other'
        self.request_id = text(rid)
        self.policy = text(policy)
        self.finding = text(finding)
        self.path = text(path)
