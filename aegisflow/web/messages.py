"""``POST /v1/messages``: Anthropic's Messages API in front of any provider.

The body is checked and translated by the Anthropic codec (`aegisflow.wire.anthropic`:
``to_chat_body`` in, `AnthropicWire` out) and served by the request pipeline like
``/v1/chat/completions`` (limits, routing, retries, fallback, accounting); errors
are rendered in Anthropic's envelope by the app's error handlers.
"""

from aegisflow.web.chat import serve_chat
from aegisflow.wire.anthropic import AnthropicWire
from aegisflow.wire.anthropic import to_chat_body


class Messages:
    __slots__ = ('pipeline', 'limit', 'body_timeout')

    def __init__(self, pipeline, server):
        self.pipeline = pipeline
        self.limit = server.max_body_bytes
        self.body_timeout = server.body_timeout_s

    def on_post(self, req, resp):
        serve_chat(
            self.pipeline,
            req,
            resp,
            self.limit,
            self.body_timeout,
            to_chat_body,
            AnthropicWire,
        )
