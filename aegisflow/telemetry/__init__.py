"""Telemetry: what each request leaves behind (exact counters, an event record), and
the master-side aggregation of it into metrics, traces, logs and the usage ledger."""
