"""AegisFlow: an OpenAI-compatible AI gateway."""

__version__ = '0.1.0'


def load_config(path, *, env=None):
    from aegisflow.config import load_config as _load

    return _load(path, env=env)


def create_app(config, **kwargs):
    from aegisflow.web.app import create_app as _create

    return _create(config, **kwargs)
