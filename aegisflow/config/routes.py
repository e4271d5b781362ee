"""The ``routes`` and ``aliases`` sections: which providers serve a model."""

import importlib
import re
from dataclasses import dataclass

from aegisflow.config.cache import CacheOverride
from aegisflow.config.cache import read_override
from aegisflow.config.common import _NAME
from aegisflow.config.scope import read_globs
from aegisflow.globs import GlobSet
from aegisflow.globs import is_glob
from aegisflow.globs import is_valid_glob

STRATEGIES = (
    'priority',
    'round_robin',
    'weighted',
    'least_latency',
    'lowest_cost',
    'custom',
)

_DOTTED = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z')


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str | None = None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RouteConfig:
    match: str
    targets: tuple
    strategy: str = 'priority'
    strategy_class: str | None = None  # dotted path, for strategy: custom
    cache: CacheOverride | None = None


class RoutesSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def globs(self, node, *, what):
        return read_globs(node, what=what)

    def routes(self, node, names, known):
        out = []
        for item in node.list(min_items=1, what='a list of routes'):
            if not item.mapping(('match', 'targets', 'strategy', 'class', 'cache')):
                continue
            match = item.get('match').str(
                check=is_valid_glob, expected='a model glob (no spaces, balanced [])'
            )
            strategy = item.get('strategy').str('priority', choices=STRATEGIES)
            klass = item.get('class').str(
                None,
                check=_DOTTED.match,
                expected='a dotted path: package.module.Class',
            )
            if strategy == 'custom' and klass is None and item.get('class').missing:
                item.get('class').fail('a dotted class path for strategy custom')
            elif klass is not None and strategy != 'custom':
                item.get('class').fail('class only with strategy: custom')
            elif klass is not None:
                _check_strategy_class(item.get('class'), klass)
            targets = []
            for t in item.get('targets').list(min_items=1, what='a list of targets'):
                target = self.target(t, names, known)
                if target is not None:
                    targets.append(target)
            if match is None or strategy is None:
                continue
            if targets:
                out.append(
                    RouteConfig(
                        match=match,
                        targets=tuple(targets),
                        strategy=strategy,
                        strategy_class=klass,
                        cache=read_override(item.get('cache')),
                    )
                )
        return out

    def target(self, node, names, known):
        if isinstance(node.value, str):
            provider, model, weight, pnode = node.value, None, 1, node
        elif node.mapping(('provider', 'model', 'weight')):
            pnode = node.get('provider')
            provider = pnode.str()
            model = node.get('model').str(None)
            weight = node.get('weight').int(1, min=1, max=1_000_000)
        else:
            return None
        if provider is None:
            return None
        if provider not in known:
            choices = ', '.join(sorted(known)) or '(none declared)'
            pnode.fail(f'the name of a declared provider ({choices})')
            return None
        if provider not in names:
            return None  # optional provider, switched off: the route loses this target
        return Target(provider=provider, model=model, weight=weight)

    def aliases(self, node, routes, providers):
        if node.missing:
            return {}
        if not isinstance(node.value, dict):
            node.fail('a mapping of alias name to model name')
            return {}
        out = {}
        for key, child in node.items():
            if not isinstance(key, str) or not _NAME.match(key) or is_glob(key):
                child.fail('an alias name of letters, digits, _ . -', found=f'{key!r}')
                continue
            target = child.str(expected='a model name')
            if target is None:
                continue
            if not _servable(target, routes, providers):
                child.fail('a model that some route serves')
                continue
            out[key] = target
        return out


def _check_strategy_class(node, path):
    """A custom strategy must import and have an ``order`` method (checked at load,
    so a typo fails the start, not a request)."""
    module_name, _, name = path.rpartition('.')
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except Exception as exc:  # noqa: BLE001 (any import failure is the user's to see)
        node.fail('an importable class', found=f'{path} ({type(exc).__name__}: {exc})')
        return
    if not callable(getattr(cls, 'order', None)):
        node.fail('a class with an order(targets, request) method', found=path)


def servable(model, routes, providers, aliases=None):
    """Whether a client asking for `model` would be served (an alias's name, or a
    route with a target for it)."""
    if aliases and model in aliases:
        return True
    return _servable(model, routes, providers)


def _servable(model, routes, providers):
    serves = {p.name: GlobSet(p.models) for p in providers}
    for route in routes:
        if GlobSet([route.match])(model):
            for t in route.targets:
                if t.model or (t.provider in serves and serves[t.provider](model)):
                    return True
    return False
