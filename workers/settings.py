"""Gunicorn settings derived from the AegisFlow config (called by gunicorn.conf.py).

On the first call an invalid config ends the process with the validation message.
On later calls (SIGHUP reload re-executes gunicorn.conf.py) an invalid config is
refused with a log line and the settings of the config already serving are kept.
"""

import logging
import os
import sys

from aegisflow import logs
from aegisflow.config import ConfigError
from aegisflow.config import load_config
from aegisflow.config import locate
from shm.errors import ShmError
from workers import hooks
from workers import state
from workers.runtime import MasterRuntime

WORKER_CLASSES = {
    'gthread': 'workers.gthread.ThreadWorker',
    'gevent': 'workers.gevent.GeventWorker',
    'meinheld': 'egg:meinheld#gunicorn_worker',
}
log = logging.getLogger('aegisflow.master')


def config_path():
    return locate.config_path()


def gunicorn_settings():
    path = os.path.abspath(config_path())
    try:
        config = load_config(path)
    except ConfigError as exc:
        if state.current is None:
            print(f'aegisflow: {exc}', file=sys.stderr)
            raise SystemExit(1) from None
        log.error(
            'reload refused: the new configuration is invalid; the previous one '
            'keeps serving',
            extra={'problems': [str(p) for p in exc.problems]},
        )
        config = state.current
    else:
        if state.current is not None and state.current.digest != config.digest:
            log.info('configuration reloaded', extra={'digest': config.digest})
        state.current, state.path = config, path
    if state.runtime is None:
        # NOTE: here rather than in on_starting, so that a segment that cannot be made
        # stops the start with its message, as an invalid config does.
        logs.configure(config.telemetry)  # NOTE: before the runtime reads levels
        try:
            state.runtime = MasterRuntime(config)
        except ShmError as exc:
            print(f'aegisflow: {exc}', file=sys.stderr)
            raise SystemExit(1) from None
    server = config.server
    settings = {
        'bind': [server.bind],
        'workers': server.workers,
        'worker_class': WORKER_CLASSES[server.worker_class],
        'threads': server.threads,
        'worker_connections': server.worker_connections,
        'backlog': server.backlog,
        'timeout': server.timeout_s,
        'graceful_timeout': server.graceful_timeout_s,
        'keepalive': server.keepalive_s,
        'wsgi_app': 'workers.app:application',
        'proc_name': 'aegisflow',
        'control_socket_disable': True,
        'worker_tmp_dir': '/dev/shm' if os.path.isdir('/dev/shm') else None,
        'loglevel': config.telemetry.log_level,
        'errorlog': '-',
    }
    if server.trusted_proxies:
        trusted = ','.join(str(net) for net in server.trusted_proxies)
        # NOTE: Gunicorn reads X-Forwarded-Proto and PROXY headers only from these;
        # the client address itself is resolved by aegisflow.web.client
        settings['forwarded_allow_ips'] = trusted
        settings['proxy_allow_ips'] = trusted
        settings['proxy_protocol'] = server.proxy_protocol
    settings.update(hooks.HOOKS)
    return settings
