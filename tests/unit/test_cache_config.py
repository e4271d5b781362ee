"""The ``cache`` section: off unless written, its overrides, and its errors by key
path."""

import pytest

from aegisflow.config import parse_config
from aegisflow.config.loader import ConfigError

BASE = """
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]%s}]
tenants: [{id: a, keys: [{key: sk-a, name: k}]%s}]
"""


def config(extra='', route='', tenant=''):
    return parse_config(BASE % (route, tenant) + extra, env={})


def test_the_cache_is_off_unless_a_section_is_written():
    assert config().cache.enabled is False
    assert config('cache: {ttl_s: 60}').cache.enabled is True
    assert config('cache: {enabled: false}').cache.enabled is False


def test_overrides_and_endpoints():
    c = config(
        'cache: {endpoints: {embeddings: false}}',
        route=', cache: {ttl_s: 5}',
        tenant=', cache: {enabled: false}',
    )
    assert c.cache.endpoints == ('chat', 'messages', 'responses')
    assert c.routes[0].cache.ttl_s == 5.0
    assert c.tenants[0].cache.enabled is False


def test_errors_name_the_key_path():
    with pytest.raises(ConfigError) as err:
        config('cache: {backend: redis, ttl_s: 0, namespace_by: user}')
    text = str(err.value)
    assert 'cache.ttl_s: expected a number from 1 to 31536000, found 0' in text
    assert 'cache.namespace_by: expected one of tenant, key' in text
    assert 'cache.redis_url: expected a redis:// URL' in text
