"""Log set-up: one JSON object per line (default) or plain text.

Fields passed through ``extra=`` (request_id, tenant, status, ...) become top-level
keys of the JSON line. Nothing here ever formats a secret: callers never pass one.

A line about the request being served (its ``request_id`` is the one `bind_request`
named on this thread) also carries that request's ``trace_id`` and ``span_id`` when
its trace is sampled, so a log line can be joined to its trace.
"""

import contextvars
import logging
import sys
import time

import orjson

_STANDARD = set(vars(logging.LogRecord('', 0, '', 0, '', (), None))) | {
    'message',
    'asctime',
}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            'ts': time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))
            + f'.{int(record.msecs):03d}Z',
            'level': record.levelname.lower(),
            'logger': record.name,
            'msg': record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith('_'):
                line[key] = value
        if record.exc_info:
            line['exc'] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``, then the traceback if any."""

    def __init__(self):
        super().__init__('%(asctime)s %(levelname)s %(name)s %(message)s')

    def formatMessage(self, record):  # noqa: N802 (logging's method name)
        extras = [
            f'{k}={v}'
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith('_')
        ]
        line = super().formatMessage(record)
        return line + (' ' + ' '.join(extras) if extras else '')


_SERVING = contextvars.ContextVar('aegisflow_serving', default=None)


def bind_request(request_id, trace_id=None, span_id=None):
    """The request this thread serves now: (its id, its trace and span ids as hex,
    or None when its trace is not sampled)."""
    _SERVING.set((request_id, trace_id, span_id) if trace_id else None)


class TraceFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` to the lines of the request being served."""

    def filter(self, record):
        serving = _SERVING.get()
        if serving is not None and getattr(record, 'request_id', None) == serving[0]:
            record.trace_id, record.span_id = serving[1], serving[2]
        return True


def configure(telemetry, stream=None):
    logger = logging.getLogger('aegisflow')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if telemetry.log_format == 'json' else TextFormatter()
    )
    handler.addFilter(TraceFilter())
    logger.addHandler(handler)
    logger.setLevel(telemetry.log_level.upper())
    logger.propagate = False
    return logger
