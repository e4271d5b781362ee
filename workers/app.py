"""The WSGI entry point Gunicorn loads in each worker, after fork.

The config and the shared-memory runtime come from the master (`workers.state`,
inherited through fork). Outside Gunicorn, the app runs on its own with in-process
telemetry, loading the file `AEGISFLOW_CONFIG` names.
"""

import logging
import sys
import time

from aegisflow.config import load_config
from aegisflow.gateway import Gateway
from aegisflow.web.app import create_app
from workers import context
from workers import settings
from workers import state

# NOTE: Gunicorn's arbiter halts when a worker exits with 3 (boot error) or 4
# (app load error): one worker that cannot build its config must not stop the
# master and its other workers. Any other status just gets the worker replaced.
CANNOT_BUILD = 75  # EX_TEMPFAIL
RESPAWN_PAUSE_S = 1.0  # NOTE: so a config no worker can build is no fork storm

config = state.current or load_config(settings.config_path())
# how many requests a worker serves at once: its upstream pools are sized for it
_CONCURRENCY = {
    'gthread': config.server.threads,
    'gevent': config.server.worker_connections,
}
_threads = _CONCURRENCY.get(config.server.worker_class, 1)
_telemetry = context.current
try:
    gateway = Gateway(
        config,
        concurrency=_threads,
        labels=_telemetry.runtime.labels if _telemetry else None,
        telemetry=_telemetry,
        limiter=_telemetry.limiter(config) if _telemetry else None,
        key_generation=_telemetry.key_generation() if _telemetry else None,
        cache_store=(
            (_telemetry.runtime.cache_dir, _telemetry.runtime.cache_max_bytes)
            if _telemetry and _telemetry.runtime.cache_dir
            else None
        ),
    )
    application = create_app(config, gateway=gateway)
except Exception:
    if _telemetry is None:
        raise  # NOTE: outside Gunicorn: the caller sees the error itself
    logging.getLogger('aegisflow.worker').critical(
        'this worker cannot build its configuration and exits; the master keeps '
        'serving with the configuration it has',
        exc_info=True,
        extra={'digest': config.digest, 'exit_status': CANNOT_BUILD},
    )
    time.sleep(RESPAWN_PAUSE_S)
    sys.exit(CANNOT_BUILD)
