"""The ``alerts`` section: webhooks the master sends when something needs an
operator (`workers.alerts`): a list of ``{url, secret_env, events, timeout_ms,
retry_s}``."""

from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.common import _valid_url

EVENTS = (
    'budget.warning',
    'budget.exhausted',
    'breaker.opened',
    'breaker.closed',
    'key.expiring',
    'ledger.error',
)
_KEYS = ('url', 'secret_env', 'events', 'timeout_ms', 'retry_s')


@dataclass(frozen=True, slots=True)
class AlertTarget:
    url: str
    secret: str = field(repr=False)  # signs every delivery (HMAC-SHA256)
    events: tuple = EVENTS
    timeout_ms: int = 5000
    retry_s: float = 600.0  # how long a failing delivery is retried


def read_alerts(builder, node):
    """[AlertTarget] from the ``alerts`` node (absent: none)."""
    if node.missing:
        return ()
    out = []
    for item in node.list(what='a list of webhooks'):
        if not item.mapping(_KEYS):
            continue
        url = item.get('url').str(check=_valid_url, expected='an http(s) URL')
        secret = builder.required_env(item.get('secret_env'))
        events = EVENTS
        if not item.get('events').missing:
            events = tuple(
                e.str(choices=EVENTS)
                for e in item.get('events').list(min_items=1, what='a list of events')
            )
        timeout_ms = item.get('timeout_ms').int(5000, min=100, max=60000)
        retry_s = item.get('retry_s').num(600.0, min=0, max=7 * 86400)
        if url is None or secret is None or None in events:
            continue
        out.append(AlertTarget(url, secret, events, timeout_ms, retry_s))
    return tuple(out)
