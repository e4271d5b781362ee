"""W3C trace context: read ``traceparent``, mint ids, decide sampling.

A valid incoming ``traceparent`` makes the request's span its child and its sampled
flag decides (parent-based sampling); otherwise a new trace starts and is sampled when
its id falls under ``sample_ratio`` (the same rule as OpenTelemetry's
TraceIdRatioBased sampler, so the decision is stable for a trace id).
"""

import random
import re

_TRACEPARENT = re.compile(
    r'([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z'
)
_ZERO_TRACE = b'\0' * 16
_ZERO_SPAN = b'\0' * 8


def parse_traceparent(header):
    """(trace_id, parent_span_id, sampled) from a header, or None when invalid."""
    if not header or len(header) > 512:
        return None
    m = _TRACEPARENT.match(header.strip().lower())
    if m is None or m.group(1) == 'ff':
        return None
    trace_id = bytes.fromhex(m.group(2))
    parent = bytes.fromhex(m.group(3))
    if trace_id == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    return trace_id, parent, bool(int(m.group(4), 16) & 1)


# NOTE: random (not os.urandom) as OpenTelemetry's own id generator does: ids need to
# be unique, not secret, and this is on every request. CPython reseeds the generator
# in a forked child, so workers never share a sequence.
_bits = random.getrandbits


def new_span_id():
    return _bits(64).to_bytes(8, 'big')


def new_request_id():
    return f'{_bits(96):024x}'


class Sampler:
    """`ratio` of new traces sampled; `parent_based`: an incoming traceparent's
    sampled flag decides instead (OpenTelemetry's ParentBased sampler)."""

    __slots__ = ('bound', 'parent_based')

    def __init__(self, ratio, parent_based=True):
        self.bound = round(ratio * (1 << 64))
        self.parent_based = parent_based

    @classmethod
    def of(cls, traces):
        """The sampler of a `TracesConfig`."""
        return cls(traces.sample_ratio, traces.parent_based)

    def start(self, header):
        """(trace_id, parent_span_id or zeros, sampled, remote) for a new request."""
        parsed = parse_traceparent(header)
        if parsed is not None:
            trace_id, parent, sampled = parsed
            if not self.parent_based:
                sampled = int.from_bytes(trace_id[8:], 'big') < self.bound
            return trace_id, parent, sampled, True
        trace_id = _bits(128).to_bytes(16, 'big')
        sampled = int.from_bytes(trace_id[8:], 'big') < self.bound
        return trace_id, _ZERO_SPAN, sampled, False


def traceparent(trace_id, span_id, sampled):
    return f'00-{trace_id.hex()}-{span_id.hex()}-{"01" if sampled else "00"}'
