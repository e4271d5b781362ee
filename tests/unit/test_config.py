"""Every config error names the key path, what was expected and what was found."""

import hashlib
import subprocess
import sys
import textwrap

import pytest

from aegisflow.config import ConfigError
from aegisflow.config import load_config
from aegisflow.config import parse_config
from tests.conftest import ACCEPTANCE_CONFIG

BASE = {
    'providers': '[{name: mock, type: mock, models: [mock, mock-fast]}]',
    'routes': '[{match: "*", targets: [mock]}]',
    'tenants': '[{id: acme, keys: [{key: "sk-acme-1"}]}]',
}


def doc(**sections):
    """A YAML document from BASE with `sections` replaced (None drops a section)."""
    merged = dict(BASE, **sections)
    return '\n'.join(f'{k}: {v}' for k, v in merged.items() if v is not None)


def problems(text, env=None):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, env=env or {})
    return [str(p) for p in exc.value.problems]


def test_config_acceptance_document_loads():
    config = parse_config(ACCEPTANCE_CONFIG, env={})
    assert config.server.bind == '127.0.0.1:18080'
    assert config.server.workers == 2
    assert [t.id for t in config.tenants] == ['acme', 'globex']
    assert config.tenants[1].allowed_models == ('mock-fast',)
    key = config.tenants[0].keys[0]
    assert key.digest == hashlib.sha256(b'sk-acme-1').digest()
    assert 'sk-acme-1' not in repr(config)


def test_config_defaults():
    config = parse_config(doc(), env={})
    assert config.server.bind == '127.0.0.1:8080'
    # cooperative: a greenlet per connection, ten thousand per worker
    assert config.server.worker_class == 'gevent'
    assert config.server.worker_connections == 10000
    assert config.server.backlog == 4096
    gthread = parse_config(doc(server='{worker_class: gthread}'), env={}).server
    # a thread per stream: 2 workers hold 1,000 slow streams at once
    # (bench/streams.py), with room left for idle keep-alive connections
    assert (gthread.threads, gthread.worker_connections) == (1024, 2048)
    assert config.tenants[0].allowed_models == ('*',)
    assert config.tenants[0].keys[0].name == 'key0'
    assert config.telemetry.log_format == 'json'
    assert len(config.digest) == 16


def test_a_cooperative_worker_holds_ten_thousand_connections_by_default():
    config = parse_config(doc(server='{worker_class: gevent}'), env={})
    assert config.server.worker_class == 'gevent'
    assert config.server.worker_connections == 10000
    config = parse_config(
        doc(server='{worker_class: gevent, worker_connections: 50}'), env={}
    )
    assert config.server.worker_connections == 50


def test_config_shipped_default_file_is_valid():
    config = load_config('conf/aegisflow.yaml', env={})
    assert [p.name for p in config.providers] == ['mock']
    assert {name for name, _ in config.disabled} == {
        'openai',
        'anthropic',
        'ollama',
        'local',
    }
    assert [r.match for r in config.routes] == ['mock*']


def test_config_shipped_default_switches_providers_on_from_env():
    env = {
        'OPENAI_API_KEY': 'sk-o',
        'ANTHROPIC_API_KEY': 'sk-a',
        'OLLAMA_BASE_URL': 'http://127.0.0.1:11434',
    }
    config = load_config('conf/aegisflow.yaml', env=env)
    assert [p.name for p in config.providers] == [
        'mock',
        'openai',
        'anthropic',
        'ollama',
    ]
    assert config.provider('anthropic').base_url == 'https://api.anthropic.com/v1'
    assert config.provider('anthropic').api_key == 'sk-a'
    assert config.provider('ollama').base_url == 'http://127.0.0.1:11434'
    assert config.provider('ollama').api_key is None
    assert [t.provider for t in config.routes[2].targets] == ['openai', 'ollama']


