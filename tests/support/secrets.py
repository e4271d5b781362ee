"""The suite's secret scan: every provider and tenant key a gateway in the suite was
given, looked for in everything the gateways produced (every log line, the last
metrics page of each, every span a fake collector received). `tests/conftest.py`
runs `scan` when the session ends and fails the run on any hit."""

import re
import threading

_lock = threading.Lock()
secrets = set()  # the keys handed to gateways
outputs = []  # (where, text) the gateways produced

# tenant and admin keys in config text; keys, tokens, passwords and DSNs in env
_CONFIG_KEY = re.compile(r'\bkey:\s*"?([^\s",}\]]{6,})')
_SECRET_ENV = re.compile(r'(KEY|SECRET|TOKEN|PASSWORD|ADMIN|DSN)', re.I)
_MIN = 6


def given(config_text, env):
    with _lock:
        secrets.update(m.group(1) for m in _CONFIG_KEY.finditer(config_text))
        for name, value in (env or {}).items():
            if _SECRET_ENV.search(name) and value and len(value) >= _MIN:
                if '://' in value:
                    value = _password_of(value)
                if value:
                    secrets.add(value)


def _password_of(dsn):
    m = re.match(r'\w+://[^:/@]+:([^@]+)@', dsn)
    return m.group(1) if m else None


def produced(where, text):
    if text:
        with _lock:
            outputs.append((where, text))


def scan():
    """[(secret shown masked, where)] for every secret found in any output."""
    hits = []
    with _lock:
        for where, text in outputs:
            for secret in secrets:
                if secret in text:
                    hits.append((secret[:3] + '...', where))
    return hits
