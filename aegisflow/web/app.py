"""The Falcon application: routes, the request-id middleware and error mapping.

Every error, whatever raised it (our `ApiError`s, Falcon's routing errors, an
unexpected exception), leaves through one of the handlers here and is rendered in the
wire format of the endpoint the client called.
"""

import logging
import re

import falcon

from aegisflow import __version__
from aegisflow import errors
from aegisflow.gateway import Gateway
from aegisflow.logs import bind_request
from aegisflow.pipeline import Pipeline
from aegisflow.telemetry import events as ev
from aegisflow.telemetry.tracecontext import new_request_id
from aegisflow.web import admin
from aegisflow.web.admin_console import SECURITY_HEADERS
from aegisflow.web.admin_console import is_admin
from aegisflow.web.chat import chat_completions
from aegisflow.web.client import ClientAddress
from aegisflow.web.embeddings import Embeddings
from aegisflow.web.health import Health
from aegisflow.web.health import Ready
from aegisflow.web.messages import CountTokens
from aegisflow.web.messages import messages
from aegisflow.web.metrics import Metrics
from aegisflow.web.models import ModelItem
from aegisflow.web.models import Models
from aegisflow.web.openapi import OpenApi
from aegisflow.web.responses import ResponseItem
from aegisflow.web.responses import Responses

log = logging.getLogger('aegisflow.http')

_SANE_ID = re.compile(r'[A-Za-z0-9._:\-]{1,128}\Z')


_ROUTE_OF = {
    '/v1/chat/completions': ev.ROUTE_IDS['chat'],
    '/v1/messages': ev.ROUTE_IDS['messages'],
    '/v1/embeddings': ev.ROUTE_IDS['embeddings'],
    '/v1/messages/count_tokens': ev.ROUTE_IDS['count_tokens'],
    '/v1/responses': ev.ROUTE_IDS['responses'],
}
# NOTE: health, readiness, metrics, the API description and the admin API are
# not traffic: not counted.
_UNCOUNTED = frozenset(('/healthz', '/readyz', '/metrics', '/openapi.json'))


class RequestTelemetry:
    """Every response carries ``X-Request-ID`` (a sane client one is echoed). Each
    request gets the pipeline's `RequestContext` as ``req.context.request``, with
    the client's address (`aegisflow.web.client`) resolved once; every request
    except health, readiness, metrics, the API description and the admin API is
    counted, once, by the pipeline's `finish`: here for the requests no stream
    is left to finish."""

    __slots__ = ('pipeline', 'client')

    def __init__(self, pipeline, client):
        self.pipeline = pipeline
        self.client = client

    def process_request(self, req, resp):
        rid = req.get_header('X-Request-ID')
        if rid is None or not _SANE_ID.match(rid):
            rid = new_request_id()
        ctx = req.context
        ctx.request_id = rid
        client = self.client(req)
        resp.set_header('X-Request-ID', rid)
        path = req.path
        admin = is_admin(path)
        if admin or path in _UNCOUNTED:
            ctx.request = self.pipeline.begin(rid, None, 0, client, counted=False)
            if admin:
                _admin_headers(path, resp)
            bind_request(rid)
            return
        route = _ROUTE_OF.get(path)
        if route is None:
            route = ev.ROUTE_IDS['models' if path.startswith('/v1/models') else 'other']
        ctx.request = request = self.pipeline.begin(
            rid, req.get_header('traceparent'), route, client
        )
        request.cache_control = req.get_header(
            'X-AegisFlow-Cache-Control'
        ) or req.get_header('Cache-Control')
        obs = request.obs
        if obs.flags & ev.SAMPLED:
            bind_request(rid, obs.trace_id.hex(), obs.span_id.hex())
        else:
            bind_request(rid)

    def process_response(self, req, resp, resource, req_succeeded):
        request = req.context.get('request')
        # NOTE: a stream finishes its request when it ends, not here
        if request is not None and not request.streaming:
            self.pipeline.finish(request, resp.status_code)


def _admin_headers(path, resp):
    for name, value in SECURITY_HEADERS:
        resp.set_header(name, value)
    if path.startswith('/admin/v1/'):  # NOTE: answers may hold a key shown once
        resp.set_header('Cache-Control', 'no-store')


def _render(req, resp, err):
    resp.status = err.status
    if req.path.startswith('/v1/messages'):
        resp.data = errors.render_anthropic(err)
    else:
        resp.data = errors.render_openai(err)
    resp.content_type = 'application/json'
    for name, value in err.headers.items():
        resp.set_header(name, value)


def _on_api_error(req, resp, ex, params):
    _render(req, resp, ex)


def _on_http_error(req, resp, ex, params):
    path = req.path[:200]
    if isinstance(ex, falcon.HTTPRouteNotFound) or ex.status_code == 404:
        err = errors.NotFound(
            f'Unknown request URL: {req.method} {path}.', code='unknown_url'
        )
    elif isinstance(ex, falcon.HTTPMethodNotAllowed):
        err = errors.MethodNotAllowed(
            f'Method {req.method} is not allowed on {path}.',
            headers={'Allow': ex.headers.get('Allow', '')},
        )
    else:
        text = ex.description or ex.title or 'Invalid request.'
        err = errors.InvalidRequest(text)
        err.status = ex.status_code
    _render(req, resp, err)


def _on_unexpected(req, resp, ex, params):
    rid = getattr(req.context, 'request_id', '-')
    log.error('unexpected error', exc_info=ex, extra={'request_id': rid})
    _render(
        req,
        resp,
        errors.InternalError(
            'The gateway hit an unexpected error. '
            f'Quote request id {rid} when reporting it.'
        ),
    )


def create_app(config, *, concurrency=1, gateway=None):
    gw = gateway or Gateway(config, concurrency=concurrency)
    pipeline = Pipeline(gw)
    telemetry = RequestTelemetry(pipeline, ClientAddress(config.server.trusted_proxies))
    app = falcon.App(middleware=[telemetry], cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.default_media_type = 'application/json'
    server = config.server
    app.add_route('/v1/chat/completions', chat_completions(pipeline, server))
    app.add_route('/v1/messages', messages(pipeline, server))
    app.add_route('/v1/messages/count_tokens', CountTokens(pipeline, server))
    app.add_route('/v1/embeddings', Embeddings(pipeline, server))
    app.add_route('/v1/responses', Responses(pipeline, server, gw.responses))
    app.add_route(
        '/v1/responses/{response_id}',
        ResponseItem(pipeline, gw.responses, gw.providers),
    )
    app.add_route('/v1/models', Models(gw, pipeline))
    app.add_route('/v1/models/{model_id:path}', ModelItem(gw, pipeline))
    admin.add_routes(app, gw)
    app.add_route('/healthz', Health())
    app.add_route('/readyz', Ready(gw, gw.telemetry.checks()))
    app.add_route('/metrics', Metrics(gw))
    app.add_route('/openapi.json', OpenApi(__version__))
    app.add_error_handler(Exception, _on_unexpected)
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    app.add_error_handler(errors.ApiError, _on_api_error)
    return app
