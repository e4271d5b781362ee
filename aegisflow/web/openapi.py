"""``GET /openapi.json``: the OpenAPI 3.1 description of the gateway's own API.

The description is kept as YAML beside this module (``openapi.yaml``), read once
when the app is built and served as JSON bytes; it needs no key.
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
    __slots__ = ('data',)

    def __init__(self, version):
        doc = load_description()
        doc['info']['version'] = version
        self.data = orjson.dumps(doc)

    def on_get(self, req, resp):
        resp.data = self.data
