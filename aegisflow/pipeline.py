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
from aegisflow.guardrails import GuardCut
from aegisflow.guardrails import Guards
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
from aegisflow.policy.walk import field_kind
from aegisflow.policy.walk import request_fields
from aegisflow.policy.walk import response_fields
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


class _Answer:
    """What the chat path carries from the input stages to the answer: the request
    (its chat form, as the input policies left it; the native one), the output
    policies and the redactor, the output guardrails, the input guardrails' calls
    still pending, the cache's ticket."""

    __slots__ = (
        'chat',
        'native',
        'relay',
        'outputs',
        'redactor',
        'guards_out',
        'pending',
        'ticket',
    )

    def __init__(self, chat, native, relay):
        self.chat, self.native, self.relay = chat, native, relay
        self.outputs, self.redactor = (), None
        self.guards_out, self.pending, self.ticket = (), None, None

    @property
    def guard(self):
        """Whether output policies (or restores) read the answer."""
        return bool(self.outputs) or (
            self.redactor is not None and self.redactor.restore
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
        'guards',
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
        self.guards = Guards(gw, self.dispatcher) if gw.policies.guards_any else None

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
                self.limiter.settle_observed(ctx.limits, obs)
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
        a = self._inputs(ctx, _Answer(chat, native, relay))
        chat = a.chat
        body = native.body if relay else chat.body
        ticket, hit = self._lookup(
            ctx, resolution, body, relay and not native.cacheable
        )
        if hit is not None:
            if a.pending:
                self.guards.settle(ctx, a.pending)
            return self._chat_hit(ctx, hit, chat, a.redactor, native)
        a.ticket = ticket
        call = partial(_relay_or_call, native, chat) if relay else None
        run = partial(
            self.dispatcher.run, ctx.obs, chat, resolution, call=call, plan=plan
        )
        target, result = self._dispatch(ctx, a, run)
        _dropped(ctx, native, target.provider)
        if chat.stream:
            return self._streamed(ctx, target, result, a)
        if type(result) is Relayed:
            return self._relayed(ctx, target, result, a)
        self._served_by(ctx, target, result.get('model'))
        ctx.obs.usage(result.get('usage'))
        if a.pending:
            self._held(ctx, a.pending)
        if a.guard:
            decision = check_response(result, a.outputs, a.redactor)
            self._decided(ctx, decision, 'output')
        if a.guards_out:
            self._guard_answer(ctx, a.guards_out, response_fields(result), chat)
        if ticket is not None:
            self._keep(ctx, ticket, target, result, a.redactor)
        return result

    def _inputs(self, ctx, a):
        """The input policies (a block raises; a redaction rewrites the request),
        then the input guardrails (those that run beside the call started)."""
        if self.policies.any:
            inputs, a.outputs = self.policies.for_tenant(ctx.principal.tenant_id)
            a.redactor = Redactor()
            if inputs:
                native = a.native
                decision = check_request(
                    native.body if a.relay else a.chat.body, inputs, a.redactor
                )
                self._decided(ctx, decision, 'input')
                if a.relay and decision.rewritten:
                    native.rewritten = True
                    a.chat = native.chat_form()
        if self.guards is not None:
            guards_in, a.guards_out = self.policies.guards_for(ctx.principal.tenant_id)
            if guards_in:
                body = a.native.body if a.relay else a.chat.body
                a.pending = self._guard_input(ctx, guards_in, body, a.chat)
        return a

    def _streamed(self, ctx, target, result, a):
        obs, chat, native = ctx.obs, a.chat, a.native
        events, first = result
        obs.ttft_ns = time.perf_counter_ns() - obs.t0
        if a.pending:
            self._held_stream(ctx, a.pending, events, chat)
        items = chain((first,), events)
        if type(first) is Event:
            self._served_by(ctx, target, native.model_of(first))
            meter = native.meter()
            if a.guard:
                items = native.guard(
                    StreamGuard(a.outputs, a.redactor, partial(_stream_hit, obs))
                ).filter(items)
        else:
            self._served_by(ctx, target, first.get('model'))
            meter = _chat_meter
            if a.guard:
                items = StreamGuard(
                    a.outputs, a.redactor, partial(_stream_hit, obs)
                ).filter(items)
        if a.guards_out:
            items = self._guard_stream(ctx, a.guards_out, items, meter, chat)
        ctx.streaming = True
        keep = self._stream_keep(ctx, a.ticket, target, a.redactor, native, first)
        return Stream(
            self._stream(ctx, items, events, chat, meter, keep),
            partial(self._end_stream, ctx, events, chat, False, 0, ev.CLIENT_ABORT),
        )

    def _relayed(self, ctx, target, result, a):
        native = a.native
        data = result.data
        self._served_by(ctx, target, data.get('model'))
        ctx.obs.usage(native.usage(data))
        if a.pending:
            self._held(ctx, a.pending)
        if a.guard:
            decision = check_response(data, a.outputs, a.redactor, native.fields)
            self._decided(ctx, decision, 'output')
            if decision.rewritten:
                result.raw = None
        if a.guards_out:
            self._guard_answer(ctx, a.guards_out, native.fields(data), a.chat)
        if a.ticket is not None:
            self._keep(ctx, a.ticket, target, data, a.redactor, native.answer_kind)
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

    # -- guardrails -----------------------------------------------------------------

    def _guard_input(self, ctx, guards, body, chat):
        """Judge the request with the tenant's input guardrails: those that run
        ``before`` now (a block raises); the others started beside the call, their
        verdicts waited for by `_held` (the pending calls, or None). Each judges
        the kinds of field its `fields` names (default all)."""
        fields = request_fields(body)
        inline = self.guards.spawner.inline  # NOTE: meinheld: no call beside
        pending = []
        for scope in dict.fromkeys(g.fields for g in guards):
            items = guard_items(_in_scope(fields, body, scope), chat.messages, scope)
            if not items:
                continue
            group = [g for g in guards if g.fields == scope]
            first = [g for g in group if g.run == 'before' or inline]
            if first:
                self.guards.check(ctx, first, items)
            later = [g for g in group if g not in first]
            if later:
                pending += self.guards.start(ctx, later, items)
        return pending or None

    def _dispatch(self, ctx, a, run):
        """(target, result) of the main call `run`; beside pending guardrails on a
        cooperative worker, a race that a block can cut short."""
        try:
            if a.pending and self.guards.racing:
                return self.guards.race(a.pending, run)
            return run()
        except GuardCut:
            self._cut(ctx, a)
        except BaseException:
            if a.pending:
                self.guards.cancel(a.pending)
            raise

    def _cut(self, ctx, a):
        """The main call was cut by a block that came first: no usage came back,
        so the prompt's estimate is recorded; the verdicts raise the refusal."""
        obs = ctx.obs
        obs.flags |= ev.CANCELLED
        obs.prompt = prompt_tokens(a.chat.messages, a.chat.tools or None)
        self.guards.settle(ctx, a.pending)
        raise InternalError('A guardrail cut the call but gave no verdict.')

    def _held(self, ctx, pending):
        """Wait for the input guardrails' verdicts on a complete answer; a block
        refuses it (its usage is kept, the request marked cancelled)."""
        try:
            self.guards.settle(ctx, pending)
        except PolicyViolation:
            ctx.obs.flags |= ev.CANCELLED
            raise

    def _held_stream(self, ctx, pending, events, chat):
        """Hold a stream's first item for the input guardrails' verdicts; a block
        closes the upstream stream before any byte reaches the client."""
        try:
            self.guards.settle(ctx, pending)
        except BaseException as exc:
            events.close()  # NOTE: whatever ends the wait, the upstream stream closes
            if not isinstance(exc, PolicyViolation):
                raise
            obs = ctx.obs
            obs.flags |= ev.CANCELLED
            obs.prompt = prompt_tokens(chat.messages, chat.tools or None)
            obs.attempts[-1].end(200)
            raise

    def _guard_answer(self, ctx, guards, fields, chat):
        """Judge a complete answer with the tenant's output guardrails."""
        texts = [f.text for f in fields if f.text]
        if texts:
            self.guards.check(ctx, guards, ['\n'.join(texts)], _last_user(chat))

    def _guard_stream(self, ctx, guards, items, meter, chat):
        """A stream's items released as the output guardrails allow: a window of
        text at a time (``stream_window``: each window judged before it goes out),
        or all at the end (``after``). A block ends the stream with an error."""
        windowed = [g for g in guards if g.run == 'stream_window']
        whole = [g for g in guards if g.run != 'stream_window']
        size = min((g.window_chars for g in windowed), default=0)
        context = _last_user(chat)
        held, window, everything, filled = [], [], [], 0
        for item in items:
            held.append(item)
            text = meter(item)[1]
            if not text:
                continue
            window.append(text)
            filled += len(text)
            if whole:
                everything.append(text)
            if windowed and filled >= size:
                self.guards.check(ctx, windowed, [''.join(window)], context)
                window, filled = [], 0
                if not whole:
                    yield from held
                    held = []
        if windowed and window:
            self.guards.check(ctx, windowed, [''.join(window)], context)
        if whole and everything:
            self.guards.check(ctx, whole, [''.join(everything)], context)
        yield from held

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


def _in_scope(fields, body, scope):
    """The fields of `body` whose kind `scope` names (None: all of them)."""
    if scope is None:
        return fields
    return [f for f in fields if field_kind(body, f.path) in scope]


def guard_items(fields, messages, scope=None):
    """What input guardrails judge: each text of the request (so a text seen
    before, a system prompt, has its cached verdict), then each image a user's chat
    message carries (``{'image_url': url}``: a moderation endpoint reads them)
    when `scope` takes user text."""
    items = [f.text for f in fields if f.text and not f.signed]
    if scope is not None and 'user' not in scope:
        return items
    for message in messages or ():
        content = message.get('content') if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get('type') == 'image_url':
                url = (part.get('image_url') or {}).get('url')
                if isinstance(url, str) and url:
                    items.append({'image_url': url})
    return items


def _last_user(chat):
    """The text of the last user message (what an answer replies to)."""
    for message in reversed(chat.messages or ()):
        if isinstance(message, dict) and message.get('role') == 'user':
            content = message.get('content')
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return ' '.join(
                    p.get('text', '')
                    for p in content
                    if isinstance(p, dict) and isinstance(p.get('text'), str)
                )
    return ''


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
