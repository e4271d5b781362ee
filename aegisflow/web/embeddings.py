"""``POST /v1/embeddings``: OpenAI's embeddings API, routed like chat.

The request is checked (``input`` a string, a list of strings, or token arrays;
``dimensions``; ``encoding_format``), routed to the route's targets whose provider
offers embeddings (mock, openai, openai_compatible, ollama), with the same limits
(tokens reserved for the input only), retries, fallback, breakers and accounting.
Token-array input goes only to OpenAI-style providers, which take it as it is.
"""

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.tokens import prompt_tokens
from aegisflow.web.body import BodyRules
from aegisflow.web.chat import apply_headers
from aegisflow.web.chat import authenticate

_MAX_INPUTS = 2048


class EmbeddingsRequest:
    __slots__ = (
        'body',
        'model',
        'texts',
        'token_ids',
        'dimensions',
        'joined',
    )

    def __init__(self, body):
        self.body = body
        model = body.get('model')
        if not isinstance(model, str) or not model.strip():
            raise InvalidRequest(
                "Missing required parameter: 'model'.",
                param='model',
                code='missing_required_parameter',
            )
        self.model = model
        raw = body.get('input')
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise InvalidRequest(
                "Invalid 'input': expected a string or a non-empty array.",
                param='input',
                code='invalid_type',
            )
        if len(raw) > _MAX_INPUTS:
            raise InvalidRequest(
                f"Invalid 'input': at most {_MAX_INPUTS} items.",
                param='input',
                code='invalid_value',
            )
        self.token_ids = not isinstance(raw[0], str)
        for i, item in enumerate(raw):
            ok = (
                (isinstance(item, str) and item)
                if not self.token_ids
                else (isinstance(item, int) and not isinstance(item, bool))
                or (
                    isinstance(item, list)
                    and item
                    and all(
                        isinstance(t, int) and not isinstance(t, bool) for t in item
                    )
                )
            )
            if not ok:
                raise InvalidRequest(
                    f"Invalid 'input[{i}]': expected a non-empty "
                    'string (or, for all items, token ids).',
                    param=f'input[{i}]',
                    code='invalid_type',
                )
        self.texts = raw if not self.token_ids else []
        dims = body.get('dimensions')
        if dims is not None and (
            not isinstance(dims, int)
            or isinstance(dims, bool)
            or not 1 <= dims <= 65536
        ):
            raise InvalidRequest(
                "Invalid 'dimensions': expected an integer from 1 to 65536.",
                param='dimensions',
                code='invalid_value',
            )
        self.dimensions = dims
        user = body.get('user')
        if user is not None and not isinstance(user, str):
            raise InvalidRequest(
                "Invalid type for 'user': expected a string.",
                param='user',
                code='invalid_type',
            )
        fmt = body.get('encoding_format')
        if fmt is not None and fmt not in ('float', 'base64'):
            raise InvalidRequest(
                "Invalid 'encoding_format': expected float or base64.",
                param='encoding_format',
                code='invalid_value',
            )
        self.joined = (
            '\n'.join(self.texts) if self.texts else ' '.join(str(t) for t in raw)
        )

    def reservation(self, default_completion):
        """(the input's tokens, nothing to complete) for the limits."""
        return prompt_tokens([{'role': 'user', 'content': self.joined}]), 0


class Embeddings:
    __slots__ = ('pipeline', 'bodies')

    def __init__(self, pipeline, server):
        self.pipeline = pipeline
        self.bodies = BodyRules(server)

    def on_post(self, req, resp):
        ctx = req.context.request
        ctx.user = req.get_header('X-AegisFlow-User') or None
        try:
            authenticate(self.pipeline, req)
            request = EmbeddingsRequest(self.bodies.json(req))
            result = self.pipeline.embeddings(ctx, request)
        finally:
            apply_headers(resp, ctx)
        resp.data = orjson.dumps(result)
