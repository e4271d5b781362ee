"""The cost of the default input policy set (conf/aegisflow.yaml) per request, and
of the injection detector alone.

    .venv/bin/pytest bench/test_policy_speed.py --benchmark-only

A 4 KB chat prompt of ordinary prose with numbers, dates, versions and a URL (no
PII, so nothing is rewritten: the common case), then the same prompt repeated to
64 KB and 1 MB to show the cost grows linearly with the input. Also a prompt that
is not ASCII (accents and CJK) and one with PII to redact.
"""

import pytest

from aegisflow.config import load_config
from aegisflow.policy import PolicyEngine
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import check_request

PARAGRAPH = (
    'Our quarterly report for 2026 shows revenue up 12.5% to 4.2 million, with the '
    'v2.3.1 release shipped on 2026-03-14 and 1,240 new customers. The migration '
    'guide at https://docs.example.org/guide covers steps 1 to 7; see section 4.2 '
    'for the rollback plan and table 3 for the timings of each batch job. '
)
NON_ASCII = (
    'Le café de la gare ouvre à 7 h 30; réservation conseillée. 東京の会議は午後3時に'
    '始まります。 Ünïcödé tëxt with ümlauts and — dashes, “quotes” and emoji 🙂. '
)


def _prompt(unit, size):
    return (unit * (size // len(unit) + 1))[:size]


def _body(text):
    return {
        'model': 'mock',
        'messages': [
            {'role': 'system', 'content': 'You are a helpful assistant.'},
            {'role': 'user', 'content': text},
        ],
    }


@pytest.fixture(scope='module')
def inputs():
    config = load_config('conf/aegisflow.yaml', env={})
    return PolicyEngine(config).for_tenant('dev')[0]


@pytest.mark.parametrize('size', [4096, 65536, 1 << 20], ids=['4KB', '64KB', '1MB'])
def test_bench_default_input_policies(benchmark, inputs, size):
    body = _body(_prompt(PARAGRAPH, size))
    decision = benchmark(check_request, body, inputs, Redactor())
    assert decision.blocked is None and not decision.hits


def test_bench_default_input_policies_non_ascii_4KB(benchmark, inputs):
    body = _body(_prompt(NON_ASCII, 4096))
    decision = benchmark(check_request, body, inputs, Redactor())
    assert decision.blocked is None


def test_bench_default_input_policies_with_pii_4KB(benchmark, inputs):
    pii = (
        'Mail jane.doe@example.com or call (415) 555-2671 about card '
        '4111 1111 1111 1111. '
    )
    text = _prompt(PARAGRAPH, 4096 - len(pii)) + pii

    def run():
        body = _body(text)
        return check_request(body, inputs, Redactor()), body

    decision, body = benchmark(run)
    assert '[EMAIL_1]' in body['messages'][1]['content']
    assert decision.blocked is None


@pytest.mark.parametrize('size', [500, 4096], ids=['500B', '4KB'])
def test_bench_injection_detector(benchmark, size):
    """The injection detector alone (folding, rules, decoding, the learned model) on
    ordinary prose; targets: 100 us at the median for 500 characters, 1 ms for 4
    KB."""
    from aegisflow.policy.filters import InjectionFilter
    from aegisflow.policy.normalize import Folded

    detector = InjectionFilter(0.5)
    text = _prompt(PARAGRAPH, size)
    total, signals = benchmark(lambda: detector.score(Folded(text)))
    assert total < 0.5 and not signals


@pytest.mark.parametrize('size', [500, 4096], ids=['500B', '4KB'])
def test_bench_injection_model(benchmark, size):
    """The injection detector's learned model alone, over a text's words (already
    split, as the detector has them): its share of the detector's cost."""
    from aegisflow.policy import injection_model
    from aegisflow.policy.normalize import Folded

    model = injection_model.model()
    words = Folded(_prompt(PARAGRAPH, size)).words()
    assert benchmark(model.probability, words) < 0.5
