"""``POST /v1/chat/completions``: authenticate, validate, route, call, answer.

The pipeline (auth, limits, dispatch with retries and fallback, accounting) is shared
with ``POST /v1/messages``; only the wire encoding differs (`OpenAIWire` here,
``aegisflow.web.messages.AnthropicWire`` there).
"""

import logging
import time
from functools import partial
from itertools import chain

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import ApiError
from aegisflow.errors import InsufficientQuota
from aegisflow.errors import InternalError
from aegisflow.errors import PermissionDenied
from aegisflow.errors import RateLimited
from aegisflow.errors import ServiceUnavailable
from aegisflow.errors import openai_body
from aegisflow.limits.engine import reset_label
from aegisflow.limits.plan import REASONS
from aegisflow.limits.plan import SPEND
from aegisflow.policy.engine import PolicyViolation
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import StreamGuard
from aegisflow.policy.engine import blocked_message
from aegisflow.policy.engine import check_request
from aegisflow.policy.engine import check_response
from aegisflow.routing.dispatch import Dispatcher
from aegisflow.telemetry import events as ev
from aegisflow.tokens import count_tokens
from aegisflow.tokens import prompt_tokens
from aegisflow.web.body import read_json
from aegisflow.web.headers import header_value

log = logging.getLogger('aegisflow.chat')

_JSON = 'application/json'


def authorize(gw, req):
    return gw.auth_guard.authenticate(
        req.context.client,
        gw.keys.authenticate,
        req.get_header('Authorization'),
        req.get_header('X-API-Key'),
    )


def check_model(principal, resolution):
    if not principal.may_use(resolution.requested, resolution.model):
        raise PermissionDenied(
            f"Your API key may not use the model '{resolution.requested[:100]}'.",
            param='model',
            code='model_not_allowed',
        )


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


class ChatCompletions:
    __slots__ = ('gw', 'limit', 'body_timeout', 'limiter', 'dispatcher', 'policies')

    def __init__(self, gw):
        self.gw = gw
        self.limit = gw.config.server.max_body_bytes
        self.body_timeout = gw.config.server.body_timeout_s
        self.limiter = gw.limiter
        self.dispatcher = Dispatcher(gw)
        self.policies = gw.policies

    def on_post(self, req, resp):
        obs = req.context.obs
        principal = self.authenticate(req, obs)
        chat = parse_chat_request(read_json(req, self.limit, self.body_timeout))
        self.serve(req, resp, obs, principal, chat, OpenAIWire(chat))

    def authenticate(self, req, obs):
        principal = authorize(self.gw, req)
        labels = self.gw.labels
        obs.tenant = labels.tenants.id(principal.tenant_id)
        obs.key = labels.keys.id(f'{principal.tenant_id}/{principal.key_name}')
        return principal

    def serve(self, req, resp, obs, principal, chat, wire):
        labels = self.gw.labels
        obs.requested_model = chat.model
        obs.model = labels.models.id(chat.model)
        resolution = self.gw.router.resolve(chat.model)
        obs.model = labels.models.id(resolution.model)
        check_model(principal, resolution)
        first_provider, first_model = resolution.targets[0]
        self.admit_first(
            req,
            resp,
            obs,
            principal,
            resolution.model,
            first_provider,
            first_model,
            chat,
        )
        inputs = outputs = ()
        redactor = None
        if self.policies.any:
            inputs, outputs = self.policies.for_tenant(principal.tenant_id)
            redactor = Redactor()
            if inputs:
                decision = check_request(chat.body, inputs, redactor)
                record_decision(resp, obs, decision, 'input')
        target, result = self.dispatcher.run(obs, chat, resolution)
        provider, model = target.provider, target.model
        obs.provider = labels.providers.id(provider.name)
        obs.priced_model, obs.provider_name = model, provider.name
        # PERF: headers set directly; they are the same three on every answer.
        resp.set_header('X-AegisFlow-Provider', provider.name)
        resp.set_header('X-AegisFlow-Model', header_value(model))
        resp.set_header('X-AegisFlow-Attempts', str(len(obs.attempts)))
        attempt = obs.attempts[-1]
        if not chat.stream:
            obs.response_model = attempt.response_model = str(
                result.get('model') or model
            )
            obs.usage(result.get('usage'))
            if outputs or (redactor is not None and redactor.restore):
                decision = check_response(result, outputs, redactor)
                record_decision(resp, obs, decision, 'output')
            resp.data = wire.complete(result)
            resp.content_type = _JSON
            return
        events, first = result
        obs.ttft_ns = time.perf_counter_ns() - obs.t0
        obs.response_model = attempt.response_model = str(first.get('model') or model)
        req.context.streaming = True
        resp.content_type = wire.content_type
        resp.set_header('Cache-Control', 'no-cache')
        resp.set_header('X-Accel-Buffering', 'no')
        chunks = chain((first,), events)
        if outputs or (redactor is not None and redactor.restore):
            chunks = StreamGuard(outputs, redactor, partial(_stream_hit, obs)).filter(
                chunks
            )
        resp.stream = sse(chunks, events, chat, obs, attempt, self.gw.finish, wire)

    def admit_first(self, req, resp, obs, principal, canonical, provider, model, chat):
        """Price the request on its first target and admit it against the limits
        (refusals raise)."""
        obs.provider = self.gw.labels.providers.id(provider.name)
        obs.priced_model, obs.provider_name = model, provider.name
        if self.limiter.enabled:
            self._admit(req, resp, obs, principal, canonical, provider, model, chat)

    def _admit(self, req, resp, obs, principal, canonical, provider, model, chat):
        user = req.get_header('X-AegisFlow-User') or chat.body.get('user')
        decision, obs.reserved = self.limiter.admit(
            principal.tenant_id,
            principal.key_name,
            canonical,
            provider.name,
            chat,
            user if isinstance(user, str) else None,
        )
        if decision is None:
            return
        if decision.degraded:
            obs.flags |= ev.DEGRADED
        if self.limiter.headers:
            for kind, (limit, remaining, reset_ns) in decision.headers.items():
                resp.set_header(f'x-ratelimit-limit-{kind}', str(limit))
                resp.set_header(f'x-ratelimit-remaining-{kind}', str(remaining))
                resp.set_header(f'x-ratelimit-reset-{kind}', reset_label(reset_ns))
        if decision.warnings:
            resp.set_header('X-AegisFlow-Budget-Warning', '; '.join(decision.warnings))
        if decision.admitted:
            obs.limits = decision
            return
        obs.reserved = 0
        refused = decision.refused
        retry = decision.retry_after_s
        headers = {'Retry-After': str(retry), 'retry-after-ms': str(retry * 1000)}
        if refused is None:
            obs.reject = REASONS.index('unavailable') + 1
            raise ServiceUnavailable(
                decision.message, code='limits_unavailable', headers=headers
            )
        obs.reject = REASONS.index(refused.kind) + 1
        if refused.kind == SPEND:
            raise InsufficientQuota(decision.message, headers=headers)
        if refused.rate is not None and self.limiter.headers:
            kind = refused.kind
            headers[f'x-ratelimit-limit-{kind}'] = str(refused.rate.rate)
            headers[f'x-ratelimit-remaining-{kind}'] = '0'
            headers[f'x-ratelimit-reset-{kind}'] = reset_label(retry * 1_000_000_000)
        err = RateLimited(decision.message, headers=headers)
        err.type = refused.kind  # NOTE: OpenAI's own types: "requests", "tokens"
        raise err


