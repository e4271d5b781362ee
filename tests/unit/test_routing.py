import pytest

from aegisflow.config import parse_config
from aegisflow.errors import NotFound
from aegisflow.providers import build_providers
from aegisflow.routing.router import Router

CONFIG = """
providers:
  - {name: mock, type: mock, models: [mock, mock-fast]}
  - {name: other, type: mock, models: ["gpt-*"]}
routes:
  - {match: "gpt-4*", targets: [{provider: mock, model: mock-fast}, other]}
  - {match: "gpt-*", targets: [other]}
  - {match: "*", targets: [mock]}
aliases: {fast: mock-fast, smart: gpt-4o}
tenants: [{id: a, keys: [{key: k}]}]
"""


@pytest.fixture(scope='module')
def router():
    config = parse_config(CONFIG, env={})
    return Router(config, build_providers(config))


def _names(res):
    return [(p.name, m) for p, m in res.targets]


def test_routing_first_matching_route_in_target_order(router):
    res = router.resolve('gpt-4o')
    assert res.model == 'gpt-4o'
    assert _names(res) == [('mock', 'mock-fast'), ('other', 'gpt-4o')]
    assert _names(router.resolve('gpt-3.5')) == [('other', 'gpt-3.5')]
    assert _names(router.resolve('mock')) == [('mock', 'mock')]


def test_routing_aliases(router):
    res = router.resolve('fast')
    assert (res.requested, res.model) == ('fast', 'mock-fast')
    assert _names(router.resolve('smart'))[0] == ('mock', 'mock-fast')


def test_routing_unknown_model_is_404(router):
    with pytest.raises(NotFound) as exc:
        router.resolve('llama-3')  # "*" matches, but mock does not serve it
    assert exc.value.code == 'model_not_found' and exc.value.param == 'model'


def test_routing_cache_is_bounded(router):
    for i in range(5000):
        router.resolve(f'gpt-x{i}')
    assert len(router._cache) <= 4096


def test_routing_catalogue_lists_concrete_names(router):
    assert router.catalogue() == [
        ('fast', ('mock-fast', 'mock')),
        ('mock', ('mock', 'mock')),
        ('mock-fast', ('mock-fast', 'mock')),
        ('smart', ('gpt-4o', 'mock')),
    ]
