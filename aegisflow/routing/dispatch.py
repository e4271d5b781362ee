"""Calling the upstream: strategy order, circuit breakers, retries, fallback.

For each target in the route strategy's order: skip it while its breaker is open (or
its half-open probes are all taken); call it; on a retryable failure (no answer, a
timeout, or a status in ``retry.retry_on``) wait with exponential backoff and jitter,
or the upstream's ``Retry-After`` up to ``retry.max_retry_after_s``, and try again up to
``retry.max_attempts``, then move on to the next target; all within
``retry.total_timeout_s``. A failure that is not retryable (the provider refused the
request's content) ends the request at once: another target would refuse it too.
Streams are retried only before their first chunk; after it, the stream ends with an
error event (see `aegisflow.web.chat.sse`). When every target's breaker is open the
answer is 503 with ``Retry-After`` (the soonest a breaker may be probed).
"""

import time

from aegisflow.errors import ApiError
from aegisflow.errors import ServiceUnavailable
from aegisflow.errors import UpstreamFailed
from aegisflow.telemetry.recorder import Attempt


def _retry_after(err):
    """The upstream's wait hint, already parsed and bounded by the provider."""
    return getattr(err, 'retry_after_s', None)


class Dispatcher:
    __slots__ = ('policy', 'state', 'labels', 'sleep', 'clock')

    def __init__(self, gw, *, sleep=time.sleep, clock=time.monotonic):
        self.policy = gw.config.retry
        self.state = gw.targets
        self.labels = gw.labels
        self.sleep = sleep
        self.clock = clock

    def run(self, obs, chat, resolution, *, call=None, plan=None):
        """(the Target that answered, its result): a chat.completion dict, or for a
        stream (the event iterator, its first chunk); or what `call(target)` returns
        (embeddings), over `plan` (default: the resolution's targets)."""
        policy, state = self.policy, self.state
        plan = resolution.plan if plan is None else plan
        call = call or (lambda target: call_chat(target, chat))
        order = resolution.strategy.order(plan, chat) if len(plan) > 1 else plan
        deadline = self.clock() + policy.total_timeout_s
        last_err, waits = None, []
        for target in order:
            for n in range(policy.max_attempts):
                allowed, probe, wait = state.acquire(target)
                if not allowed:
                    waits.append(wait)
                    break
                attempt = Attempt(
                    self.labels.providers.id(target.provider.name), target.model
                )
                obs.attempts.append(attempt)
                try:
                    result = call(target)
                except ApiError as err:
                    status = getattr(err, 'upstream_status', 0)
                    attempt.end(status)
                    retryable = policy.retryable(status)
                    state.release(target, not retryable, 0, probe)
                    if not retryable:
                        raise
                    last_err = err
                    remaining = deadline - self.clock()
                    if n + 1 >= policy.max_attempts or remaining <= 0:
                        break
                    delay = policy.backoff_s(n + 1, _retry_after(err))
                    if delay >= remaining:
                        break
                    self.sleep(delay)
                    continue
                except BaseException:
                    # NOTE: not the target's failure (the gateway could not encode
                    # the request, a bug, the worker stopping): record no outcome,
                    # but the probe slot must come back or the target stays at 503
                    attempt.end(0)
                    state.release(target, None, 0, probe)
                    raise
                attempt.end(200)
                state.release(target, True, attempt.duration_ns, probe)
                return target, result
            if self.clock() >= deadline:
                break
        if last_err is not None:
            raise last_err
        retry = min(waits) if waits else 1
        raise ServiceUnavailable(
            f"No healthy target for '{resolution.model[:100]}': every provider's "
            f'circuit breaker is open. Retry in {retry}s.',
            headers={'Retry-After': str(retry)},
        )


def first_of(provider, events):
    """(`events`, its first item): a stream that fails before its first item
    fails the attempt, and may be retried."""
    try:
        first = next(events)
    except StopIteration:
        raise UpstreamFailed(
            f"Provider '{provider.name}' sent an empty stream."
        ) from None
    return events, first


def call_chat(target, chat):
    """A chat request to `target`: the chat.completion, or (the chunks, the first
    chunk)."""
    provider, model = target.provider, target.model
    if not chat.stream:
        return provider.complete(chat, model)
    return first_of(provider, provider.stream(chat, model))
