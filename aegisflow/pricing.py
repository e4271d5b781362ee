"""Cost of a request from its token counts and the price table.

Prices are USD per million tokens (`config.model.Price`). Cached prompt tokens are
part of the prompt tokens (OpenAI's convention, which the gateway uses internally):

    cost = (prompt - cached - written) * input + cached * cached_input
           + written * cache_write_input + completion * output

``cached`` are prompt tokens read from the provider's prompt cache, ``written`` those
written to it (Anthropic bills them above the input price). A missing cached_input or
cache_write_input price falls back to the input price.

Costs are integers of nano-USD (1e-9 USD) so sums across processes stay exact. A model
with no price costs 0 and is reported as unpriced, never priced by a guess.
"""

from aegisflow.globs import GlobSet
from aegisflow.globs import is_glob

NANO = 1_000_000_000
# the most one request costs, whatever usage an upstream reports (USD 4e9, four
# times the largest budget): it still fits Redis' signed 64-bit INCRBY and the ring
COST_MAX_NANO = 4 * 10**18


class PriceTable:
    __slots__ = ('_exact', '_globs', '_providers', '_cache')

    def __init__(self, prices, providers=()):
        self._exact = {k: v for k, v in prices.items() if not is_glob(k)}
        self._globs = tuple((GlobSet([k]), v) for k, v in prices.items() if is_glob(k))
        self._providers = {p.name: PriceTable(p.prices) for p in providers if p.prices}
        self._cache = {}

    def lookup(self, model, provider=None):
        """The `Price` for `model` (served by `provider`), or None."""
        if provider is not None:
            table = self._providers.get(provider)
            if table is not None:
                price = table.lookup(model)
                if price is not None:
                    return price
        hit = self._cache.get(model, False)
        if hit is not False:
            return hit
        price = self._exact.get(model)
        if price is None:
            price = next((p for match, p in self._globs if match(model)), None)
        if len(self._cache) < 4096:
            self._cache[model] = price
        return price

    def cost_nano(self, model, provider, prompt, completion, cached=0, written=0):
        """(cost in nano-USD, priced?)."""
        price = self.lookup(model, provider)
        if price is None:
            return 0, False
        cached = min(cached, prompt)
        written = min(written, prompt - cached)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        write_rate = (
            price.input if price.cache_write_input is None else price.cache_write_input
        )
        micro = (
            (prompt - cached - written) * price.input
            + cached * cached_rate
            + written * write_rate
            + completion * price.output
        )
        # per-million prices x tokens = micro-USD; x 1000 = nano-USD
        return min(round(micro * 1000), COST_MAX_NANO), True
