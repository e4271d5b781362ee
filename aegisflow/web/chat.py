"""``POST /v1/chat/completions``: authenticate, validate, route, call, answer."""

import logging
from itertools import chain

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import ApiError
from aegisflow.errors import InternalError
from aegisflow.errors import PermissionDenied
from aegisflow.errors import UpstreamFailed
from aegisflow.errors import openai_body
from aegisflow.web.body import read_json

log = logging.getLogger('aegisflow.chat')

_DONE = b'data: [DONE]\n\n'
_JSON = 'application/json'


def authorize(gw, req):
    return gw.keys.authenticate(
        req.get_header('Authorization'), req.get_header('X-API-Key')
    )


def check_model(principal, resolution):
    if not principal.may_use(resolution.requested, resolution.model):
        raise PermissionDenied(
            f"Your API key may not use the model '{resolution.requested[:100]}'.",
            param='model',
            code='model_not_allowed',
        )


class ChatCompletions:
    __slots__ = ('gw', 'limit')

    def __init__(self, gw):
        self.gw = gw
        self.limit = gw.config.server.max_body_bytes

    def on_post(self, req, resp):
        principal = authorize(self.gw, req)
        chat = parse_chat_request(read_json(req, self.limit))
        resolution = self.gw.router.resolve(chat.model)
        check_model(principal, resolution)
        provider, model = resolution.targets[0]
        # PERF: headers set directly; they are the same three on every answer.
        resp.set_header('X-AegisFlow-Provider', provider.name)
        resp.set_header('X-AegisFlow-Model', model)
        resp.set_header('X-AegisFlow-Attempts', '1')
        if not chat.stream:
            resp.data = orjson.dumps(provider.complete(chat, model))
            resp.content_type = _JSON
            return
        events = provider.stream(chat, model)
        try:
            first = next(events)
        except StopIteration:
            raise UpstreamFailed(
                f"Provider '{provider.name}' sent an empty stream."
            ) from None
        resp.content_type = 'text/event-stream'
        resp.set_header('Cache-Control', 'no-cache')
        resp.set_header('X-Accel-Buffering', 'no')
        resp.stream = sse(
            chain((first,), events), events, chat.include_usage, req.context.request_id
        )


def sse(chunks, source, include_usage, request_id):
    """Encode chunks as server-sent events; an error after the first byte becomes an
    error event and the stream ends without ``[DONE]``."""
    try:
        for chunk in chunks:
            if 'usage' in chunk:
                if not chunk.get('choices'):
                    if include_usage:
                        yield b'data: ' + orjson.dumps(chunk) + b'\n\n'
                    continue
                if not include_usage:
                    del chunk['usage']
            yield b'data: ' + orjson.dumps(chunk) + b'\n\n'
        yield _DONE
    except ApiError as err:
        log.warning(
            'stream ended by upstream error',
            extra={
                'request_id': request_id,
                'status': err.status,
                'error': err.message,
            },
        )
        yield b'data: ' + orjson.dumps(openai_body(err)) + b'\n\n'
    except Exception:
        log.exception('stream failed', extra={'request_id': request_id})
        err = InternalError(f'The gateway failed mid-stream (request id {request_id}).')
        yield b'data: ' + orjson.dumps(openai_body(err)) + b'\n\n'
    finally:
        source.close()
