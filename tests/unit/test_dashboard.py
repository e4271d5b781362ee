"""The shipped Grafana dashboard only queries metrics the gateway exports."""

import json
import re
from pathlib import Path

from aegisflow.config import parse_config
from aegisflow.telemetry.aggregate import LocalTelemetry
from aegisflow.telemetry.labels import LabelSpace
from tests.conftest import ACCEPTANCE_CONFIG

DASHBOARD = Path(__file__).resolve().parents[2] / 'conf' / 'grafana-dashboard.json'
MASTER_ONLY = {
    'aegisflow_ring_dropped_total',
    'aegisflow_lock_timeouts_total',
    'aegisflow_process_resident_memory_bytes',
    'aegisflow_process_cpu_seconds_total',
    'aegisflow_workers',
    'aegisflow_workers_reaped_total',
    'aegisflow_ledger_errors_total',
    'aegisflow_ledger_rows_pending',
}


def test_dashboard_queries_exported_metrics():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t['expr'] for p in dash['panels'] for t in p['targets']]
    used = {m for e in exprs for m in re.findall(r'aegisflow_[a-z_]+', e)}
    used = {re.sub(r'_bucket$', '', m) for m in used}
    config = parse_config(ACCEPTANCE_CONFIG, env={})
    text = LocalTelemetry(config, LabelSpace(config)).metrics().decode()
    exported = set(re.findall(r'^# TYPE (aegisflow_[a-z_]+) (\w+)', text, re.M))
    names = set()
    for name, kind in exported:
        names.add(
            name + '_total'
            if kind == 'counter' and not name.endswith('_total')
            else name
        )
    missing = used - names - MASTER_ONLY
    assert not missing, missing