@pytest.mark.parametrize(
    'text, expected',
    [
        (
            doc(server='{wokers: 2}'),
            "server.wokers: expected 'workers' or another of the keys",
        ),
        (
            doc(qqq='1'),
            'qqq: expected one of the keys alerts, aliases, cache, circuit_breaker, limits, policies, prices, providers',
        ),
        (doc(providers=None), 'providers: expected a list of providers, found nothing'),
        (doc(tenants=None), 'tenants: expected a list of tenants, found nothing'),
        (
            doc(server='{workers: "2"}'),
            "server.workers: expected an integer from 1 to 256, found '2' (string)",
        ),
        (
            doc(server='{workers: true}'),
            'server.workers: expected an integer from 1 to 256, found true (boolean)',
        ),
        (
            doc(server='{threads: 0}'),
            'server.threads: expected an integer from 1 to 10000, found 0 (integer)',
        ),
        (
            # a gthread worker needs room for idle keep-alive connections beyond
            # the ones its threads serve
            doc(server='{worker_class: gthread, threads: 64, worker_connections: 64}'),
            'server.worker_connections: expected an integer from 65 to 1000000, '
            'found 64 (integer)',
        ),
        (
            doc(server='{backlog: 0}'),
            'server.backlog: expected an integer from 1 to 65535, found 0 (integer)',
        ),
        (
            doc(server='{worker_class: sync}'),
            'server.worker_class: expected one of gthread, gevent, meinheld, found '
            "'sync' (string)",
        ),
        (doc(server='{bind: "127.0.0.1"}'), 'server.bind: expected HOST:PORT'),
        (doc(server='{bind: "127.0.0.1:70000"}'), 'server.bind: expected HOST:PORT'),
        (doc(server='{bind: "bad host:80"}'), 'server.bind: expected HOST:PORT'),
        (doc(server='{bind: "[zz::1]:80"}'), 'server.bind: expected HOST:PORT'),
        (
            doc(server='{max_body_bytes: 10}'),
            'server.max_body_bytes: expected an integer >= 1024',
        ),
        (
            doc(server='{header_timeout_s: 0.1}'),
            'server.header_timeout_s: expected a number from 0.5 to 3600',
        ),
        (
            doc(server='{header_timeout_s: soon}'),
            'server.header_timeout_s: expected a number',
        ),
        (
            doc(server='{body_min_bytes_per_s: -1}'),
            'server.body_min_bytes_per_s: expected an integer',
        ),
        (doc(server='[1, 2]'), 'server: expected a mapping, found a list of 2 items'),
        (
            doc(providers='{name: x}'),
            'providers: expected a list of providers, found a mapping',
        ),
        (
            doc(providers='[]'),
            'providers: expected a list of providers of at least 1 item',
        ),
        (
            doc(providers='[{name: m, type: grpc, models: [a]}]'),
            "providers[0].type: expected one of mock, openai, openai_compatible, anthropic, ollama, found 'grpc'",
        ),
        (
            doc(providers='[{name: mock, type: mock}]'),
            'providers[0].models: expected a list of model names or globs, found nothing',
        ),
        (
            doc(providers='[{name: mock, type: mock, models: ["bad[glob"]}]'),
            'providers[0].models[0]: expected a model name or glob (no spaces, balanced []), '
            "found 'bad[glob' (string)",
        ),
        (
            doc(providers='[{name: mock, type: mock, models: ["two words"]}]'),
            'providers[0].models[0]: expected a model name or glob',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock]}, '
                '{name: mock, type: mock, models: [x]}]'
            ),
            'providers[1].name: expected a provider name not already used by providers[0]',
        ),
        (
            doc(providers='[{name: "bad name", type: mock, models: [mock]}]'),
            'providers[0].name: expected a name of letters',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock], base_url: "http://x"}]'
            ),
            'providers[0].base_url: expected one of the keys',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock], failure_rate: 2}]'
            ),
            'providers[0].failure_rate: expected a number from 0 to 1, found 2 (integer)',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock]}, '
                '{name: c, type: openai_compatible, models: ["*"]}]'
            ),
            'providers[1].base_url: expected an http:// or https:// URL, found nothing',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock]}, '
                '{name: c, type: openai_compatible, models: ["*"], base_url: "ftp://x"}]'
            ),
            "providers[1].base_url: expected an http:// or https:// URL, found 'ftp://x'",
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock]}, '
                '{name: c, type: openai, models: ["*"]}]'
            ),
            'providers[1].api_key_env: expected the name of an environment variable, found nothing',
        ),
        (
            doc(
                providers='[{name: mock, type: mock, models: [mock]}, {name: c, type: openai, '
                'models: ["*"], api_key_env: OPENAI_KEY_X, headers: {"Bad Header": v}}]'
            ),
            "providers[1].headers.Bad Header: expected an HTTP header name, found 'Bad Header'",
        ),
        (
            doc(routes='[{match: "*", targets: [ghost]}]'),
            "routes[0].targets[0]: expected the name of a declared provider (mock), found 'ghost'",
        ),
        (
            doc(routes='[{match: "*", targets: [{provider: ghost}]}]'),
            'routes[0].targets[0].provider: expected the name of a declared provider',
        ),
        (
            doc(routes='[{match: "*", targets: []}]'),
            'routes[0].targets: expected a list of targets of at least 1 item, found a list of 0',
        ),
        (
            doc(routes='[{match: "[x", targets: [mock]}]'),
            "routes[0].match: expected a model glob (no spaces, balanced []), found '[x'",
        ),
        (doc(routes='[{targets: [mock]}]'), 'routes[0].match: expected a model glob'),
        (
            doc(routes='[{match: "*", targets: [mock], strategy: fastest}]'),
            "routes[0].strategy: expected one of priority, round_robin, weighted, least_latency, lowest_cost, custom, found 'fastest'",
        ),
        (
            doc(routes='[{match: "*", targets: [{provider: mock, weight: 0}]}]'),
            'routes[0].targets[0].weight: expected an integer from 1 to 1000000, found 0',
        ),
        (
            doc(aliases='{fast: gpt-9}'),
            "aliases.fast: expected a model that some route serves, found 'gpt-9' (string)",
        ),
        (doc(aliases='[a]'), 'aliases: expected a mapping of alias name to model name'),
        (
            doc(tenants='[{id: a, keys: [{key: k1}]}, {id: a, keys: [{key: k2}]}]'),
            "tenants[1].id: expected a tenant id not already used by tenants[0], found 'a'",
        ),
        (
            doc(tenants='[{id: a, keys: [{key: k1}]}, {id: b, keys: [{key: k1}]}]'),
            'tenants[1].keys[0]: expected a key not used elsewhere, found the same key as '
            'tenants[0].keys[0]',
        ),
        (
            doc(tenants='[{id: a, keys: [{key: k1, name: n}, {key: k2, name: n}]}]'),
            'tenants[0].keys[1].name: expected a key name unique within the tenant',
        ),
        (
            doc(tenants='[{id: a, keys: [{name: n}]}]'),
            'tenants[0].keys[0]: expected exactly one of key, key_env, key_sha256, '
            'found none of them',
        ),
        (
            doc(tenants='[{id: a, keys: [{key: k, key_sha256: ab}]}]'),
            'tenants[0].keys[0]: expected exactly one of key, key_env, key_sha256, '
            'found key, key_sha256',
        ),
        (
            doc(tenants='[{id: a, keys: [{key_sha256: abc}]}]'),
            "tenants[0].keys[0].key_sha256: expected 64 hexadecimal characters, found 'abc'",
        ),
        (
            doc(tenants='[{id: a, keys: []}]'),
            'tenants[0].keys: expected a list of keys of at least 1 item',
        ),
        (
            doc(tenants='[{id: a, keys: [{key: k}], allowed_models: "mock"}]'),
            "tenants[0].allowed_models: expected a list of model names or globs, found 'mock'",
        ),
        (
            doc(tenants='[{id: a, keys: [{key: k}], allowed_models: ["]["]}]'),
            'tenants[0].allowed_models[0]: expected a model name or glob',
        ),
        (
            doc(tenants='[{id: "", keys: [{key: k}]}]'),
            'tenants[0].id: expected an id of letters',
        ),
        (
            doc(telemetry='{log_format: xml}'),
            "telemetry.log_format: expected one of json, text, found 'xml' (string)",
        ),
        (
            doc(storage='{backend: postgresql}'),
            'storage.dsn: expected a PostgreSQL DSN (postgresql://... or key=value '
            'pairs) (or dsn_env) for backend postgresql, found nothing',
        ),
        (
            doc(storage='{backend: mysql}'),
            "storage.backend: expected one of sqlite, postgresql, found 'mysql'",
        ),
        (
            doc(storage='{backend: postgresql, dsn: "mysql://u:pw@h/db"}'),
            'storage.dsn: expected a PostgreSQL DSN (postgresql://... or key=value '
            'pairs), found another form',
        ),
        (
            doc(storage='{dsn: "postgresql://u:pw@h/db"}'),
            'storage.dsn: expected no DSN unless storage.backend is postgresql, '
            'found backend sqlite',
        ),
        (
            doc(storage='{backend: postgresql, dsn: "postgresql://h/d", dsn_env: X}'),
            'storage.dsn_env: expected either dsn or dsn_env, not both, found both',
        ),
        ('', '(top level): expected a mapping, found null'),
        ('- 1\n- 2', '(top level): expected a mapping, found a list of 2 items'),
    ],
)
def test_config_error_names_path_expected_found(text, expected):
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_config_reports_every_problem_at_once():
    text = doc(
        server='{workers: 0, threads: 0}', routes='[{match: "*", targets: [ghost]}]'
    )
    assert len(problems(text)) == 3


