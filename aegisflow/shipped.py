"""The files that ship with the gateway (the `conf/` directory): the default price
table, the starter and example configs, the systemd unit, the dashboard, the alert
rules and the example plugins.

In an installed package they are `aegisflow/conf/` (setup.py maps `conf/` there);
in a source checkout, `conf/` beside the package.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_PLACES = (_HERE / 'conf', _HERE.parent / 'conf')


def path(name):
    """The shipped file `name` (``prices.yaml``, ``plugins/deny_marker.wat``)."""
    for base in _PLACES:
        candidate = base / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f'{name} is not among the shipped files')
