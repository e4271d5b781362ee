"""The WSGI entry point Gunicorn loads in each worker, after fork.

The config and the shared-memory runtime come from the master (`workers.state`,
inherited through fork). Outside Gunicorn, the app runs on its own with in-process
telemetry, loading the file `AEGISFLOW_CONFIG` names.
"""

from aegisflow.config import load_config
from aegisflow.gateway import Gateway
from aegisflow.web.app import create_app
from workers import context
from workers import settings
from workers import state

config = state.current or load_config(settings.config_path())
_threads = config.server.threads if config.server.worker_class == 'gthread' else 1
_telemetry = context.current
gateway = Gateway(
    config,
    concurrency=_threads,
    labels=_telemetry.runtime.labels if _telemetry else None,
    telemetry=_telemetry,
    limiter=_telemetry.limiter(config) if _telemetry else None,
    key_generation=_telemetry.key_generation() if _telemetry else None,
)
application = create_app(config, gateway=gateway)
