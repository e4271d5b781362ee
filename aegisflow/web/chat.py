"""``POST /v1/chat/completions``: OpenAI's Chat Completions on the wire, composed
with the request pipeline (`aegisflow.pipeline`).

This module holds what every chat-shaped codec shares: `ChatResource` reads the key
and the body, hands the parsed request to the pipeline, and renders the answer or
the stream with a wire (`OpenAIWire` here, ``aegisflow.wire.anthropic.AnthropicWire``
on ``/v1/messages``); `apply_headers` puts the headers the pipeline decided on the
response, whatever the outcome.
"""

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import openai_body
from aegisflow.pipeline import END
from aegisflow.web.body import BodyRules
from aegisflow.web.body import parse_json
from aegisflow.web.headers import header_value
from aegisflow.wire.relay import Event

_JSON = 'application/json'


class OpenAIWire:
    """Chat Completions on the wire: JSON objects, ``data:`` events, ``[DONE]``."""

    content_type = 'text/event-stream'

    def __init__(self, chat):
        self.include_usage = chat.include_usage

    def complete(self, data):
        return orjson.dumps(data)

    def chunk(self, chunk):
        if 'usage' in chunk:
            if not chunk.get('choices'):
                return (
                    b'data: ' + orjson.dumps(chunk) + b'\n\n'
                    if self.include_usage
                    else None
                )
            if not self.include_usage:
                del chunk['usage']
        return b'data: ' + orjson.dumps(chunk) + b'\n\n'

    def done(self):
        return b'data: [DONE]\n\n'

    def error(self, err):
        return b'data: ' + orjson.dumps(openai_body(err)) + b'\n\n'


class Encoded:
    """The WSGI body of a pipeline stream in `wire`'s format: each chunk (or
    relayed event), then its end (the wire's done event, or its error event). The
    server closes it when the response is over, which closes the stream: a client
    that goes away, even before the first byte, ends the request at once."""

    __slots__ = ('wire', 'stream')

    def __init__(self, wire, stream):
        self.wire = wire
        self.stream = stream

    def __iter__(self):
        wire = self.wire
        for item in self.stream:
            if type(item) is dict:
                data = wire.chunk(item)
                if data:
                    yield data
            elif type(item) is Event:
                yield wire.relay(item)
            elif item is END:
                yield wire.done()
            else:
                yield wire.error(item)

    def close(self):
        self.stream.close()


def stream_response(resp, wire, stream):
    """Answer with a pipeline stream, encoded by `wire`, as server-sent events."""
    resp.content_type = wire.content_type
    resp.set_header('Cache-Control', 'no-cache')
    resp.set_header('X-Accel-Buffering', 'no')
    resp.stream = Encoded(wire, stream)


def apply_headers(resp, ctx):
    for name, value in ctx.headers.items():
        resp.set_header(name, header_value(value))


def authenticate(pipeline, req):
    """The request's principal (the failed-key guard and the key lookup)."""
    return pipeline.authenticate(
        req.context.request,
        req.get_header('Authorization'),
        req.get_header('X-API-Key'),
    )


class ChatResource:
    """A chat-shaped endpoint: ``POST /v1/chat/completions`` (the body is the chat
    form, `OpenAIWire`) and ``POST /v1/messages`` (``to_chat_body``,
    ``AnthropicWire``) are two of these. `to_chat` turns the JSON body into the
    pipeline's chat form; `wire(chat)` makes the codec of the answer; `native`, if
    given, makes the form passed through untranslated to the providers that speak
    the wire format (``native(req, raw, body)``)."""

    __slots__ = ('pipeline', 'bodies', 'to_chat', 'wire', 'native')

    def __init__(self, pipeline, server, to_chat, wire, native=None):
        self.pipeline = pipeline
        self.bodies = BodyRules(server)
        self.to_chat = to_chat
        self.wire = wire
        self.native = native

    def on_post(self, req, resp):
        ctx = req.context.request
        ctx.user = req.get_header('X-AegisFlow-User') or None
        try:
            authenticate(self.pipeline, req)
            native = None
            if self.native is None:
                body = self.bodies.json(req)
            else:
                raw = self.bodies.raw(req)
                body = parse_json(raw)
            chat = parse_chat_request(self.to_chat(body))
            if self.native is not None:
                native = self.native(req, raw, body)
            wire = self.wire(chat)
            result = self.pipeline.chat(ctx, chat, native)
        finally:
            apply_headers(resp, ctx)
        if ctx.streaming:
            stream_response(resp, wire, result)
            return
        resp.data = wire.complete(result)
        resp.content_type = _JSON


def chat_completions(pipeline, server):
    """``POST /v1/chat/completions``: the body is already the chat form."""
    return ChatResource(pipeline, server, lambda body: body, OpenAIWire)
