"""The ``limits``, ``retry`` and ``circuit_breaker`` sections."""

from dataclasses import dataclass

from aegisflow.routing.resilience import BreakerPolicy
from aegisflow.routing.resilience import RetryPolicy


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    default_completion_tokens: int = 1024
    headers: bool = True


class ResilienceSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def retry(self, node):
        d = RetryPolicy()
        keys = tuple(RetryPolicy.__dataclass_fields__)
        if not node.mapping(keys, optional=True):
            return d
        retry_on = d.retry_on
        if not node.get('retry_on').missing:
            statuses = [
                s.int(min=400, max=599)
                for s in node.get('retry_on').list(what='a list of HTTP statuses')
            ]
            retry_on = tuple(s for s in statuses if s is not None)
        return RetryPolicy(
            max_attempts=node.get('max_attempts').int(d.max_attempts, min=1, max=20),
            initial_backoff_ms=node.get('initial_backoff_ms').int(
                d.initial_backoff_ms, min=0, max=60_000
            ),
            max_backoff_ms=node.get('max_backoff_ms').int(
                d.max_backoff_ms, min=0, max=600_000
            ),
            multiplier=node.get('multiplier').num(d.multiplier, min=1, max=10),
            jitter=node.get('jitter').num(d.jitter, min=0, max=1),
            retry_on=retry_on,
            total_timeout_s=node.get('total_timeout_s').num(
                d.total_timeout_s, min=0.1, max=3600
            ),
            max_retry_after_s=node.get('max_retry_after_s').num(
                d.max_retry_after_s, min=0, max=600
            ),
        )

    def breaker(self, node):
        d = BreakerPolicy()
        if not node.mapping(tuple(BreakerPolicy.__dataclass_fields__), optional=True):
            return d
        return BreakerPolicy(
            failure_threshold=node.get('failure_threshold').num(
                d.failure_threshold, min=0.01, max=1
            ),
            consecutive_failures=node.get('consecutive_failures').int(
                d.consecutive_failures, min=1, max=100_000
            ),
            window_s=node.get('window_s').num(d.window_s, min=1, max=3600),
            min_calls=node.get('min_calls').int(d.min_calls, min=1, max=1_000_000),
            open_s=node.get('open_s').num(d.open_s, min=0.1, max=3600),
            half_open_probes=node.get('half_open_probes').int(
                d.half_open_probes, min=1, max=1000
            ),
            enabled=node.get('enabled').bool(d.enabled),
        )

    def limits(self, node):
        d = LimitsConfig()
        if not node.mapping(('default_completion_tokens', 'headers'), optional=True):
            return d
        return LimitsConfig(
            default_completion_tokens=node.get('default_completion_tokens').int(
                d.default_completion_tokens, min=1, max=10**7
            ),
            headers=node.get('headers').bool(d.headers),
        )
