"""Log set-up: one JSON object per line (default) or plain text.

Fields passed through ``extra=`` (request_id, tenant, status, ...) become top-level
keys of the JSON line. Nothing here ever formats a secret: callers never pass one.
"""

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


def configure(telemetry, stream=None):
    logger = logging.getLogger('aegisflow')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if telemetry.log_format == 'json' else TextFormatter()
    )
    logger.addHandler(handler)
    logger.setLevel(telemetry.log_level.upper())
    logger.propagate = False
    return logger
