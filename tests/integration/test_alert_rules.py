"""The shipped alert rules and dashboard against the gateway's real metrics.

`promtool check rules` validates `conf/prometheus-alerts.yml`; then every metric
named by a rule or a dashboard panel must have its ``# TYPE`` line on a live
``/metrics`` page, before any request was served, so neither file can drift from
the code.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / 'conf' / 'prometheus-alerts.yml'
DASHBOARD = ROOT / 'conf' / 'grafana-dashboard.json'
_METRIC = re.compile(r'\baegisflow_[a-z0-9_]+')
_HISTOGRAM_SERIES = ('_bucket', '_sum', '_count')

CONFIG = """
server: {workers: 1}
providers:
  - {name: mock, type: mock, models: [mock]}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-alert-rules}]
    budget: {daily_usd: 5, monthly_usd: 50}
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50}
"""


def _rule_metrics():
    groups = yaml.safe_load(RULES.read_text())['groups']
    return {m for g in groups for r in g['rules'] for m in _METRIC.findall(r['expr'])}


def _dashboard_metrics():
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == 'expr' and isinstance(value, str):
                    found.update(_METRIC.findall(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(DASHBOARD.read_text()))
    return found


def _exported(text):
    """{series name: type} the page declares, histogram series included."""
    out = {}
    for name, kind in re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M):
        out[name] = kind
        if kind == 'histogram':
            out.update({name + suffix: kind for suffix in _HISTOGRAM_SERIES})
    return out


def test_alert_rules_pass_promtool():
    promtool = shutil.which('promtool')
    if promtool is None:
        pytest.fail('promtool is not installed (make test installs it)')
    done = subprocess.run(
        [promtool, 'check', 'rules', str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'SUCCESS' in done.stdout


def test_every_metric_of_the_rules_and_dashboard_is_exported(gateway_factory):
    gw = gateway_factory(CONFIG)

    def page():
        return requests.get(gw.url + '/metrics', timeout=5).text

    wanted = _rule_metrics() | _dashboard_metrics()
    assert len(_rule_metrics()) >= 10 and len(_dashboard_metrics()) >= 10
    # the master renders the page on its own schedule: wait for its gauges
    from tests.support.gateway import wait_until

    text = wait_until(
        lambda: (t := page()) and 'aegisflow_budget_limit_usd' in t and t,
        timeout=15,
        what='the master-rendered page with its gauges',
    )
    exported = _exported(text)
    missing = sorted(m for m in wanted if m not in exported)
    assert not missing, f'named but not exported: {missing}'
    # the budget alert divides spend by a limit exported with the same labels
    limit = re.search(
        r'^aegisflow_budget_limit_usd\{period="day",scope="([^"]+)"\} 5\.0$',
        text,
        re.M,
    )
    assert limit and re.search(
        rf'^aegisflow_budget_spend_usd\{{period="day",scope="{limit.group(1)}"\}}',
        text,
        re.M,
    )