def test_config_env_key_unset_is_an_error_only_when_enabled():
    text = doc(
        providers='[{name: mock, type: mock, models: [mock]}, '
        '{name: oa, type: openai, api_key_env: OA_KEY, models: ["gpt-*"]}]',
        routes='[{match: "gpt-*", targets: [oa]}, {match: "*", targets: [mock]}]',
    )
    assert problems(text) == [
        'providers[1].api_key_env: expected environment variable OA_KEY to be set, '
        'found it unset'
    ]
    optional = text.replace('type: openai,', 'type: openai, optional: true,')
    config = parse_config(optional, env={})
    assert [p.name for p in config.providers] == ['mock']
    assert config.disabled == (('oa', 'OA_KEY is not set'),)
    assert [r.match for r in config.routes] == ['*']  # the route lost its only target
    enabled = parse_config(optional, env={'OA_KEY': 'sk-upstream'})
    assert enabled.provider('oa').api_key == 'sk-upstream'
    assert 'sk-upstream' not in repr(enabled)


def test_config_tenant_key_from_env_and_sha256():
    digest = hashlib.sha256(b'sk-hashed').hexdigest()
    text = doc(
        tenants=f'[{{id: a, keys: [{{key_env: TENANT_KEY}}, {{key_sha256: {digest}}}]}}]'
    )
    assert problems(text) == [
        'tenants[0].keys[0].key_env: expected environment variable TENANT_KEY to be set, '
        'found it unset'
    ]
    config = parse_config(text, env={'TENANT_KEY': 'sk-from-env'})
    digests = [k.digest for k in config.tenants[0].keys]
    assert digests == [hashlib.sha256(b'sk-from-env').digest(), bytes.fromhex(digest)]


