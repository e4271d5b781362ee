"""The one owner of a request (DESIGN section 2), whatever wire format it came in.

    authenticate -> resolve and check the model -> admit (limits, reservation,
    budget) -> input policies -> dispatch (strategy, breakers, retries, fallback)
    -> output policies (stream-aware) -> settle (limits, usage, telemetry)

The web codecs (`aegisflow.web`) parse a wire format into a request, hand it to a
`Pipeline` method, and render what comes back (a complete answer, a stream of
chunks, or the `ApiError` raised) in the same format. The pipeline knows nothing of
HTTP: the response headers it decides (which provider and model served, attempts,
rate-limit and warning headers) are collected in the `RequestContext` for the codec.

`Pipeline.finish` is the one place a request ends: the pipeline calls it when a
complete answer is ready and when a stream ends (completed, failed, or abandoned by
the client); the request middleware calls it, through the same method, for the
requests no stream is left to finish (refusals, errors, routes outside the
pipeline). It settles the limits and counts the request once.

A stream (`Stream`) yields chat chunks, ended by `END` or by the `ApiError` that
cut it after its first byte; the codec encodes each item in its wire format, and
closes the stream when the response is done, read to the end or not.
"""

import logging
import time
from functools import partial
from itertools import chain

import orjson

from aegisflow.cache.answer import assemble
from aegisflow.cache.answer import chunks as answer_chunks
from aegisflow.cache.answer import placeholders_of
from aegisflow.cache.answer import restored
from aegisflow.errors import ApiError
from aegisflow.errors import InsufficientQuota
from aegisflow.errors import InternalError
from aegisflow.errors import InvalidRequest
from aegisflow.errors import PermissionDenied
from aegisflow.errors import RateLimited
from aegisflow.errors import ServiceUnavailable
from aegisflow.limits.engine import reset_label
from aegisflow.limits.plan import REASONS
from aegisflow.limits.plan import SPEND
from aegisflow.policy.engine import PolicyViolation
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import StreamGuard
from aegisflow.policy.engine import blocked_message
from aegisflow.policy.engine import check_embeddings
from aegisflow.policy.engine import check_request
from aegisflow.policy.engine import check_response
from aegisflow.routing.dispatch import Dispatcher
from aegisflow.routing.dispatch import call_chat
from aegisflow.routing.dispatch import first_of
from aegisflow.telemetry import events as ev
from aegisflow.tokens import count_tokens
from aegisflow.tokens import prompt_tokens
from aegisflow.wire.relay import Event
from aegisflow.wire.relay import Relayed

log = logging.getLogger('aegisflow.chat')

END = object()  # the last item of a stream that ended as it should
CHAT = 'chat'  # the answers the cache keeps: the chat form, or `Native.answer_kind`


class RequestContext:
    """One request as the pipeline holds it: its telemetry record (`obs`, None for
    requests that are not counted), the client's address, the authenticated
    principal, the end user named by the client (for per-user limits), the admitted
    limits (settled at the end), the response headers decided so far (raw values:
    the codec encodes them), and whether a stream owns the end of the request."""

    __slots__ = (
        'obs',
        'client',
        'user',
        'principal',
        'limits',
        'headers',
        'streaming',
        'cache_control',
    )

    def __init__(self, obs, client, user=None):
        self.obs = obs
        self.client = client
        self.user = user
        self.principal = None
        self.limits = None
        self.headers = {}
        self.streaming = False
        self.cache_control = None  # the client's Cache-Control, for the cache


class Stream:
    """A pipeline stream: iterate it once, and close it whether or not it was
    iterated. NOTE: a generator closed before its first item never runs its
    ``finally``; a stream closed unread (the client went away before the first
    byte was written) is finished here instead, as abandoned by the client."""

    __slots__ = ('_items', '_unread')

    def __init__(self, items, unread):
        self._items = items
        self._unread = unread

    def __iter__(self):
        self._unread = None
        return self._items

    def close(self):
        unread, self._unread = self._unread, None
        if unread is not None:
            unread()
        self._items.close()


