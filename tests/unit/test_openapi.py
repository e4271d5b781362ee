"""The OpenAPI description and the app's routes are the same set of operations."""

import re

import schemathesis

from aegisflow.config import parse_config
from aegisflow.web.app import create_app
from aegisflow.web.openapi import load_description
from tests.conftest import ACCEPTANCE_CONFIG

METHODS = ('get', 'post', 'put', 'patch', 'delete')
# the admin console's static files: a page for browsers, not an API operation
CONSOLE = {('/admin', 'get'), ('/admin/{name}', 'get')}


def _routes(nodes):
    for node in nodes:
        if node.resource is not None:
            yield node.uri_template, node.resource
        yield from _routes(node.children)


def app_operations():
    app = create_app(parse_config(ACCEPTANCE_CONFIG, env={}))
    out = set()
    for template, resource in _routes(app._router._roots):
        path = re.sub(r'\{(\w+):\w+\}', r'{\1}', template)
        out |= {(path, m) for m in METHODS if hasattr(resource, f'on_{m}')}
    return out


def described_operations(doc):
    return {
        (path, method)
        for path, item in doc['paths'].items()
        for method in item
        if method in METHODS
    }


def test_every_route_and_method_is_described_and_nothing_else():
    doc = load_description()
    assert doc['openapi'] == '3.1.0'
    assert described_operations(doc) == app_operations() - CONSOLE
    assert CONSOLE <= app_operations()


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get('$ref'), str):
            yield node['$ref']
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves_and_schemathesis_loads_every_operation():
    doc = load_description()
    refs = set(_refs(doc))
    assert len(refs) > 30
    for ref in refs:
        assert ref.startswith('#/'), ref
        node = doc
        for part in ref[2:].split('/'):
            assert part in node, f'dangling {ref}'
            node = node[part]
    schema = schemathesis.openapi.from_dict(doc)
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert labels == {f'{m.upper()} {p}' for p, m in described_operations(doc)}


def test_every_operation_documents_its_errors_and_security():
    doc = load_description()
    for path, item in doc['paths'].items():
        for method, op in item.items():
            codes = set(op['responses'])
            assert '405' in codes, (method, path)
            # refused by the HTTP server before routing, on every path
            assert {'414', '431'} <= codes, (method, path)
            secured = op.get('security', doc.get('security')) not in (None, [])
            if path.startswith('/admin/'):
                assert {'401', '403', '404'} <= codes, (method, path)
                assert op['security'] == [{'adminBearer': []}, {'adminApiKey': []}]
            elif path.startswith('/v1/'):
                assert secured and '401' in codes, (method, path)
            if 'requestBody' in op:
                assert {'400', '408', '413', '415'} <= codes, (method, path)
