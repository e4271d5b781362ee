"""``GET /v1/models`` and ``GET /v1/models/{id}``: what the caller's tenant may use."""

import time

import orjson

from aegisflow.errors import NotFound
from aegisflow.pipeline import check_model
from aegisflow.web.chat import authenticate


def _entry(model_id, owner, created):
    return {'id': model_id, 'object': 'model', 'created': created, 'owned_by': owner}


class Models:
    __slots__ = ('gw', 'pipeline', 'created')

    def __init__(self, gw, pipeline):
        self.gw = gw
        self.pipeline = pipeline
        self.created = int(time.time())

    def on_get(self, req, resp):
        principal = authenticate(self.pipeline, req)
        data = [
            _entry(model_id, owner, self.created)
            for model_id, (resolved, owner) in self.gw.catalogue
            if principal.may_use(model_id, resolved)
        ]
        resp.data = orjson.dumps({'object': 'list', 'data': data})


class ModelItem:
    __slots__ = ('gw', 'pipeline', 'created')

    def __init__(self, gw, pipeline):
        self.gw = gw
        self.pipeline = pipeline
        self.created = int(time.time())

    def on_get(self, req, resp, model_id):
        principal = authenticate(self.pipeline, req)
        resolution = self.gw.router.resolve(model_id)
        try:
            check_model(principal, resolution)
        except Exception:
            # NOTE: a model the tenant may not use is not shown to exist either.
            raise NotFound(
                f"The model '{model_id[:100]}' does not exist.",
                param='model',
                code='model_not_found',
            ) from None
        owner = resolution.targets[0][0].name
        resp.data = orjson.dumps(_entry(model_id, owner, self.created))
