"""The cost of a regex policy by its number of patterns, on a request that matches
none of them (the common case) and on one that matches one.

    .venv/bin/pytest bench/test_regex_policies.py --benchmark-only

The patterns are of the shapes operators write (ticket and project codes, internal
host names, settings; some case-insensitive, some with lookarounds, alternations and
counted repeats), none of them tuned to the filter; and a set with no literal to
screen on (account-number shapes), the filter's worst case.
"""

import pytest

from aegisflow.policy.engine import Policy
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import check_request
from aegisflow.policy.filters import RegexFilter

WORDS = (
    'atlas', 'borealis', 'cobalt', 'dynamo', 'ember', 'falcon', 'granite', 'helix',
    'iris', 'juniper', 'krypton', 'lumen', 'meridian', 'nimbus', 'onyx', 'pulsar',
    'quartz', 'raven', 'sierra', 'tundra', 'umbra', 'vortex', 'willow', 'xenon',
    'yarrow',
)  # fmt: skip
SHAPES = (
    r'\b{w}-\d{{4,6}}\b',  # a ticket code
    r'(?i:project\s+{w})\b',  # a code name, any case
    r'\b{w}[-.]?(?:prod|stage|dev)\d*\.internal\b',  # a host name
    r'(?<![\w-]){w}_(?:key|token|secret)=[A-Za-z0-9]{{8,}}',  # a setting
)
PATTERNS = tuple(shape.format(w=word) for word in WORDS for shape in SHAPES)[:50]
# patterns with no literal of three characters or more (account and document
# numbers): each is searched on every text, with no screen
BARE = tuple(
    rf'\b[A-Z]{{{a}}}[-/]?\d{{{b}}}\b' for a in range(1, 6) for b in range(4, 14)
)[:50]
SMALL = 'Summarise the attached meeting notes in three bullet points, please.'
PARAGRAPH = (
    'Our quarterly report for 2026 shows revenue up 12.5% to 4.2 million, with the '
    'v2.3.1 release shipped on 2026-03-14 and 1,240 new customers. The migration '
    'guide at https://docs.example.org/guide covers steps 1 to 7; see section 4.2 '
    'for the rollback plan and table 3 for the timings of each batch job. '
)


def _body(text):
    return {
        'model': 'mock',
        'messages': [
            {'role': 'system', 'content': 'You are a helpful assistant.'},
            {'role': 'user', 'content': text},
        ],
    }


def _policy(n):
    return [Policy('codes', 'input', 'block', RegexFilter(PATTERNS[:n]))]


@pytest.mark.parametrize('n', [1, 10, 50])
def test_bench_regex_patterns_small_request(benchmark, n):
    policies = _policy(n)
    decision = benchmark(check_request, _body(SMALL), policies, Redactor())
    assert not decision.hits


@pytest.mark.parametrize('n', [1, 10, 50])
def test_bench_regex_patterns_4KB_request(benchmark, n):
    policies = _policy(n)
    text = (PARAGRAPH * 20)[:4096]
    decision = benchmark(check_request, _body(text), policies, Redactor())
    assert not decision.hits


@pytest.mark.parametrize('n', [1, 10, 50])
def test_bench_regex_patterns_without_literals_small_request(benchmark, n):
    policies = [Policy('codes', 'input', 'block', RegexFilter(BARE[:n]))]
    decision = benchmark(check_request, _body(SMALL), policies, Redactor())
    assert not decision.hits


@pytest.mark.parametrize('n', [1, 10, 50])
def test_bench_regex_patterns_one_match(benchmark, n):
    policies = _policy(n)
    # the first pattern: found by every n
    text = SMALL + ' See ticket atlas-20431 for the details.'
    decision = benchmark(check_request, _body(text), policies, Redactor())
    assert decision.blocked is not None
