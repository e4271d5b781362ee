"""``GET /openapi.json``: the OpenAPI 3.1 description of the gateway's own API.

The description is kept as YAML beside this module (``openapi.yaml``), read on the
first request for it and served as JSON bytes from then on; it needs no key.
"""

import pathlib

import orjson
import yaml

SOURCE = pathlib.Path(__file__).with_name('openapi.yaml')


# answered by the HTTP server before any route, so by every operation alike
SERVER_REFUSALS = {
    '414': {'$ref': '#/components/responses/RequestLineTooLong'},
    '431': {'$ref': '#/components/responses/HeadersTooLarge'},
}
METHODS = ('get', 'post', 'put', 'patch', 'delete')


def load_description():
    """The description as a dict (the YAML file, anchors resolved, and the
    server's own refusals added to every operation)."""
    with SOURCE.open(encoding='utf-8') as f:
        doc = yaml.safe_load(f)
    for item in doc['paths'].values():
        for method, op in item.items():
            if method in METHODS:
                op['responses'] = {**SERVER_REFUSALS, **op['responses']}
    return doc


class OpenApi:
    __slots__ = ('version', 'data')

    def __init__(self, version):
        self.version = version
        self.data = None

    def on_get(self, req, resp):
        # NOTE: built on first use: parsing the YAML costs a worker about 2 MB of
        # RSS that most workers never need (two threads may build it at once; both
        # build the same bytes)
        if self.data is None:
            doc = load_description()
            doc['info']['version'] = self.version
            self.data = orjson.dumps(doc)
        resp.data = self.data
