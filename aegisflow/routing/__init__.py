"""Choosing and calling an upstream: routes and aliases (`router`), strategies
(`strategies`), the shared per-target state and its breakers (`targets`), the retry
policy and the breaker's state machine (`resilience`), and the retry and fallback
loop over them (`dispatch`).

`router.Router.targets` (and `router.configured_targets`, from the config alone) is
the one list of targets and breakers that requests, the admin API and metrics read.

NOTE: nothing is imported here, so that the config model can import
`aegisflow.routing.resilience` without importing the router.
"""
