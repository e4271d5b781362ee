"""The limiter a worker uses: plan the checks, reserve, decide, settle.

Reservation at admission: tokens = the prompt estimate (`aegisflow.tokens`) plus
``max_tokens`` (or ``limits.default_completion_tokens``) times ``n``; budget = the price
of those tokens. Settlement when the request ends: the provider's reported usage (or,
for a stream without usage, the count of the streamed text) replaces the reservation;
a failed upstream call refunds it.

When the store is unavailable: with ``state.on_backend_error: fail_open`` the request
is decided by the fallback store (this host's shared memory, for Redis), or admitted
unlimited when there is none; with ``fail_closed`` it is refused with 503.
"""

import logging
import time

from aegisflow.limits.engine import Decision
from aegisflow.limits.engine import StoreUnavailable
from aegisflow.limits.engine import weight_of
from aegisflow.limits.plan import SPEND
from aegisflow.limits.plan import Planner
from aegisflow.pricing import PriceTable

log = logging.getLogger('aegisflow.limits')


class Limiter:
    def __init__(self, config, store, *, fallback=None):
        self.planner = Planner(config)
        self.store = store
        self.fallback = fallback
        self.fail_closed = config.state.on_backend_error == 'fail_closed'
        self.default_completion = config.limits.default_completion_tokens
        self.headers = config.limits.headers
        self.prices = PriceTable(config.prices, config.providers)
        self.settle_errors = 0

    @property
    def enabled(self):
        """Whether any limit or budget applies (run-time keys may bring some)."""
        return self.planner.active()

    def admit(self, tenant, key_name, model, provider, chat, user):
        """(Decision or None when no limit applies, tokens reserved). `chat`: any
        request with ``reservation(default_completion) -> (prompt, completion)``
        (a chat request, an embeddings request)."""
        now_unix = time.time()
        checks = self.planner.checks(tenant, key_name, model, user, now_unix)
        if not checks:
            return None, 0
        prompt, completion = chat.reservation(self.default_completion)
        reserve_tokens = prompt + completion
        reserve_nano, _ = self.prices.cost_nano(model, provider, prompt, completion)
        weighted = [(c, weight_of(c, reserve_tokens, reserve_nano)) for c in checks]
        try:
            # NOTE: None: the store reads the clock once it holds the entries
            decision = self.store.admit(weighted, None, now_unix)
        except StoreUnavailable:
            decision = self._unavailable(weighted, None, now_unix)
        return decision, reserve_tokens

    def admit_spend(self, tenant, key_name, model, provider):
        """A Decision over the tenant's and key's budgets alone (None: no budget
        applies), for a call made on the tenant's behalf that its rate limits do
        not count (a guardrail's); settle it with what the call cost."""
        now_unix = time.time()
        checks = [
            c
            for c in self.planner.checks(tenant, key_name, model, None, now_unix)
            if c.kind == SPEND
        ]
        if not checks:
            return None
        weighted = [(c, 0) for c in checks]
        try:
            return self.store.admit(weighted, None, now_unix)
        except StoreUnavailable:
            return self._unavailable(weighted, None, now_unix)

    def _unavailable(self, weighted, now_ns, now_unix):
        if self.fail_closed:
            return Decision(
                False,
                retry_after_s=1,
                store=None,
                message=(
                    'Rate limits cannot be checked right now (the limits store is '
                    'unavailable); retry shortly.'
                ),
            )
        if self.fallback is not None:
            try:
                decision = self.fallback.admit(weighted, now_ns, now_unix)
                decision.degraded = True
                return decision
            except StoreUnavailable:
                pass
        return Decision(True, degraded=True, store=None)

    def settle_observed(self, decision, obs):
        """Settle `decision` with what a request's record says it used."""
        self.settle(
            decision,
            obs.priced_model,
            obs.provider_name,
            obs.prompt,
            obs.completion,
            obs.cached,
            obs.cache_write,
        )

    def settle(
        self, decision, model, provider, prompt, completion, cached=0, cache_write=0
    ):
        if decision is None or not decision.charges or decision.store is None:
            return
        cost, _ = self.prices.cost_nano(
            model, provider, prompt, completion, cached, cache_write
        )
        try:
            decision.store.settle(decision.charges, None, prompt + completion, cost)
        except StoreUnavailable:
            self.settle_errors += 1
            log.warning(
                'could not settle a request with the limits store; its '
                'reservation stands'
            )
