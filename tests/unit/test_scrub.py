import types

import pytest

from aegisflow.providers.base import parse_retry_after
from aegisflow.providers.scrub import MARK
from aegisflow.providers.scrub import Scrubber

KEY = 'sk-proj-Ab3dEf6hIj9kLm2nOp5q'


def scrubber(**kw):
    config = types.SimpleNamespace(
        api_key=KEY,
        headers=(('X-Team-Secret', 'team-secret-value-42'),),
        query=(('api-version', '2024-06-01'),),
        api_key_header=kw.get('header'),
    )
    return Scrubber.for_provider(config)


@pytest.mark.parametrize(
    'text',
    [
        f'echo: Authorization: Bearer {KEY}',
        f'{{"headers": {{"authorization": "Bearer {KEY}", "x": 1}}}}',
        'Incorrect API key provided: sk-proj-********************5q. Find yours.',
        'Incorrect API key provided: sk-proj-...Op5q.',
        f'key={KEY[:12]}',  # a prefix, cut where the upstream cut it
        'x-api-key: anything-at-all-here',
        "{'api-key': 'whatever-the-value'}",
        'X-Team-Secret: team-secret-value-42',
        'a stranger key: sk-ant-api03-Zx9Kq2Lm4Np6Rt8Vw0Yb1Cd3Ef5Gh7Jk9',
    ],
)
def test_scrub_removes_secrets_fragments_and_credential_lines(text):
    out = scrubber()(text)
    assert MARK in out
    for fragment in (KEY, KEY[:8], KEY[-4:], 'team-secret', 'anything-at-all'):
        assert fragment not in out
    assert 'whatever-the-value' not in out and 'Zx9Kq2Lm' not in out


def test_scrub_keeps_ordinary_text_bounded_and_on_one_line():
    s = scrubber()
    assert s('The model is overloaded, try again.') == (
        'The model is overloaded, try again.'
    )
    out = s('line one\nline\x00two ' + 'x' * 1000)
    assert '\x00' not in out and len(out) <= 300 and out.endswith('…')
    assert s('') == '' and s(None) == ''


def test_scrub_custom_key_header_is_a_credential_line():
    out = scrubber(header='X-My-Auth')('saw X-My-Auth: some-token-value')
    assert 'some-token-value' not in out


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('3', 3.0),
        ('1.5', 1.5),
        ('-1', None),
        ('nan', None),
        ('inf', None),
        ('1e400', None),
        ('soon', None),
        ('', None),
        (None, None),
        ('99999999999999999999', 10.0),
        ('Wed, 21 Oct 2015 07:28:00 GMT', 0.0),  # in the past: now
        ('Thu, 01 Jan 2099 00:00:00 GMT', 10.0),
    ],
)
def test_retry_after_is_parsed_defensively_and_clamped(value, expected):
    assert parse_retry_after(value, cap_s=10.0) == expected


def test_scrub_a_short_key_is_still_a_secret():
    config = types.SimpleNamespace(
        api_key='k3y9', headers=(('X-Flag', 'true'),), query=(), api_key_header=None
    )
    out = Scrubber.for_provider(config)('bad key k3y9; flag true')
    assert 'k3y9' not in out and 'flag true' in out
