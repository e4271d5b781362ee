"""Gunicorn server hooks. Each is wrapped so that it logs and never raises: an
exception escaping a hook (``child_exit`` above all) stops Gunicorn's arbiter."""

import functools
import logging
import sys

from aegisflow import logs
from workers import state

log = logging.getLogger('aegisflow.master')


def _never_raises(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except Exception:
            log.exception('hook %s failed', fn.__name__)
            return None

    return wrapper


@_never_raises
def on_starting(server):
    logs.configure(state.current.telemetry)
    for name, reason in state.current.disabled:
        log.info('provider %s is switched off: %s', name, reason)
    log.info('starting', extra={'config': state.path, 'digest': state.current.digest})


@_never_raises
def on_reload(server):
    logs.configure(state.current.telemetry)


@_never_raises
def post_fork(server, worker):
    # NOTE: logging handlers are inherited; re-configuring binds them to this process.
    logs.configure(state.current.telemetry)


@_never_raises
def worker_exit(server, worker):
    app = sys.modules.get('workers.app')
    if app is not None:
        app.gateway.close()


HOOKS = {
    'on_starting': on_starting,
    'on_reload': on_reload,
    'post_fork': post_fork,
    'worker_exit': worker_exit,
}
