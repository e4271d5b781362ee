"""Guardrail verdicts read from each guard's answer, and the config's checks."""

import pytest

from aegisflow.config import ConfigError
from aegisflow.config import parse_config
from aegisflow.guardrails import OTHER
from aegisflow.guardrails import GuardPolicy
from aegisflow.guardrails import custom_verdict
from aegisflow.guardrails import guard_messages
from aegisflow.guardrails import judge_verdict
from aegisflow.guardrails import llama_guard_verdict
from aegisflow.guardrails import moderation_verdict

BASE = """
providers:
  - {name: main, type: mock, models: ["*"]}
  - {name: oai, type: openai_compatible, base_url: "http://127.0.0.1:9/v1",
     models: [llama-guard3, judge]}
routes:
  - {match: llama-guard3, targets: [oai]}
  - {match: judge, targets: [oai]}
  - {match: "main-*", targets: [main]}
tenants: [{id: t, keys: [{key: k}]}]
policies:
  %s:
    - %s
"""


def policy(text, phase='input'):
    config = parse_config(BASE % (phase, text), env={})
    return GuardPolicy(config.policies[0], 2)


def test_llama_guard_answers():
    p = policy(
        '{name: g, type: guard_model, model: llama-guard3, action: block, '
        'categories: [S1, S9]}'
    )
    assert llama_guard_verdict(p, 'safe') == (False, ())
    assert llama_guard_verdict(p, '\n unsafe\nS9,S1') == (True, ('S9', 'S1'))
    assert llama_guard_verdict(p, 'unsafe\nS14') == (False, ())  # not selected
    assert llama_guard_verdict(p, 'unsafe') == (True, (OTHER,))
    with pytest.raises(ValueError):
        llama_guard_verdict(p, 'perhaps')
    messages = guard_messages(p, 'hello', None)
    assert messages == [{'role': 'user', 'content': 'hello'}]


def test_llama_guard_on_output_reads_the_reply_to_the_user():
    p = policy(
        '{name: g, type: guard_model, model: llama-guard3, action: block, run: after}',
        'output',
    )
    assert p.categories == tuple(f'S{i}' for i in range(1, 15))
    assert guard_messages(p, 'the answer', 'the question') == [
        {'role': 'user', 'content': 'the question'},
        {'role': 'assistant', 'content': 'the answer'},
    ]


def test_judge_answers_and_an_unknown_category_is_other():
    p = policy(
        '{name: j, type: guard_model, model: judge, template: judge, '
        'action: block, categories: [fraud]}'
    )
    assert judge_verdict(p, '{"verdict": "allow"}') == (False, ())
    assert judge_verdict(p, 'x ```{"verdict": "block", "category": "fraud"}```') == (
        True,
        ('fraud',),
    )
    assert judge_verdict(p, '{"verdict": "block", "category": "<b>"}') == (
        True,
        (OTHER,),
    )
    with pytest.raises(ValueError):
        judge_verdict(p, '{"verdict": "maybe"}')
    assert 'fraud' in guard_messages(p, 'x', None)[0]['content']


def test_custom_template_and_pattern():
    p = policy(
        '{name: c, type: guard_model, model: judge, template: custom, '
        'action: block, prompt: "Rate: {text}", '
        "unsafe_pattern: 'UNSAFE:(?P<category>\\w+)', categories: [spam]}"
    )
    assert guard_messages(p, 'buy now', None) == [
        {'role': 'user', 'content': 'Rate: buy now'}
    ]
    assert custom_verdict(p, 'fine') == (False, ())
    assert custom_verdict(p, 'UNSAFE:spam') == (True, ('spam',))
    assert custom_verdict(p, 'UNSAFE:other_thing') == (True, (OTHER,))


def test_moderation_thresholds_or_the_endpoints_flag():
    p = policy(
        '{name: m, type: moderation, provider: oai, action: block, '
        'categories: {violence: 0.7}}'
    )
    scored = {'flagged': True, 'category_scores': {'violence': 0.69, 'hate': 0.99}}
    assert moderation_verdict(p, scored) == (False, ())
    scored['category_scores']['violence'] = 0.7
    assert moderation_verdict(p, scored) == (True, ('violence',))
    plain = policy('{name: m, type: moderation, provider: oai, action: block}')
    flagged = {'flagged': True, 'categories': {'hate': True, 'novel/kind': True}}
    assert moderation_verdict(plain, flagged) == (True, ('hate', OTHER))
    assert moderation_verdict(plain, {'flagged': False}) == (False, ())


@pytest.mark.parametrize(
    ('text', 'phase', 'words'),
    [
        (
            '{name: g, type: guard_model, model: llama-guard3, action: redact}',
            'input',
            'policies.input[0].action: expected block, warn or log',
        ),
        (
            '{name: g, type: guard_model, model: llama-guard3, action: block, '
            'run: after}',
            'input',
            'expected parallel or before for an input guard',
        ),
        (
            '{name: g, type: guard_model, model: llama-guard3, action: block, '
            'run: parallel}',
            'output',
            'expected after or stream_window',
        ),
        (
            '{name: g, type: guard_model, model: nobody, action: block}',
            'input',
            'policies.input[0].model: expected a model name the routes or aliases '
            "serve, found 'nobody' (none does)",
        ),
        (
            '{name: m, type: moderation, provider: main, action: block}',
            'input',
            'policies.input[0].provider: expected a provider of type openai or '
            'openai_compatible',
        ),
        (
            '{name: m, type: moderation, provider: ghost, action: block}',
            'input',
            "found 'ghost' (no such provider)",
        ),
        (
            '{name: g, type: guard_model, model: judge, template: custom, '
            'action: block, prompt: "no slot", unsafe_pattern: x}',
            'input',
            'policies.input[0].prompt: expected a prompt template with {text} in it',
        ),
        (
            '{name: g, type: guard_model, model: judge, template: custom, '
            'action: block, prompt: "{text}", unsafe_pattern: "("}',
            'input',
            'policies.input[0].unsafe_pattern: expected a valid regular expression',
        ),
        (
            '{name: g, type: guard_model, model: llama-guard3, action: block, '
            'categories: [S99]}',
            'input',
            'expected a Llama Guard 3 category code, S1 to S14',
        ),
        (
            '{name: g, type: guard_model, model: llama-guard3, action: block, '
            'prompt: "{text}"}',
            'input',
            'expected only with template custom',
        ),
        (
            '{name: m, type: moderation, provider: oai, action: block, '
            'categories: {violence: 2}}',
            'input',
            'policies.input[0].categories',
        ),
        (
            '{name: g, type: guard_model, model: llama-guard3, action: block, '
            'timeout_ms: 0}',
            'input',
            'policies.input[0].timeout_ms',
        ),
    ],
)
def test_a_bad_guardrail_fails_at_load_naming_its_key(text, phase, words):
    with pytest.raises(ConfigError) as failed:
        parse_config(BASE % (phase, text), env={})
    assert words in str(failed.value)
