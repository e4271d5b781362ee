"""Gunicorn server hooks. Each is wrapped so that it logs and never raises: an
exception escaping a hook (``child_exit`` above all) stops Gunicorn's arbiter."""

import functools
import logging
import signal
import sys

from aegisflow import logs
from workers import context
from workers import http_errors
from workers import orphan
from workers import speedups
from workers import state
from workers.runtime import STOP_SIGNALS

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
def start_warnings(config):
    """What an operator should know at start about how `config` will run."""
    out = []
    if config.server.worker_class == 'meinheld':
        parallel = [
            p.name for p in config.policies if p.options.get('run') == 'parallel'
        ]
        if parallel:
            out.append(
                'meinheld runs one request at a time per worker: parallel '
                f'guardrails run before the call ({", ".join(parallel)})'
            )
    return out


def on_starting(server):
    logs.configure(state.current.telemetry)
    for name, reason in state.current.disabled:
        log.info('provider %s is switched off: %s', name, reason)
    for warning in start_warnings(state.current):
        log.warning(warning)
    log.info(
        'starting',
        extra={
            'config': state.path,
            'digest': state.current.digest,
            'shm_bytes': state.runtime.layout.total_size,
        },
    )


@_never_raises
def when_ready(server):
    state.runtime.start()


@_never_raises
def on_reload(server):
    logs.configure(state.current.telemetry)
    state.runtime.reload(state.current)


def pre_fork(server, worker):
    # NOTE: not wrapped by _never_raises: it must always set the attribute.
    try:
        worker.aegis_slot = state.runtime.assign()
    except Exception:
        log.exception('no slot for a new worker')
        worker.aegis_slot = None


@_never_raises
def post_fork(server, worker):
    # NOTE: logging handlers are inherited; re-configuring binds them to this process.
    logs.configure(state.current.telemetry)
    orphan.watch(worker.ppid, state.current.server.graceful_timeout_s)
    http_errors.install()
    speedups.install(worker)
    context.bind(state.runtime, worker.aegis_slot, state.current)


@_never_raises
def post_worker_init(worker):
    # ORDER: the worker's own handlers are in place: the stop signals blocked
    # across its fork (`runtime.STOP_SIGNALS`) may come now, pending ones at once
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@_never_raises
def child_exit(server, worker):
    slot = getattr(worker, 'aegis_slot', None)
    if slot is not None:
        state.runtime.retire(slot, worker.pid)


@_never_raises
def worker_exit(server, worker):
    app = sys.modules.get('workers.app')
    if app is not None:
        app.gateway.close()


@_never_raises
def on_exit(server):
    state.runtime.stop()
    log.info('stopped', extra={'ledger_rows': state.runtime.ledger.written})


HOOKS = {
    'on_starting': on_starting,
    'when_ready': when_ready,
    'on_reload': on_reload,
    'pre_fork': pre_fork,
    'post_fork': post_fork,
    'post_worker_init': post_worker_init,
    'child_exit': child_exit,
    'worker_exit': worker_exit,
    'on_exit': on_exit,
}
