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
from aegisflow.web.chat import ChatResource
from aegisflow.web.chat import PipelineResource
from aegisflow.web.chat import apply_headers
from aegisflow.web.chat import authenticate
from aegisflow.wire.anthropic import AnthropicWire
from aegisflow.wire.anthropic import to_chat_body


def messages(pipeline, server):
    """``POST /v1/messages``: Anthropic's body in, Anthropic's answer out."""
    return ChatResource(pipeline, server, to_chat_body, AnthropicWire)


# what a count may carry that the chat form cannot (passed to Anthropic as sent)
_COUNT_ONLY = ('thinking', 'top_k', 'max_tokens')


class CountTokens(PipelineResource):
    """``{"input_tokens": N}`` for a Messages body, as Claude Code asks every turn:
    Anthropic's own count through an ``anthropic`` target, the gateway's estimate
    through any other (never a made-up zero: a client would then never compact)."""

    __slots__ = ()

    def on_post(self, req, resp):
        ctx = req.context.request
        try:
            authenticate(self.pipeline, req)
            body = self.body(req)
            _check_count_only(body)
            # NOTE: checked and estimated in the chat form, which has no thinking
            # or top_k and needs a max_tokens; the body itself goes upstream
            counted = {k: v for k, v in body.items() if k not in _COUNT_ONLY}
            counted['max_tokens'] = 1
            chat = parse_chat_request(to_chat_body(counted))
            if chat.stream:
                raise InvalidRequest('stream: a count is not streamed', param='stream')
            result = self.pipeline.count_tokens(ctx, body, chat)
        finally:
            apply_headers(resp, ctx)
        resp.data = orjson.dumps({'input_tokens': result['input_tokens']})


def _check_count_only(body):
    """What only a count may carry is checked here (the chat form never sees it)."""
    thinking = body.get('thinking')
    if thinking is not None and not isinstance(thinking, dict):
        raise InvalidRequest('thinking: expected an object', param='thinking')
    top_k = body.get('top_k')
    if top_k is not None and (
        not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0
    ):
        raise InvalidRequest('top_k: expected a non-negative integer', param='top_k')
