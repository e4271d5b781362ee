import textwrap

import pytest

from tests.support import secrets
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_otlp import FakeCollector
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
def collector():
    """A fake OTLP/HTTP trace collector for one test module."""
    c = FakeCollector().start()
    yield c
    c.stop()


@pytest.fixture(scope='module')
def upstream():
    """A fake OpenAI server for one test module (a module may define its own)."""
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any key handed to a gateway shows up in anything the
    gateways produced: logs, metrics pages, exported spans."""
    hits = secrets.scan()
    if hits:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        lines = [f'  a key ({masked}) appears in {where}' for masked, where in hits]
        reporter.write_line('SECRET SCAN FAILED:\n' + '\n'.join(sorted(set(lines))))
        session.exitstatus = 1
    elif secrets.outputs:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        if reporter is not None:
            reporter.write_line(
                f'secret scan: {len(secrets.secrets)} keys, none in '
                f'{len(secrets.outputs)} logs, metrics pages and span batches'
            )
