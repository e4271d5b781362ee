"""Route strategies: the order in which a route's targets are tried.

A strategy is a small class with one method, ``order(targets, request)``, returning
the targets in the order to try (the dispatcher then skips open breakers, retries and
falls back in that order). Built in:

- ``priority``: as listed.
- ``round_robin``: one rotation shared by every worker (a shared counter per route).
- ``weighted``: a random order drawn by ``weight`` (the first target is chosen with
  probability weight / total, and so on).
- ``least_latency``: fastest first, by the EWMA of successful calls shared by every
  worker; targets never measured come first, so they get measured.
- ``lowest_cost``: cheapest first by the price table (a target with no price last).
- ``custom``: ``class: my_pkg.module.MyStrategy``, constructed once per route as
  ``MyStrategy(targets, state)`` and asked ``order(targets, request)`` per request.
"""

import hashlib
import importlib
import random

from aegisflow.config import ConfigError
from aegisflow.config.reader import Problem


class Priority:
    def __init__(self, targets, state):
        pass

    def order(self, targets, request):
        return list(targets)


class RoundRobin:
    def __init__(self, targets, state, route_id=''):
        self.state = state
        name = f'rr:{route_id}:' + ','.join(t.name for t in targets)
        d = hashlib.blake2b(name.encode(), digest_size=16).digest()
        self.key = (int.from_bytes(d[:8], 'little'), int.from_bytes(d[8:], 'little'))

    def order(self, targets, request):
        i = self.state.next_position(self.key) % len(targets)
        return list(targets[i:]) + list(targets[:i])


class Weighted:
    def __init__(self, targets, state, rng=random.random):
        self.rng = rng

    def order(self, targets, request):
        # Efraimidis-Spirakis: sort by u ** (1 / w), a weighted draw without
        # replacement in one pass.
        return sorted(
            targets, key=lambda t: self.rng() ** (1.0 / t.weight), reverse=True
        )


class LeastLatency:
    def __init__(self, targets, state):
        self.state = state

    def order(self, targets, request):
        return sorted(targets, key=lambda t: self.state.snapshot(t)[2])


class LowestCost:
    def __init__(self, targets, state, prices=None):
        def cost(t):
            price = prices.lookup(t.model, t.provider.name) if prices else None
            return float('inf') if price is None else price.input + price.output

        self.ranked = sorted(targets, key=cost)

    def order(self, targets, request):
        return list(self.ranked)


BUILT_IN = {
    'priority': Priority,
    'round_robin': RoundRobin,
    'weighted': Weighted,
    'least_latency': LeastLatency,
    'lowest_cost': LowestCost,
}


def load_class(path, where):
    module_name, _, name = path.rpartition('.')
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            [
                Problem(
                    where,
                    'an importable strategy class',
                    f'{path} ({type(exc).__name__}: {exc})',
                )
            ]
        ) from None
    if not callable(getattr(cls, 'order', None)):
        raise ConfigError(
            [Problem(where, 'a class with an order(targets, request) method', path)]
        )
    return cls


def build(route, index, targets, state, prices):
    if route.strategy == 'custom':
        return load_class(route.strategy_class, f'routes[{index}].class')(
            targets, state
        )
    if route.strategy == 'round_robin':
        return RoundRobin(targets, state, route_id=str(index))
    if route.strategy == 'lowest_cost':
        return LowestCost(targets, state, prices)
    return BUILT_IN[route.strategy](targets, state)
