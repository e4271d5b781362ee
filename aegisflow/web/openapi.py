"""``GET /openapi.json``: the OpenAPI 3.1 description of the gateway's own API.

The description is kept as YAML beside this module (``openapi.yaml``), read on the
first request for it and served as JSON bytes from then on; it needs no key.
"""

import pathlib

import orjson
import yaml

SOURCE = pathlib.Path(__file__).with_name('openapi.yaml')


def load_description():
    """The description as a dict (the YAML file, anchors resolved)."""
    with SOURCE.open(encoding='utf-8') as f:
        return yaml.safe_load(f)


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
