"""Model name -> the ordered upstream targets that can serve it.

Resolution: an alias is replaced by its model; the first route whose ``match`` glob
accepts the model and has at least one target able to serve it wins. A target serves a
model when it names an explicit upstream ``model``, or when its provider lists the
model (names or globs). The result is cached per model name, in a bounded cache, so
the hot path does one dict lookup.

Only the ``priority`` strategy exists so far: targets are tried in the order given.
"""

from dataclasses import dataclass

from aegisflow.errors import NotFound
from aegisflow.globs import GlobSet
from aegisflow.globs import is_glob

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Resolution:
    requested: str  # what the client asked for
    model: str  # after alias resolution: the model name the gateway reports
    targets: tuple  # ((provider, upstream_model), ...) in the order to try


class Router:
    __slots__ = ('_aliases', '_routes', '_providers', '_cache')

    def __init__(self, config, providers):
        self._aliases = dict(config.aliases)
        self._providers = providers
        self._routes = tuple(
            (
                GlobSet([r.match]),
                tuple((providers[t.provider], t.model) for t in r.targets),
            )
            for r in config.routes
        )
        self._cache = {}

    def resolve(self, requested):
        hit = self._cache.get(requested)
        if hit is not None:
            return hit
        model = self._aliases.get(requested, requested)
        for match, targets in self._routes:
            if not match(model):
                continue
            chosen = tuple(
                (provider, upstream or model)
                for provider, upstream in targets
                if upstream or provider.serves(model)
            )
            if chosen:
                resolution = Resolution(requested, model, chosen)
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()  # NOTE: bounded; names can come from clients
                self._cache[requested] = resolution
                return resolution
        raise NotFound(
            f"The model '{_clip(requested)}' does not exist or no route serves it.",
            param='model',
            code='model_not_found',
        )

    def catalogue(self):
        """Every concrete model name and alias a client could ask for: (id, owner)."""
        out = {}
        for provider in self._providers.values():
            for name in provider.config.models:
                if not is_glob(name):
                    self._add(out, name)
        for match, targets in self._routes:
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


def _clip(text, limit=100):
    return text if len(text) <= limit else text[:limit] + '...'