def record_decision(resp, obs, decision, phase):
    """Count and log a phase's policy decisions; warn in a header; raise on block."""
    if not decision.hits:
        return
    hits = obs.policy_hits
    if hits is None:
        hits = obs.policy_hits = []
    hits.extend(decision.hits)
    for hit in decision.hits:
        _log_hit(obs, hit)
    warnings = decision.warnings
    if warnings:
        previous = resp.get_header('X-AegisFlow-Policy-Warnings')
        if previous:
            warnings = [w for w in warnings if w not in previous.split(', ')]
            warnings = previous.split(', ') + warnings
        resp.set_header('X-AegisFlow-Policy-Warnings', ', '.join(warnings))
    if decision.blocked is not None:
        hit = decision.blocked
        raise PolicyViolation(blocked_message(hit, phase), hit=hit)


def _log_hit(obs, hit):
    log.info(
        'policy decision',
        extra={
            'request_id': obs.request_id,
            'policy': hit.policy.name,
            'phase': hit.policy.phase,
            'action': hit.action,
            'mode': 'dry_run' if hit.dry_run else 'enforce',
            'kind': hit.kind,
            'field': hit.path,
            'start': hit.start,
            'end': hit.end,
        },
    )


def _stream_hit(obs, hit):
    if obs.policy_hits is None:
        obs.policy_hits = []
    obs.policy_hits.append(hit)
    _log_hit(obs, hit)


def sse(chunks, source, chat, obs, attempt, finish, wire):
    """Encode chunks with `wire` and count the request when the stream ends.

    An error after the first byte becomes the wire's error event and the stream ends
    without its normal end. When the provider reports no usage, it is estimated from
    the request and the streamed text.
    """
    flags = ev.STREAMED
    usage_seen = False
    counted = 0
    try:
        for chunk in chunks:
            usage = chunk.get('usage')
            if usage:
                obs.usage(usage)
                usage_seen = True
            for choice in chunk.get('choices') or ():
                content = (choice.get('delta') or {}).get('content')
                if content:
                    counted += count_tokens(content)
            data = wire.chunk(chunk)
            if data:
                yield data
        yield wire.done()
    except GeneratorExit:
        flags |= ev.CLIENT_ABORT
        raise
    except ApiError as err:
        flags |= ev.STREAM_ERROR
        log.warning(
            'stream ended by upstream error',
            extra={
                'request_id': obs.request_id,
                'status': err.status,
                'error': err.message,
            },
        )
        yield wire.error(err)
    except Exception:
        flags |= ev.STREAM_ERROR
        log.exception('stream failed', extra={'request_id': obs.request_id})
        yield wire.error(
            InternalError(
                f'The gateway failed mid-stream (request id {obs.request_id}).'
            )
        )
    finally:
        source.close()
        if not usage_seen:
            obs.prompt = prompt_tokens(chat.messages, chat.tools or None)
            obs.completion = counted
        attempt.end(200)
        finish(obs, 200, flags=flags)
