from setuptools import find_packages
from setuptools import setup

setup(
    name='aegisflow',
    version='0.1.0',
    description='An OpenAI-compatible AI gateway: routing, limits, policies, usage.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.11',
    packages=find_packages(include=['aegisflow*', 'workers*', 'shm*']),
    package_data={'workers': ['gunicorn_conf.py'], 'aegisflow.web': ['openapi.yaml']},
    install_requires=[
        'falcon>=4.0,<5',
        'gunicorn>=23',
        'urllib3>=2.2,<3',
        'requests>=2.31',
        'posix-ipc>=1.1',
        'redis>=5',
        'prometheus-client>=0.20',
        'opentelemetry-sdk>=1.25',
        'opentelemetry-exporter-otlp-proto-http>=1.25',
        'opentelemetry-exporter-otlp-proto-grpc>=1.25',
        'wasmtime>=20',
        'PyYAML>=6',
        'orjson>=3.9',
        'regex>=2024.4',
    ],
    extras_require={
        # meinheld itself is installed with --no-deps (its greenlet<0.5 pin does not
        # build on Python 3.11); this extra brings the greenlet it runs on.
        'meinheld': ['greenlet>=3'],
        # the shared ledger (storage.backend: postgresql)
        'postgresql': ['psycopg[binary]>=3.1'],
        'dev': [
            'greenlet>=3',
            'psycopg[binary]>=3.1',
            'pytest>=8',
            'pytest-benchmark>=4',
            'pytest-timeout>=2',
            'hypothesis>=6.100',
            'openai>=1.40',
            'anthropic>=0.40',
            'ruff>=0.5',
            # property-based runs of the API description against the live gateway
            'schemathesis>=4.4,<5',
        ],
    },
    entry_points={'console_scripts': ['aegisflow=aegisflow.cli:main']},
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'License :: OSI Approved :: Apache Software License',
    ],
)
