"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's
Messages API in front of any provider.

The body is checked and translated by the Anthropic codec (`aegisflow.wire.anthropic`:
``to_chat_body`` in, `AnthropicWire` out) and served by the request pipeline like
``/v1/chat/completions`` (limits, routing, retries, fallback, accounting); errors
are rendered in Anthropic's envelope by the app's error handlers.
"""

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import InvalidRequest
from aegisflow.web.body import BodyRules
from aegisflow.web.chat import ChatResource
from aegisflow.web.chat import apply_headers
from aegisflow.web.chat import authenticate
from aegisflow.wire.anthropic import AnthropicWire
from aegisflow.wire.anthropic import to_chat_body
from aegisflow.wire.relay import FORWARDED
from aegisflow.wire.relay import MessagesNative


def messages(pipeline, server):
    """``POST /v1/messages``: Anthropic's body in, Anthropic's answer out; passed
    through untranslated to Anthropic targets (`aegisflow.wire.relay`)."""
    return ChatResource(pipeline, server, to_chat_body, AnthropicWire, _native)


def _native(req, raw, body):
    headers = {}
    for name in FORWARDED:
        value = req.get_header(name)
        if value:
            headers[name] = value
    return MessagesNative(raw, body, headers)


class CountTokens:
    """``{"input_tokens": N}`` for a Messages body, as Claude Code asks every turn:
    Anthropic's own count through an ``anthropic`` target, the gateway's estimate
    through any other (never a made-up zero: a client would then never compact)."""

    __slots__ = ('pipeline', 'bodies')

    def __init__(self, pipeline, server):
        self.pipeline = pipeline
        self.bodies = BodyRules(server)

    def on_post(self, req, resp):
        ctx = req.context.request
        try:
            authenticate(self.pipeline, req)
            body = self.bodies.json(req)
            # NOTE: checked and estimated in the chat form, which needs a
            # max_tokens (a count has none); the body itself goes upstream
            chat = parse_chat_request(to_chat_body(dict(body, max_tokens=1)))
            if chat.stream:
                raise InvalidRequest('stream: a count is not streamed', param='stream')
            result = self.pipeline.count_tokens(ctx, body, chat)
        finally:
            apply_headers(resp, ctx)
        resp.data = orjson.dumps({'input_tokens': result['input_tokens']})