def test_config_never_echoes_a_literal_key():
    found = problems(
        doc(tenants='[{id: a, keys: [{key: "sk-secret-1"}, {key: "sk-secret-1"}]}]')
    )
    assert found and not any('sk-secret-1' in p for p in found)


def test_config_yaml_syntax_error_has_a_position():
    found = problems('server: {bind: [}\n')
    assert (
        len(found) == 1 and 'expected valid YAML' in found[0] and 'line 1' in found[0]
    )


def test_config_duplicate_yaml_key_is_refused():
    found = problems(doc() + '\nproviders: []\n')
    assert "duplicate key 'providers'" in found[0]


def test_config_missing_file():
    with pytest.raises(ConfigError) as exc:
        load_config('/nonexistent/aegisflow.yaml')
    assert 'expected a readable YAML file' in str(exc.value)


def _cli(*args):
    return subprocess.run(
        [sys.executable, '-m', 'aegisflow', *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_command_exit_codes(tmp_path):
    good = tmp_path / 'good.yaml'
    good.write_text(ACCEPTANCE_CONFIG)
    out = _cli('check-config', str(good))
    assert out.returncode == 0, out.stderr
    assert 'ok (1 providers, 1 routes, 2 tenants' in out.stdout
    bad = tmp_path / 'bad.yaml'
    bad.write_text(textwrap.dedent(doc(server='{workers: many}')))
    out = _cli('check-config', str(bad))
    assert out.returncode == 1
    assert (
        "server.workers: expected an integer from 1 to 256, found 'many' (string)"
        in out.stderr
    )
    assert 'Traceback' not in out.stderr


def test_config_storage_postgresql_dsn_from_env_is_never_echoed():
    dsn = 'postgresql://gw:s3cret-pw@db.internal:5433/ledger'
    config = parse_config(
        doc(storage='{backend: postgresql, dsn_env: LEDGER_DSN}'),
        env={'LEDGER_DSN': dsn},
    )
    assert config.storage.backend == 'postgresql'
    assert config.storage.dsn == dsn
    assert 's3cret' not in repr(config)
    from aegisflow.usage.database import Database

    assert Database.of(config.storage).describe() == (
        'postgresql://db.internal:5433/ledger'
    )
    found = problems(
        doc(storage='{backend: postgresql, dsn: "mysql://gw:s3cret-pw@h/db"}')
    )
    assert not any('s3cret' in p for p in found), found


def test_config_storage_default_ledger_sits_beside_the_config(tmp_path):
    path = tmp_path / 'gw.yaml'
    path.write_text(doc())
    config = load_config(str(path), env={})
    assert config.storage.backend == 'sqlite'
    assert config.storage.sqlite_path == str(tmp_path / 'aegisflow.sqlite')
