"""Every way out of an upstream attempt gives its half-open probe slot back.

A breaker is opened, its open time passes (a fake clock), and one attempt takes the
only probe slot; then the attempt ends each way it can. Afterwards the target must
be reachable again: either the probe's outcome closed or reopened the breaker, or
the slot came back and the next request probes.
"""

import types

import pytest

from aegisflow.errors import InvalidRequest
from aegisflow.errors import ServiceUnavailable
from aegisflow.errors import UpstreamFailed
from aegisflow.limits.local import LocalStore
from aegisflow.providers.base import upstream_error
from aegisflow.routing.dispatch import Dispatcher
from aegisflow.routing.resilience import CLOSED
from aegisflow.routing.resilience import HALF_OPEN
from aegisflow.routing.resilience import OPEN
from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.resilience import RetryPolicy
from aegisflow.routing.targets import Target
from aegisflow.routing.targets import TargetState

S = 1_000_000_000


class Clock:
    def __init__(self):
        self.ns = 10 * S

    def __call__(self):
        return self.ns


def setup(retry=None, lease_s=None):
    clock = Clock()
    policy = BreakerPolicy(consecutive_failures=1, open_s=1)
    retry = retry or RetryPolicy(max_attempts=1, total_timeout_s=5)
    state = TargetState(LocalStore(), policy, clock, probe_lease_s=lease_s)
    provider = types.SimpleNamespace(name='up')
    target = Target(provider, 'm')
    gw = types.SimpleNamespace(
        config=types.SimpleNamespace(retry=retry),
        targets=state,
        labels=types.SimpleNamespace(providers=types.SimpleNamespace(id=lambda n: 1)),
    )
    dispatcher = Dispatcher(gw, sleep=lambda s: None, clock=lambda: clock.ns / S)
    resolution = types.SimpleNamespace(plan=[target], model='m', strategy=None)
    # open the breaker, then let its open time pass: the next attempt probes
    state.release(target, False, 0, None)
    assert state.snapshot(target)[0] == OPEN
    clock.ns += 2 * S
    return state, dispatcher, resolution, target, clock


def run(dispatcher, resolution, call):
    obs = types.SimpleNamespace(attempts=[])
    return dispatcher.run(obs, None, resolution, call=call)


def _raise(exc):
    def call(target):
        raise exc

    return call


def test_dispatch_probe_success_closes_the_breaker():
    state, dispatcher, resolution, target, _ = setup()
    assert run(dispatcher, resolution, lambda t: 'ok') == (target, 'ok')
    assert state.snapshot(target)[0] == CLOSED
    assert state.acquire(target) == (True, None, 0)


def test_dispatch_probe_upstream_failure_reopens_and_frees_the_slot():
    state, dispatcher, resolution, target, clock = setup()
    with pytest.raises(UpstreamFailed):
        run(dispatcher, resolution, _raise(upstream_error('up', 500, 'boom')))
    assert state.snapshot(target)[0] == OPEN
    clock.ns += 3 * S  # the doubled open time passes
    allowed, probe, _ = state.acquire(target)
    assert allowed and probe is not None


def test_dispatch_probe_refused_request_gives_the_slot_back():
    state, dispatcher, resolution, target, _ = setup()
    with pytest.raises(InvalidRequest):
        run(dispatcher, resolution, _raise(upstream_error('up', 400, 'bad')))
    # a refusal of the request's content is the target answering: it closes
    assert state.acquire(target) == (True, None, 0)


@pytest.mark.parametrize(
    'exc',
    [
        TypeError('the gateway could not encode the request'),
        RecursionError('too deep'),
        StopIteration(),
        GeneratorExit(),
        KeyboardInterrupt(),
    ],
    ids=['encode-error', 'recursion', 'stop-iteration', 'generator-exit', 'signal'],
)
def test_dispatch_probe_any_exception_gives_the_slot_back(exc):
    state, dispatcher, resolution, target, _ = setup()
    with pytest.raises(type(exc)):
        run(dispatcher, resolution, _raise(exc))
    # no outcome recorded: still half-open, and the next request is the probe
    assert state.snapshot(target)[0] == HALF_OPEN
    allowed, probe, _ = state.acquire(target)
    assert allowed and probe is not None


def test_dispatch_probe_stream_that_fails_at_its_first_event_gives_the_slot_back():
    state, dispatcher, resolution, target, _ = setup()

    def events():
        raise ValueError('data: null')
        yield  # pragma: no cover

    def call(t):
        stream = events()
        return stream, next(stream)

    with pytest.raises(ValueError):
        run(dispatcher, resolution, call)
    allowed, probe, _ = state.acquire(target)
    assert allowed and probe is not None


def test_dispatch_probe_slot_held_past_its_lease_is_taken_back():
    state, dispatcher, resolution, target, clock = setup(lease_s=7)
    allowed, leaked, _ = state.acquire(target)  # taken and never given back
    assert allowed and leaked is not None
    with pytest.raises(ServiceUnavailable):
        run(dispatcher, resolution, lambda t: 'ok')  # no slot: 503, no call
    clock.ns += 7 * S
    with pytest.raises(ServiceUnavailable):
        run(dispatcher, resolution, lambda t: 'ok')  # not yet past the lease
    clock.ns += 1
    assert run(dispatcher, resolution, lambda t: 'ok') == (target, 'ok')
    assert state.snapshot(target)[0] == CLOSED
