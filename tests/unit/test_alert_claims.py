"""Alerts are sent once per subject and period, whichever process or host sees
them first: the claim is one row in the ledger database."""

from aegisflow.config import parse_config
from aegisflow.usage.database import Database
from workers.alerts import Alerts
from workers.alerts import sign

CONFIG = """
providers: [{name: mock, type: mock, models: [mock]}]
routes: [{match: "*", targets: [mock]}]
tenants: [{id: a, keys: [{key: sk-a}]}]
alerts: [{url: "http://127.0.0.1:9/hook", secret_env: S}]
"""


def test_two_hosts_claim_an_alert_once(tmp_path):
    config = parse_config(CONFIG, env={'S': 'secret'})
    database = Database.sqlite(str(tmp_path / 'ledger.sqlite'))
    one, other = Alerts(config, database), Alerts(config, database)
    assert one._claim('budget.warning', 'tenant:a', 'day:2026-11-30')
    assert not other._claim('budget.warning', 'tenant:a', 'day:2026-11-30')
    assert other._claim('budget.warning', 'tenant:a', 'day:2026-12-01')


def test_an_event_no_webhook_wants_is_not_queued():
    config = parse_config(
        CONFIG.replace('secret_env: S}', 'secret_env: S, events: [ledger.error]}'),
        env={'S': 'secret'},
    )
    alerts = Alerts(config, Database.sqlite(':memory:'))
    alerts.emit('budget.warning', 'tenant:a', 'day', {})
    alerts.emit('ledger.error', 'ledger', 'hour', {})
    alerts.emit('ledger.error', 'ledger', 'hour', {})  # the same period: once
    assert [p[0] for p in alerts.pending] == ['ledger.error']


def test_the_signature_is_an_hmac_over_the_time_and_the_body():
    assert sign('k', b'{"a":1}', 1700000000) == (
        't=1700000000,v1=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3'
    )
