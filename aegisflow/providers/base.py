"""The provider interface: one small class per upstream type.

The gateway speaks OpenAI's chat format internally. A provider turns a validated
`ChatRequest` into an upstream call and answers in that format:

- ``complete(request, model)`` returns a ``chat.completion`` dict;
- ``stream(request, model)`` yields ``chat.completion.chunk`` dicts and ends with a
  usage chunk (``choices: []``) whenever the upstream reports usage.

Failures are raised as `ApiError`s built by `upstream_error`, so every provider maps
upstream statuses the same way. ``stream`` must raise before its first yield for any
failure it can see then; a failure after it is raised from the iterator and ends the
client's stream with an error event.

Adding a provider type: subclass `Provider`, implement ``complete`` and ``stream``,
and register the class in ``aegisflow/providers/__init__.py``.
"""

import math
import time
from email.utils import parsedate_to_datetime

from aegisflow.errors import InvalidRequest
from aegisflow.errors import RateLimited
from aegisflow.errors import UpstreamFailed
from aegisflow.errors import UpstreamTimeout
from aegisflow.globs import GlobSet
from aegisflow.providers.scrub import Scrubber


def iter_lines(resp, size=65536):
    """Lines of a streaming response as soon as they arrive.

    NOTE: ``read1`` returns whatever has arrived: a reader of fixed-size blocks
    would wait, on a stream without chunked encoding, for the whole block (or the
    end) before the first line, and the first token would reach the client last.
    """
    pending = b''
    while True:
        data = resp.read1(size)
        if not data:
            break
        pending += data
        if b'\n' not in data:
            continue
        *lines, pending = pending.split(b'\n')
        for line in lines:
            yield line.rstrip(b'\r')
    if pending:
        yield pending.rstrip(b'\r')


class Provider:
    type = ''
    embeddings = False  # whether `embed` is implemented
    # the wire formats it takes as the client sent them (``relay``), beside chat
    relays = frozenset()
    # whether it honours ``response_format`` (JSON output) in the chat form
    structured_output = False

    def __init__(self, config, *, concurrency=1, max_retry_after_s=10.0):
        self.config = config
        self.max_retry_after_s = max_retry_after_s
        self.name = config.name
        self.serves = GlobSet(config.models)
        self.concurrency = concurrency
        # every piece of upstream text that may reach a client, a log line or a
        # span goes through this first (see `aegisflow.providers.scrub`)
        self.scrub = Scrubber.for_provider(config)

    def complete(self, request, model):
        raise NotImplementedError

    def stream(self, request, model):
        raise NotImplementedError

    def embed(self, request, model):
        """An OpenAI ``list`` of embeddings for an `EmbeddingsRequest`."""
        raise NotImplementedError

    def close(self):
        """Release connections; called when the worker exits."""

    def __repr__(self):
        return f'<{type(self).__name__} {self.name}>'


def parse_retry_after(value, *, cap_s, now=time.time):
    """Seconds an upstream's ``Retry-After`` asks for, in ``[0, cap_s]``, or None.

    The header is either whole seconds or an HTTP-date (RFC 9110 §10.2.3); anything
    else (negative, fractional nonsense, ``nan``, ``inf``, garbage) is no hint at
    all, and a date in the past means "now"."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 64:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
            if when is None:
                return None
            try:
                seconds = when.timestamp() - now()
            except (OverflowError, OSError, ValueError):
                return None
        else:
            if not math.isfinite(seconds) or seconds < 0:
                return None
    return min(max(seconds, 0.0), cap_s)


def upstream_error(
    provider, status, detail, *, retry_after=None, max_retry_after_s=10.0
):
    """The client-facing error for an upstream HTTP error status.

    The client's own request was fine as far as the gateway can tell, so upstream
    authentication and configuration errors become 502, not 401/404. Only a 400-class
    rejection of the request content is passed on as 400. `detail` must already be
    scrubbed (`Provider.scrub`): it reaches the client. `retry_after`: the
    upstream's raw ``Retry-After`` header, parsed defensively and passed on in whole
    seconds (on 429 and 503) no longer than `max_retry_after_s`.
    """
    detail = (detail or '').strip()
    suffix = f': {detail}' if detail else ''
    wait = parse_retry_after(retry_after, cap_s=max_retry_after_s)
    headers = (
        {'Retry-After': str(math.ceil(wait))}
        if wait is not None and status in (429, 503)
        else None
    )
    if status == 429:
        err = RateLimited(
            f"Provider '{provider}' is rate limiting requests{suffix}",
            code='upstream_rate_limited',
            headers=headers,
        )
    elif status in (408, 504):
        err = UpstreamTimeout(f"Provider '{provider}' timed out{suffix}")
    elif status in (400, 413, 422):
        err = InvalidRequest(
            f"Provider '{provider}' rejected the request{suffix}",
            code='upstream_rejected',
        )
    else:
        err = UpstreamFailed(
            f"Provider '{provider}' answered HTTP {status}{suffix}", headers=headers
        )
    err.upstream_status = status
    err.retry_after_s = wait
    return err
