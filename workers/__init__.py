"""Gunicorn glue: settings from the AegisFlow config, hooks, the per-worker app."""
