"""Model name -> the ordered upstream targets that can serve it.

Resolution: an alias is replaced by its model; the first route whose ``match`` glob
accepts the model and has at least one target able to serve it wins. A target serves a
model when it names an explicit upstream ``model``, or when its provider lists the
model (names or globs). The result is cached per model name, in a bounded cache, so
the hot path does one dict lookup.

The route's strategy (`aegisflow.routing.strategies`) orders the targets per request.

A target's shared state (breaker, probes, latency) is keyed ``provider/scope``: the
scope is the upstream model when the config names that model anywhere (a provider's
literal model, a target's explicit model, an alias's value), else ``*``, one state
for every name a glob lets through, so no client-chosen name adds state.
`configured_targets` lists every such key a request can use, from the config alone;
the admin API and the metrics list exactly those.
"""

from dataclasses import dataclass

from aegisflow.errors import NotFound
from aegisflow.globs import GlobSet
from aegisflow.globs import is_glob
from aegisflow.routing import strategies
from aegisflow.routing.targets import Target

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Resolution:
    requested: str  # what the client asked for
    model: str  # after alias resolution: the model name the gateway reports
    targets: tuple  # ((provider, upstream_model), ...) as configured
    plan: tuple = ()  # the same as `Target`s, with their shared-state keys
    strategy: object = None  # orders `plan` per request (aegisflow.routing.strategies)
    route: object = None  # the `RouteConfig` that matched


class Router:
    __slots__ = (
        '_aliases',
        '_routes',
        '_providers',
        '_cache',
        '_state',
        '_prices',
        '_weights',
        '_known',
        '_configured',
    )

    def __init__(self, config, providers, *, state=None, prices=None):
        self._aliases = dict(config.aliases)
        self._providers = providers
        self._state = state
        self._prices = prices
        self._routes = tuple(
            (
                GlobSet([r.match]),
                tuple((providers[t.provider], t.model) for t in r.targets),
                r,
                i,
            )
            for i, r in enumerate(config.routes)
        )
        self._known = known_models(config)
        self._weights = {
            (i, t.provider, t.model): t.weight
            for i, r in enumerate(config.routes)
            for t in r.targets
        }
        self._cache = {}
        self._configured = configured_targets(config)

    def resolve(self, requested):
        hit = self._cache.get(requested)
        if hit is not None:
            return hit
        model = self._aliases.get(requested, requested)
        for match, targets, route, index in self._routes:
            if not match(model):
                continue
            chosen = tuple(
                (provider, upstream or model)
                for provider, upstream in targets
                if upstream or provider.serves(model)
            )
            if chosen:
                plan = tuple(
                    Target(
                        provider,
                        upstream or model,
                        self._weights[(index, provider.name, upstream)],
                        scope=self._scope(upstream or model),
                    )
                    for provider, upstream in targets
                    if upstream or provider.serves(model)
                )
                strategy = (
                    strategies.build(route, index, plan, self._state, self._prices)
                    if self._state is not None
                    else None
                )
                resolution = Resolution(requested, model, chosen, plan, strategy, route)
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()  # NOTE: bounded; names can come from clients
                self._cache[requested] = resolution
                return resolution
        raise NotFound(
            f"The model '{_clip(requested)}' does not exist or no route serves it.",
            param='model',
            code='model_not_found',
        )

    def _scope(self, model):
        return model if model in self._known else '*'

    def targets(self):
        """{name: Target} of every target a request can use (`configured_targets`)."""
        out = {}
        for provider, scope in self._configured:
            target = Target(self._providers[provider], scope, scope=scope)
            out[target.name] = target
        return out

    def catalogue(self):
        """Every concrete model name and alias a client could ask for: (id, owner)."""
        out = {}
        for provider in self._providers.values():
            for name in provider.config.models:
                if not is_glob(name):
                    self._add(out, name)
        for match, targets, _, _ in self._routes:
            for pattern in match.patterns:
                if not is_glob(pattern):
                    self._add(out, pattern)
            for _, upstream in targets:
                if upstream:
                    self._add(out, upstream)
        for alias in self._aliases:
            self._add(out, alias)
        return sorted(out.items())

    def _add(self, out, name):
        if name in out:
            return
        try:
            resolution = self.resolve(name)
        except NotFound:
            return
        out[name] = (resolution.model, resolution.targets[0][0].name)


def known_models(config):
    """Every model name the config spells out: a provider's literal models, the
    explicit models of route targets, the values of aliases."""
    known = {m for p in config.providers for m in p.models if not is_glob(m)}
    known |= {t.model for r in config.routes for t in r.targets if t.model}
    return known | set(config.aliases.values())


def configured_targets(config):
    """[(provider name, scope)] of every target state a request can key, sorted:
    what `Router.resolve` can build for any model name (see the module's words)."""
    known = known_models(config)
    serves = {p.name: GlobSet(p.models) for p in config.providers}
    globbed = {p.name for p in config.providers if any(is_glob(m) for m in p.models)}
    out = set()
    for route in config.routes:
        match = GlobSet([route.match])
        literal = not is_glob(route.match)
        for target in route.targets:
            if target.model:
                out.add((target.provider, target.model))
                continue
            serve = serves[target.provider]
            out.update(
                (target.provider, name) for name in known if match(name) and serve(name)
            )
            # names the config does not spell out share one state: a route literal
            # named nowhere else, or whatever a glob route and a glob provider let by
            unknown = (
                route.match not in known and serve(route.match)
                if literal
                else target.provider in globbed
            )
            if unknown:
                out.add((target.provider, '*'))
    return sorted(out)


def _clip(text, limit=100):
    return text if len(text) <= limit else text[:limit] + '...'
