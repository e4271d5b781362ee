"""``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``: OpenAI's
Responses API, composed with the request pipeline (`aegisflow.pipeline`).

The codec is `aegisflow.wire.responses`: passed through to the targets that speak
the API, translated to the chat form for the others. Which response a request may
continue (``previous_response_id``), read or delete is the tenant's own only
(`aegisflow.usage.responses`): unknown, expired and another tenant's ids are all
404.

- a response the gateway translated is stored (unless ``store`` is false) before
  its answer, or its stream's last event, is sent; a follow-up naming it is
  translated too, with the stored conversation before its input;
- a response an upstream holds is recorded with its owner when its id is first
  seen; a follow-up naming it goes to that provider only, as sent.
"""

import logging

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import NotFound
from aegisflow.errors import ServiceUnavailable
from aegisflow.usage.database import ERRORS
from aegisflow.web.body import BodyRules
from aegisflow.web.body import parse_json
from aegisflow.web.chat import apply_headers
from aegisflow.web.chat import authenticate
from aegisflow.web.chat import stream_response
from aegisflow.wire.responses import ResponsesNative
from aegisflow.wire.responses import ResponsesWire
from aegisflow.wire.responses import assistant_message
from aegisflow.wire.responses import check
from aegisflow.wire.responses import to_chat_body

log = logging.getLogger('aegisflow.responses')


def _not_found(response_id):
    return NotFound(
        f"Response with id '{response_id[:100]}' not found.",
        param='response_id',
        code='response_not_found',
    )


def _store_error(exc):
    log.error('response store failed', extra={'error': type(exc).__name__})
    return ServiceUnavailable(
        'The response store is unavailable; retry shortly.',
        code='response_store_unavailable',
        headers={'Retry-After': '1'},
    )


class Turn:
    """What one ``POST /v1/responses`` stores: the translated response with the
    conversation it continues (`history`, the chat messages before this turn's
    answer), or the owner of a response an upstream holds."""

    __slots__ = ('store', 'ctx', 'tenant', 'chat', 'instructions', 'keep')

    def __init__(self, store, ctx, tenant, body):
        self.store = store
        self.ctx = ctx
        self.tenant = tenant
        self.chat = None
        self.instructions = bool(body.get('instructions'))
        self.keep = body.get('store') is not False

    def translated(self, response):
        if not self.keep:
            return
        messages = self.chat.messages
        if self.instructions:
            messages = messages[1:]  # NOTE: a follow-up does not inherit them
        history = [*messages, assistant_message(response['output'])]
        try:
            body = orjson.dumps(response).decode()
            stored = self.store.save(
                response['id'],
                self.tenant,
                body=body,
                history=orjson.dumps(history).decode(),
            )
        except ERRORS as exc:
            log.error('response not stored', extra={'error': type(exc).__name__})
            stored = False
        if not stored:
            self.ctx.headers['X-AegisFlow-Warning'] = (
                'response not stored: a follow-up cannot name it'
            )

    def upstream(self, response_id):
        if not self.keep:
            return
        provider = self.ctx.obs.provider_name if self.ctx.obs else None
        try:
            self.store.save(response_id, self.tenant, provider=provider or '?')
        except ERRORS as exc:
            log.error('response owner not stored', extra={'error': type(exc).__name__})


class Responses:
    """``POST /v1/responses``."""

    __slots__ = ('pipeline', 'bodies', 'store')

    def __init__(self, pipeline, server, store):
        self.pipeline = pipeline
        self.bodies = BodyRules(server)
        self.store = store

    def on_post(self, req, resp):
        ctx = req.context.request
        ctx.user = req.get_header('X-AegisFlow-User') or None
        try:
            principal = authenticate(self.pipeline, req)
            raw = self.bodies.raw(req)
            body = parse_json(raw)
            check(body)
            native, history = self._previous(body, raw, principal.tenant_id)
            turn = Turn(self.store, ctx, principal.tenant_id, body)
            turn.chat = chat = parse_chat_request(to_chat_body(body, history))
            wire = ResponsesWire(body, turn.translated, turn.upstream)
            result = self.pipeline.chat(ctx, chat, native)
            data = None if ctx.streaming else wire.complete(result)
        finally:
            apply_headers(resp, ctx)
        if ctx.streaming:
            stream_response(resp, wire, result)
            return
        resp.data = data
        resp.content_type = 'application/json'

    def _previous(self, body, raw, tenant):
        """(the request's native form; the chat messages of the stored
        conversation it continues)."""
        previous = body.get('previous_response_id')
        if previous is None:
            return ResponsesNative(raw, body), ()
        try:
            stored = self.store.find(previous, tenant)
        except ERRORS as exc:
            raise _store_error(exc) from None
        if stored is None:
            err = _not_found(previous)
            err.param = 'previous_response_id'
            raise err
        if stored.held_upstream:
            return ResponsesNative(raw, body, held_by=stored.provider), ()
        return ResponsesNative(raw, body, translate=True), orjson.loads(stored.history)


class ResponseItem:
    """``GET`` and ``DELETE /v1/responses/{response_id}``: the tenant's own."""

    __slots__ = ('pipeline', 'store', 'providers')

    def __init__(self, pipeline, store, providers):
        self.pipeline = pipeline
        self.store = store
        self.providers = providers

    def _find(self, req, response_id):
        principal = authenticate(self.pipeline, req)
        try:
            stored = self.store.find(response_id, principal.tenant_id)
        except ERRORS as exc:
            raise _store_error(exc) from None
        if stored is None:
            raise _not_found(response_id)
        return principal.tenant_id, stored

    def _upstream(self, stored, method):
        provider = self.providers.get(stored.provider)
        if provider is None or 'responses' not in provider.relays:
            raise _not_found(stored.id)
        status, data = provider.response_op(method, stored.id)
        if status == 404:
            raise _not_found(stored.id)
        return data

    def on_get(self, req, resp, response_id):
        _, stored = self._find(req, response_id)
        if stored.held_upstream:
            resp.data = self._upstream(stored, 'GET')
        else:
            resp.data = stored.body.encode()
        resp.content_type = 'application/json'

    def on_delete(self, req, resp, response_id):
        tenant, stored = self._find(req, response_id)
        if stored.held_upstream:
            self._upstream(stored, 'DELETE')
        try:
            self.store.delete(response_id, tenant)
        except ERRORS as exc:
            raise _store_error(exc) from None
        resp.data = orjson.dumps(
            {'id': response_id, 'object': 'response', 'deleted': True}
        )
        resp.content_type = 'application/json'
