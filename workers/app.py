"""The WSGI entry point Gunicorn loads in each worker, after fork.

The config comes from the master (`workers.state.current`, inherited through fork);
outside Gunicorn it is loaded from the file `AEGISFLOW_CONFIG` names.
"""

from aegisflow.config import load_config
from aegisflow.gateway import Gateway
from aegisflow.web.app import create_app
from workers import settings
from workers import state

config = state.current or load_config(settings.config_path())
_threads = config.server.threads if config.server.worker_class == 'gthread' else 1
gateway = Gateway(config, concurrency=_threads)
application = create_app(config, gateway=gateway)
