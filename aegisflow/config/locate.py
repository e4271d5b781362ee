"""Which config file a command or a Gunicorn master reads when none is named."""

import os

DEFAULT_CONFIG = 'conf/aegisflow.yaml'  # a source checkout's
INIT_CONFIG = 'aegisflow.yaml'  # what `aegisflow init` writes


def config_path(given=None):
    """The one given, else $AEGISFLOW_CONFIG, else conf/aegisflow.yaml (a source
    tree), else aegisflow.yaml in the current directory (`aegisflow init`)."""
    path = given or os.environ.get('AEGISFLOW_CONFIG')
    if path:
        return path
    if os.path.exists(DEFAULT_CONFIG) or not os.path.exists(INIT_CONFIG):
        return DEFAULT_CONFIG
    return INIT_CONFIG