def check_model(principal, resolution):
    if not principal.may_use(resolution.requested, resolution.model):
        raise PermissionDenied(
            f"Your API key may not use the model '{resolution.requested[:100]}'.",
            param='model',
            code='model_not_allowed',
        )


class Pipeline:
    __slots__ = (
        'gw',
        'labels',
        'limiter',
        'policies',
        'dispatcher',
        'recorder',
        'cache',
        'tenant_cache',
    )

    def __init__(self, gw):
        self.gw = gw
        self.labels = gw.labels
        self.limiter = gw.limiter
        self.policies = gw.policies
        self.dispatcher = Dispatcher(gw)
        self.recorder = gw.recorder
        self.cache = gw.cache
        self.tenant_cache = {t.id: t.cache for t in gw.config.tenants}

    # -- the ends of a request ------------------------------------------------------

    def begin(self, request_id, traceparent, route, client, *, counted=True):
        obs = (
            self.recorder.begin(request_id, traceparent, route, client)
            if counted
            else None
        )
        return RequestContext(obs, client)

    def finish(self, ctx, status, flags=0):
        """The request is over: settle its limits, then count it (once). A request
        whose stream owns its end is left to the stream."""
        obs = ctx.obs
        if obs is None or obs.done:
            return
        if ctx.limits is not None:
            if obs.cache == ev.CACHE_HIT:  # NOTE: a hit spends no tokens, no money
                self.limiter.settle(
                    ctx.limits, obs.priced_model, obs.provider_name, 0, 0, 0, 0
                )
            else:
                self.limiter.settle(
                    ctx.limits,
                    obs.priced_model,
                    obs.provider_name,
                    obs.prompt,
                    obs.completion,
                    obs.cached,
                    obs.cache_write,
                )
            ctx.limits = None
        self.recorder.finish(obs, status, flags=flags)

    # -- stages ---------------------------------------------------------------------

    def authenticate(self, ctx, authorization, api_key):
        gw = self.gw
        principal = gw.auth_guard.authenticate(
            ctx.client, gw.keys.authenticate, authorization, api_key
        )
        ctx.principal = principal
        obs = ctx.obs
        if obs is not None:
            obs.tenant = self.labels.tenants.id(principal.tenant_id)
            obs.key = self.labels.keys.id(f'{principal.tenant_id}/{principal.key_name}')
        return principal

    def _resolve(self, ctx, model):
        obs, labels = ctx.obs, self.labels
        obs.requested_model = model
        obs.model = labels.models.id(model)
        resolution = self.gw.router.resolve(model)
        obs.model = labels.models.id(resolution.model)
        check_model(ctx.principal, resolution)
        return resolution

    def _admit(self, ctx, canonical, provider, model, request, user):
        """Price the request on its first target and admit it against the limits
        (a refusal raises)."""
        obs = ctx.obs
        obs.provider = self.labels.providers.id(provider.name)
        obs.priced_model, obs.provider_name = model, provider.name
        if not self.limiter.enabled:
            return
        principal = ctx.principal
        decision, obs.reserved = self.limiter.admit(
            principal.tenant_id,
            principal.key_name,
            canonical,
            provider.name,
            request,
            user if isinstance(user, str) else None,
        )
        if decision is None:
            return
        if decision.degraded:
            obs.flags |= ev.DEGRADED
        headers = ctx.headers
        if self.limiter.headers:
            for kind, (limit, remaining, reset_ns) in decision.headers.items():
                headers[f'x-ratelimit-limit-{kind}'] = str(limit)
                headers[f'x-ratelimit-remaining-{kind}'] = str(remaining)
                headers[f'x-ratelimit-reset-{kind}'] = reset_label(reset_ns)
        if decision.warnings:
            headers['X-AegisFlow-Budget-Warning'] = '; '.join(decision.warnings)
        if decision.admitted:
            ctx.limits = decision
            return
        raise self._refusal(ctx, decision)

    def _refusal(self, ctx, decision):
        obs = ctx.obs
        obs.reserved = 0
        refused = decision.refused
        retry = decision.retry_after_s
        headers = {'Retry-After': str(retry), 'retry-after-ms': str(retry * 1000)}
        if refused is None:
            obs.reject = REASONS.index('unavailable') + 1
            return ServiceUnavailable(
                decision.message, code='limits_unavailable', headers=headers
            )
        obs.reject = REASONS.index(refused.kind) + 1
        if refused.kind == SPEND:
            return InsufficientQuota(decision.message, headers=headers)
        if refused.rate is not None and self.limiter.headers:
            kind = refused.kind
            headers[f'x-ratelimit-limit-{kind}'] = str(refused.rate.rate)
            headers[f'x-ratelimit-remaining-{kind}'] = '0'
            headers[f'x-ratelimit-reset-{kind}'] = reset_label(retry * 1_000_000_000)
        err = RateLimited(decision.message, headers=headers)
        err.type = refused.kind  # NOTE: OpenAI's own types: "requests", "tokens"
        return err

    def _decided(self, ctx, decision, phase):
        """Count and log a phase's policy decisions; warn in a header; raise on
        block."""
        if not decision.hits:
            return
        obs = ctx.obs
        hits = obs.policy_hits
        if hits is None:
            hits = obs.policy_hits = []
        hits.extend(decision.hits)
        for hit in decision.hits:
            _log_hit(obs, hit)
        warnings = decision.warnings
        if warnings:
            previous = ctx.headers.get('X-AegisFlow-Policy-Warnings')
            if previous:
                seen = previous.split(', ')
                warnings = seen + [w for w in warnings if w not in seen]
            ctx.headers['X-AegisFlow-Policy-Warnings'] = ', '.join(warnings)
        if decision.blocked is not None:
            hit = decision.blocked
            raise PolicyViolation(blocked_message(hit, phase), hit=hit)

    def _served_by(self, ctx, target, result_model):
        obs = ctx.obs
        provider, model = target.provider, target.model
        obs.provider = self.labels.providers.id(provider.name)
        obs.priced_model, obs.provider_name = model, provider.name
        obs.response_model = obs.attempts[-1].response_model = str(
            result_model or model
        )
        headers = ctx.headers
        headers['X-AegisFlow-Provider'] = provider.name
        headers['X-AegisFlow-Model'] = model
        headers['X-AegisFlow-Attempts'] = str(len(obs.attempts))

    # -- chat -----------------------------------------------------------------------

    def chat(self, ctx, chat, native=None):
        """A ``chat.completion`` dict, or for a stream a generator of chunks (ended
        by `END` or the ApiError that cut it; it finishes the request itself).

        `native`: the request as the client sent it (`aegisflow.wire.relay.Native`:
        ``/v1/messages``, ``/v1/responses``), passed through to the targets that
        speak its wire format: the input policies then read and rewrite it (the
        chat form other targets get is derived from it), and such a target's
        answer is a `Relayed` object or a stream of `Event`s, not the chat form."""
        resolution = self._resolve(ctx, chat.model)
        plan = None
        relay = False
        if native is not None:
            plan = [t for t in resolution.plan if native.allows(t.provider)]
            if not plan:
                raise native.refusal()
            relay = any(native.relays(t.provider) for t in plan)
        if plan is None:
            provider, model = resolution.targets[0]
        else:
            provider, model = plan[0].provider, plan[0].model
        user = chat.body.get('user') if ctx.user is None else ctx.user
        self._admit(ctx, resolution.model, provider, model, chat, user)
        outputs, redactor = (), None
        if self.policies.any:
            inputs, outputs = self.policies.for_tenant(ctx.principal.tenant_id)
            redactor = Redactor()
            if inputs:
                decision = check_request(
                    native.body if relay else chat.body, inputs, redactor
                )
                self._decided(ctx, decision, 'input')
                if relay and decision.rewritten:
                    native.rewritten = True
                    chat = native.chat_form()
        obs = ctx.obs
        ticket, hit = self._lookup(
            ctx,
            resolution,
            native.body if relay else chat.body,
            relay and not native.cacheable,
        )
        if hit is not None:
            return self._chat_hit(ctx, hit, chat, redactor, native)
        call = partial(_relay_or_call, native, chat) if relay else None
        target, result = self.dispatcher.run(
            obs, chat, resolution, call=call, plan=plan
        )
        _dropped(ctx, native, target.provider)
        guard = outputs or (redactor is not None and redactor.restore)
        if not chat.stream:
            if type(result) is Relayed:
                return self._relayed(
                    ctx, target, native, result, (guard, outputs, redactor), ticket
                )
            self._served_by(ctx, target, result.get('model'))
            obs.usage(result.get('usage'))
            if guard:
                decision = check_response(result, outputs, redactor)
                self._decided(ctx, decision, 'output')
            if ticket is not None:
                self._keep(ctx, ticket, target, result, redactor)
            return result
        events, first = result
        obs.ttft_ns = time.perf_counter_ns() - obs.t0
        items = chain((first,), events)
        if type(first) is Event:
            self._served_by(ctx, target, native.model_of(first))
            meter = native.meter()
            if guard:
                items = native.guard(
                    StreamGuard(outputs, redactor, partial(_stream_hit, obs))
                ).filter(items)
        else:
            self._served_by(ctx, target, first.get('model'))
            meter = _chat_meter
            if guard:
                items = StreamGuard(
                    outputs, redactor, partial(_stream_hit, obs)
                ).filter(items)
        ctx.streaming = True
        keep = self._stream_keep(ctx, ticket, target, redactor, native, first)
        return Stream(
            self._stream(ctx, items, events, chat, meter, keep),
            partial(self._end_stream, ctx, events, chat, False, 0, ev.CLIENT_ABORT),
        )

    def _relayed(self, ctx, target, native, result, policies, ticket):
        guard, outputs, redactor = policies
        data = result.data
        self._served_by(ctx, target, data.get('model'))
        ctx.obs.usage(native.usage(data))
        if guard:
            decision = check_response(data, outputs, redactor, native.fields)
            self._decided(ctx, decision, 'output')
            if decision.rewritten:
                result.raw = None
        if ticket is not None:
            self._keep(ctx, ticket, target, data, redactor, native.answer_kind)
        return result

    def _stream(self, ctx, items, source, chat, meter, keep=None):
        """The items (chat chunks, or relayed events), then `END` or the error that
        cut the stream; counts usage as it goes (`meter(item)`: the usage it
        reports, the text it carries) and finishes the request when the stream
        ends, however it ends. When the provider reports no usage, it is estimated
        from the request and the streamed text. `keep(items)`, if given, gets the
        items of a stream that completed, before the client gets its end."""
        obs = ctx.obs
        flags = 0
        usage_seen = False
        counted = 0
        kept = [] if keep else None
        try:
            for item in items:
                usage, text = meter(item)
                if usage:
                    obs.usage(usage)
                    usage_seen = True
                if text:
                    counted += count_tokens(text)
                if kept is not None:
                    kept.append(item)
                yield item
            if kept:
                keep(kept)
            yield END
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
            yield err
        except Exception:
            flags |= ev.STREAM_ERROR
            log.exception('stream failed', extra={'request_id': obs.request_id})
            yield InternalError(
                f'The gateway failed mid-stream (request id {obs.request_id}).'
            )
        finally:
            self._end_stream(ctx, source, chat, usage_seen, counted, flags)

    def _end_stream(self, ctx, source, chat, usage_seen, counted, flags):
        obs = ctx.obs
        source.close()
        if not usage_seen:
            obs.prompt = prompt_tokens(chat.messages, chat.tools or None)
            obs.completion = counted
        obs.attempts[-1].end(200)
        self.finish(ctx, 200, ev.STREAMED | flags)

    # -- the response cache ---------------------------------------------------------

    def _lookup(self, ctx, resolution, body, relay=False):
        """(the cache's ticket or None, the hit or None). NOTE: answers passed
        through untranslated (`relay`) are not cached."""
        if self.cache is None or relay:
            return None, None
        ticket = self._ticket(ctx, resolution, body)
        if ticket is None:
            return None, None
        return ticket, self.cache.get(ticket)

    def _ticket(self, ctx, resolution, body):
        """The cache's ticket of a request (None: the cache does not apply); its
        result goes in X-AegisFlow-Cache and the request's record."""
        obs, principal = ctx.obs, ctx.principal
        route = resolution.route
        ticket = self.cache.ticket(
            ev.ROUTES[obs.route],
            principal,
            resolution,
            route.cache if route is not None else None,
            self.tenant_cache.get(principal.tenant_id),
            body,
            ctx.cache_control,
        )
        if ticket is not None:
            self._cache_result(ctx, ticket.result)
        return ticket

    def _cache_result(self, ctx, result):
        ctx.headers['X-AegisFlow-Cache'] = result
        ctx.obs.cache = ev.CACHE_RESULTS.index(result) + 1

    def _hit(self, ctx, hit, native=None):
        """Account a hit: no upstream, no tokens spent; the stored answer's
        provider, model and usage (what the hit saved)."""
        entry, obs = hit.entry, ctx.obs
        self._cache_result(ctx, 'hit')
        provider = entry.get('provider', '')
        obs.provider = self.labels.providers.id(provider)
        obs.priced_model, obs.provider_name = entry.get('priced_model', ''), provider
        body = entry['body']
        obs.response_model = str(body.get('model') or obs.priced_model)
        if entry.get('kind', CHAT) != CHAT:
            obs.usage(native.usage(body))
        else:
            obs.usage(body.get('usage'))
        headers = ctx.headers
        headers['Age'] = str(int(hit.age_s))
        headers['X-AegisFlow-Provider'] = provider
        headers['X-AegisFlow-Model'] = obs.priced_model
        headers['X-AegisFlow-Attempts'] = '0'
        return body

    def _chat_hit(self, ctx, hit, chat, redactor, native):
        """The answer of a hit as the request wants it: whole or streamed, in the
        chat form or (an answer that was passed through) the native one."""
        answer = self._hit(ctx, hit, native)
        kind = hit.entry.get('kind', CHAT)
        if redactor is not None:
            answer = restored(answer, redactor, kind)
        if not chat.stream:
            return answer if kind == CHAT else Relayed(None, answer)
        ctx.streaming = True
        ctx.obs.ttft_ns = time.perf_counter_ns() - ctx.obs.t0
        items = answer_chunks(answer) if kind == CHAT else native.replay(answer)
        return Stream(
            self._replay(ctx, items),
            partial(self.finish, ctx, 200, ev.STREAMED | ev.CLIENT_ABORT),
        )

    def _replay(self, ctx, items):
        flags = ev.STREAMED
        try:
            yield from items
            yield END
        except GeneratorExit:
            flags |= ev.CLIENT_ABORT
            raise
        finally:
            self.finish(ctx, 200, flags)

    def _keep(self, ctx, ticket, target, body, redactor, kind=CHAT):
        """Store a complete answer (`body`: after output policies, with this
        request's originals restored: they are put back as placeholders). `kind`:
        the chat form (or an embeddings list), or a native message."""
        if body is None:
            return  # NOTE: a stream that did not complete its answer
        if redactor is not None:
            body = placeholders_of(body, redactor, kind)
        tenant, model = ticket.tags
        self.cache.put(
            ticket,
            {
                'kind': kind,
                'tenant': tenant,
                'model': model,
                'provider': target.provider.name,
                'priced_model': target.model,
                'body': body,
            },
        )
        self._cache_result(ctx, ticket.result)

    def _stream_keep(self, ctx, ticket, target, redactor, native, first):
        """What stores a stream once it completes (None: it is not stored)."""
        if ticket is None or not ticket.store:
            return None
        if type(first) is Event:
            assemble_items, kind = native.assemble, native.answer_kind
        else:
            assemble_items, kind = assemble, CHAT
        return partial(
            self._keep_stream, ctx, ticket, target, redactor, assemble_items, kind
        )

    def _keep_stream(self, ctx, ticket, target, redactor, assemble_items, kind, items):
        self._keep(ctx, ticket, target, assemble_items(items), redactor, kind)

    # -- counting -------------------------------------------------------------------

    def count_tokens(self, ctx, body, chat):
        """``{'input_tokens': N}`` for a Messages body (`chat`: its chat form):
        Anthropic's own count when the target is an ``anthropic`` provider,
        else the gateway's estimate. The tenant's model rules, the input policies
        (a block refuses) and routing apply; no limit is charged and no usage row
        is written. NOTE: when a policy rewrote the text, the original must not
        travel upstream, so the count is the estimate of the rewritten text."""
        resolution = self._resolve(ctx, chat.model)
        rewritten = False
        if self.policies.any:
            inputs, _ = self.policies.for_tenant(ctx.principal.tenant_id)
            if inputs:
                before = orjson.dumps(chat.body)
                decision = check_request(chat.body, inputs, Redactor())
                self._decided(ctx, decision, 'input')
                rewritten = orjson.dumps(chat.body) != before
        estimate = {'input_tokens': prompt_tokens(chat.messages, chat.tools or None)}

        def call(target):
            if target.provider.type == 'anthropic' and not rewritten:
                return target.provider.count_tokens(body, target.model)
            return estimate

        target, result = self.dispatcher.run(ctx.obs, chat, resolution, call=call)
        self._served_by(ctx, target, None)
        return result

    # -- embeddings -----------------------------------------------------------------

    def embeddings(self, ctx, request):
        """An OpenAI embeddings ``list`` for an `EmbeddingsRequest`."""
        resolution = self._resolve(ctx, request.model)
        plan = [
            t
            for t in resolution.plan
            if t.provider.embeddings
            and (
                not request.token_ids
                or t.provider.type in ('openai', 'openai_compatible')
            )
        ]
        if not plan:
            raise InvalidRequest(
                f"No provider of the model '{request.model[:100]}' offers embeddings"
                f'{" for token-id input" if request.token_ids else ""}.',
                param='model',
                code='embeddings_not_supported',
            )
        first = plan[0]
        user = request.body.get('user') if ctx.user is None else ctx.user
        self._admit(ctx, resolution.model, first.provider, first.model, request, user)
        if self.policies.any:
            inputs, _ = self.policies.for_tenant(ctx.principal.tenant_id)
            if inputs:
                decision = check_embeddings(request, inputs, Redactor())
                self._decided(ctx, decision, 'input')
        ticket, hit = self._lookup(ctx, resolution, request.body)
        if hit is not None:
            return self._hit(ctx, hit)
        target, result = self.dispatcher.run(
            ctx.obs,
            request,
            resolution,
            plan=plan,
            call=lambda t: t.provider.embed(request, t.model),
        )
        self._served_by(ctx, target, result.get('model'))
        ctx.obs.usage(result.get('usage'))
        if ticket is not None:
            self._keep(ctx, ticket, target, result, None)
        return result


def _chat_meter(chunk):
    """(the usage a chat chunk reports, the text it carries)."""
    text = None
    for choice in chunk.get('choices') or ():
        content = (choice.get('delta') or {}).get('content')
        if content:
            text = content if text is None else text + content
    return chunk.get('usage'), text


def _dropped(ctx, native, provider):
    if native is not None and native.dropped and not native.relays(provider):
        ctx.headers['X-AegisFlow-Warning'] = (
            f'dropped {", ".join(native.dropped)}: '
            f"provider '{provider.name}' has no equivalent"
        )


def _relay_or_call(native, chat, target):
    """A target that speaks the request's wire format gets it as sent; any other
    the chat form."""
    provider = target.provider
    if not native.relays(provider):
        return call_chat(target, chat)
    if not chat.stream:
        return provider.relay(native, target.model, False)
    return first_of(provider, provider.relay(native, target.model, True))


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
