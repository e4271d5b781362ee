"""Per-request costs of Gunicorn's own layer, taken out in each worker.

- The ``Date`` header: Gunicorn formats it for every response through the
  ``email`` package (`gunicorn.util.http_date`); it changes once a second, so
  each worker formats it once a second (`http_date`).
- Settings: every ``cfg.name`` Gunicorn reads while it parses a request and
  writes its response goes through ``Config.__getattr__`` and the setting's
  ``get()``. A worker's settings are fixed for its life (a reload starts new
  workers), so `SettledConfig` reads each once, when the worker is forked,
  whatever its class.
"""

import time
from email.utils import formatdate

from gunicorn import util

_cached = (0, '')  # NOTE: (second, text), replaced whole: threads read it too


def http_date(timestamp=None):
    """`gunicorn.util.http_date`, formatted at most once a second for now."""
    global _cached
    if timestamp is not None:
        return formatdate(timestamp, localtime=False, usegmt=True)
    now = int(time.time())
    second, text = _cached
    if second != now:
        text = formatdate(now, localtime=False, usegmt=True)
        _cached = (now, text)
    return text


_PER_REQUEST = ('is_ssl', 'sendfile')  # properties read for every request


class SettledConfig:
    """Gunicorn's ``Config`` with every setting's value read once.

    The properties read for every request are read once too; the others
    (``env``, ``ssl_options`` and the like) are still read from it."""

    def __init__(self, cfg):
        values = self.__dict__
        values['_cfg'] = cfg
        # NOTE: through getattr, not the setting's get(): a property of the config
        # can stand for a setting of its name (worker_class: the class, not its uri)
        for name in (*cfg.settings, *_PER_REQUEST):
            values[name] = getattr(cfg, name)

    def __getattr__(self, name):
        return getattr(self._cfg, name)

    def __setattr__(self, name, value):
        raise AttributeError('a worker does not change its settings')


def install(worker):
    """In `worker`, after fork (before it builds anything from its settings)."""
    util.http_date = http_date
    worker.cfg = SettledConfig(worker.cfg)
