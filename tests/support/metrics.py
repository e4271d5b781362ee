"""Reading the gateway's Prometheus exposition in tests."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url, *, token=None):
    headers = {'Connection': 'close'}
    if token:
        headers['Authorization'] = f'Bearer {token}'
    r = requests.get(url + '/metrics', headers=headers, timeout=10)
    r.raise_for_status()
    return r.text


def samples(text, name):
    """[(labels dict, value)] of every sample called `name`."""
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out.append((sample.labels, sample.value))
    return out


def total(text, name, **match):
    return sum(
        v
        for labels, v in samples(text, name)
        if all(labels.get(k) == want for k, want in match.items())
    )
