"""Properties over generated input: redaction leaves no four original digits of a
number it detected, whatever its surface form; the config loader answers any YAML
with a clear error, never a traceback."""

import re
import string

import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.policy.engine import Policy
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import check_request
from aegisflow.policy.filters import PiiFilter


def _luhn_complete(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2 == 0:  # NOTE: these get doubled once the check digit is appended
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return digits + str((10 - total % 10) % 10)


@st.composite
def card_numbers(draw):
    prefix, length = draw(
        st.sampled_from([('4', 16), ('51', 16), ('55', 16), ('37', 15), ('6011', 16)])
    )
    n = length - 1 - len(prefix)
    body = draw(st.text(string.digits, min_size=n, max_size=n))
    return _luhn_complete(prefix + body)


@st.composite
def surface(draw, digits):
    """The number as a person might type it: groups joined by one separator."""
    sep = draw(st.sampled_from(['', ' ', '-', '.']))
    if not sep:
        return digits
    size = draw(st.sampled_from([4, 3]))
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


WORDS = st.text(string.ascii_letters + ' ,', max_size=30)


@given(st.data(), WORDS, WORDS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_redaction_leaves_no_four_original_digits_of_a_card(data, before, after):
    digits = data.draw(card_numbers())
    typed = data.draw(surface(digits))
    text = f'{before} {typed} {after}'
    body = {'model': 'm', 'messages': [{'role': 'user', 'content': text}]}
    policy = Policy('cards', 'input', 'redact', PiiFilter(['credit_card']))
    check_request(body, [policy], Redactor())
    out = body['messages'][0]['content']
    assert '[CREDIT_CARD_1]' in out
    joined = re.sub(r'[\s.\-]', '', out)
    for i in range(len(digits) - 3):
        assert digits[i : i + 4] not in joined, (typed, out)


def test_the_card_generator_makes_valid_numbers():
    assert _luhn_complete('411111111111111') == '4111111111111111'
    assert _luhn_complete('37828224631000') == '378282246310005'


YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    'server',
                    'providers',
                    'routes',
                    'tenants',
                    'policies',
                    'limits',
                    'telemetry',
                    'state',
                    'storage',
                    'retry',
                    'circuit_breaker',
                    'name',
                    'type',
                    'models',
                    'keys',
                    'key',
                    'match',
                    'targets',
                    'id',
                    'workers',
                    'rate_limit',
                    'input',
                    'action',
                    'x',
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


# every problem: the key path (or "(top level)"), what was expected, what was found
PROBLEM = re.compile(r'^\S.*: expected .+, found .+', re.S)


def _loads_or_explains(text):
    try:
        parse_config(text, env={})
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert PROBLEM.match(str(problem)), str(problem)


@given(YAML_VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_config_loader_answers_any_yaml_with_a_clear_error(value):
    text = yaml.safe_dump(value, allow_unicode=True)
    _loads_or_explains(text)


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_the_config_loader_answers_any_text_with_a_clear_error(text):
    _loads_or_explains(text)
