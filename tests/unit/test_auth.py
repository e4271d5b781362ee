import hashlib

import pytest

from aegisflow.auth import KeyIndex
from aegisflow.config import parse_config
from aegisflow.errors import AuthenticationFailed

CONFIG = """
providers: [{name: mock, type: mock, models: [mock, mock-fast]}]
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-acme-1, name: ci}, {key_env: ACME_KEY, name: ops}]
    allowed_models: ["mock*"]
  - id: globex
    keys: [{key_sha256: GLOBEX_SHA, name: svc}]
    allowed_models: [mock-fast]
""".replace('GLOBEX_SHA', hashlib.sha256(b'sk-globex-hashed').hexdigest())


@pytest.fixture(scope='module')
def index():
    return KeyIndex(parse_config(CONFIG, env={'ACME_KEY': 'sk-acme-env'}).tenants)


@pytest.mark.parametrize(
    'authorization, header, tenant, key_name',
    [
        ('Bearer sk-acme-1', None, 'acme', 'ci'),
        ('bearer sk-acme-1', None, 'acme', 'ci'),
        ('BEARER  sk-acme-1 ', None, 'acme', 'ci'),
        (None, 'sk-acme-env', 'acme', 'ops'),
        (None, 'sk-globex-hashed', 'globex', 'svc'),
        ('Basic abc', 'sk-acme-1', 'acme', 'ci'),
    ],
)
def test_auth_accepts_bearer_and_x_api_key(
    index, authorization, header, tenant, key_name
):
    principal = index.authenticate(authorization, header)
    assert principal.tenant_id == tenant and principal.key_name == key_name


@pytest.mark.parametrize(
    'authorization, header, code',
    [
        (None, None, 'missing_api_key'),
        ('Bearer ', None, 'missing_api_key'),
        ('Bearer sk-acme-2', None, 'invalid_api_key'),
        (None, 'sk-acme-1x', 'invalid_api_key'),
        ('Bearer sk-globex-hashed-', None, 'invalid_api_key'),
        ('Bearer \udcff', None, 'invalid_api_key'),
    ],
)
def test_auth_refuses_missing_and_wrong_keys(index, authorization, header, code):
    with pytest.raises(AuthenticationFailed) as exc:
        index.authenticate(authorization, header)
    assert exc.value.status == 401 and exc.value.code == code
    assert 'sk-' not in exc.value.message


def test_auth_allowed_models(index):
    globex = index.authenticate('Bearer sk-globex-hashed', None)
    assert globex.may_use('mock-fast')
    assert not globex.may_use('mock')
    assert globex.may_use('fast-alias', 'mock-fast')  # an alias of an allowed model
    acme = index.authenticate('Bearer sk-acme-1', None)
    assert acme.may_use('mock') and acme.may_use('mock-anything')
    assert not acme.may_use('gpt-4o')
