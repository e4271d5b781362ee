import textwrap

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import GatewayProcess
from tests.support.postgres_server import PostgresServer

# The configuration of the gateway-core acceptance criteria.
ACCEPTANCE_CONFIG = textwrap.dedent("""
    server: {bind: "127.0.0.1:18080", workers: 2}
    providers:
      - {name: mock, type: mock, models: [mock, mock-fast]}
    routes:
      - {match: "*", targets: [mock]}
    tenants:
      - id: acme
        keys: [{key: "sk-acme-1", name: ci}]
        allowed_models: ["mock*"]
      - id: globex
        keys: [{key: "sk-globex-1", name: ops}]
        allowed_models: ["mock-fast"]
""")


@pytest.fixture(scope='module')
def gateway_factory(tmp_path_factory):
    """Start gateways for one test module; all of them are stopped at its end."""
    started = []

    def start(config_text, **kwargs):
        workdir = tmp_path_factory.mktemp('gw')
        gw = GatewayProcess(config_text, workdir, **kwargs).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope='session')
def postgres():
    """One PostgreSQL server for the session; modules take their own database."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def upstream():
    """A fake OpenAI server for one test module (a module may define its own)."""
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()
