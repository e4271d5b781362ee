"""The access log: one line per request, written by the master from event records.

Lines have the same shape as every other log line (``ts``, ``level``, ``logger``,
``msg``, then the fields) but are built with one ``orjson.dumps`` each and written in
one batch per aggregator step, straight to the log stream: going through `logging`
for every request would cost the master more than the request itself.
"""

import logging
import sys
import time

import orjson

from aegisflow.telemetry import events as ev
from aegisflow.usage.ledger import COLUMNS

_FIELDS = (
    'request_id',
    'tenant',
    'key_name',
    'model',
    'requested_model',
    'provider',
    'status',
    'outcome',
    'streamed',
    'duration_ms',
    'prompt_tokens',
    'completion_tokens',
    'cached_tokens',
    'cache_write_tokens',
    'cost_usd',
    'attempts',
)
# positions of those fields in a ledger row (aegisflow.usage.ledger.COLUMNS)
_FROM_ROW = tuple(COLUMNS.index(name) for name in _FIELDS)
_SAVED = COLUMNS.index('saved_usd')


class AccessLog:
    def __init__(self, log_format='json', stream=None):
        self.text = log_format == 'text'
        self.stream = stream
        self.lines = []
        self._second = -1
        self._stamp = ''

    def enabled(self):
        return logging.getLogger('aegisflow.access').isEnabledFor(logging.INFO)

    def _ts(self, ns):
        second, ms = divmod(ns // 1_000_000, 1000)
        if second != self._second:
            self._second = second
            fmt = '%Y-%m-%d %H:%M:%S' if self.text else '%Y-%m-%dT%H:%M:%S'
            self._stamp = time.strftime(fmt, time.gmtime(second))
        return f'{self._stamp},{ms:03d}' if self.text else f'{self._stamp}.{ms:03d}Z'

    def add(self, row, event=None):
        """One line for a ledger row; `event`: its REQUEST record (the client's
        address, and the trace and span ids when the trace was sampled)."""
        fields = {name: row[i] for name, i in zip(_FIELDS, _FROM_ROW, strict=True)}
        fields['streamed'] = bool(fields['streamed'])
        if event is not None:
            if event.client:
                fields['client'] = event.client
            if event.flags & ev.SAMPLED:
                fields['trace_id'] = event.trace_id.hex()
                fields['span_id'] = event.span_id.hex()
        if row[17] is not None:
            fields['ttft_ms'] = row[17]
        if event is not None and event.cache:
            fields['cache'] = ev.CACHE_RESULTS[event.cache - 1]
            if event.cache == ev.CACHE_HIT:
                fields['saved_usd'] = row[_SAVED]
        ts = self._ts(row[0])
        if self.text:
            pairs = ' '.join(f'{k}={v}' for k, v in fields.items())
            self.lines.append(f'{ts} INFO aegisflow.access request {pairs}'.encode())
        else:
            head = {
                'ts': ts,
                'level': 'info',
                'logger': 'aegisflow.access',
                'msg': 'request',
            }
            head.update(fields)
            self.lines.append(orjson.dumps(head))

    def flush(self):
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        stream = self.stream or sys.stderr.buffer
        try:
            stream.write(b'\n'.join(lines) + b'\n')
            stream.flush()
        except (OSError, ValueError):
            pass  # NOTE: a closed or full log stream must not stop aggregation
