"""The build's one piece of code: which directories become which packages. The
metadata (name, version, dependencies) is in pyproject.toml.

`conf/` (the example configs, the price table, the systemd unit, the dashboard, the
alert rules and the example plugins) ships inside the package as `aegisflow.conf`,
so an installed gateway finds its default price table and `aegisflow init` its
starter files without a source tree.
"""

from setuptools import find_packages
from setuptools import setup

setup(
    packages=find_packages(include=['aegisflow*', 'workers*', 'shm*'])
    + ['aegisflow.conf', 'aegisflow.conf.plugins'],
    package_dir={'aegisflow.conf': 'conf'},
    package_data={
        'workers': ['gunicorn_conf.py'],
        'aegisflow.web': ['openapi.yaml', 'console/*'],
        'aegisflow.policy': ['injection_model.json'],
        'aegisflow.conf': ['*.yaml', '*.yml', '*.json', '*.service'],
        'aegisflow.conf.plugins': ['*.wat'],
    },
)
