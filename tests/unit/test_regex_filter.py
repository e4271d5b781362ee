"""The regex policy's literal screen never changes what a pattern finds: for every
pattern and text, the filter's findings are the pattern's own matches, run alone."""

import regex
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aegisflow.policy.filters import RegexFilter
from aegisflow.policy.normalize import Folded
from aegisflow.policy.screen import requirement

PATTERNS = [
    r'\batlas-\d{4,6}\b',
    r'(?i:project\s+atlas)\b',
    r'(?i)secret[-_ ]?sauce',
    r'(?x) acme \s* corp  # verbose',
    r'(?<![\w-])key_(?:id|token)=[A-Za-z0-9]{4,}',
    r'(ab)+cd',
    r'(?:xyz)?abc',
    r'(?:abc){0}def',
    r'a|bcd',
    r'(\w)\1\1x',  # a backreference
    r'(?i:K)elvin',
    r'stra(?i:SSE)',
    r'\p{Lu}{3}-\d+',  # the regex module's own syntax
    r'(?i)ſecret',
    r'(?i)große\s+stra\u00dfe',
    r'\b[A-Z]{1,2}[-/]?\d{3,5}\b',  # no literal: a run of classes
    r'\d{3}-\d{2}-\d{4}',
    r'(?i)[a-c]{2}[x-z]',
    r'[^\s\d]{2}\d',
    r'[0-9]{1,2}[A-C]{1,2}[x-z]',  # counts that vary inside a run
]
ALPHABET = 'abcdxyz ASTLKEIPRJOC-_=/0123456789\u017f\u212aßſ\u0660\u0663'
TEXTS = [
    'see atlas-20431 now',
    'PROJECT   ATLAS is late',
    'the Secret_Sauce and the SECRET SAUCE',
    'acmecorp and acme   corp',
    'x-key_id=abcd key_token=Zz99 my-key_id=abcd',
    'ababcd abcd',
    'xyzabc abc',
    'def',
    'a bcd',
    'aaax bbbx',
    'Kelvin \u212aelvin kelvin',
    'strasse strASSE straße',
    'ABC-12 abc-12',
    'SECRET secret \u017fecret',
    'only \u017fecret \u017fauce here',  # a long s matches s case-insensitively
    'the GROSSE STRA\u1e9eE and die gro\u00dfe Stra\u00dfe',
    'AB-123 Z9876 ab12 536-22-1234 BCY abz 1Ax 12Ax',
    'only 12ABx here',  # every count above its least
]


def naive(patterns, text):
    """Each pattern alone over the folded text (what every filter reads)."""
    out = []
    for p in patterns:
        for m in regex.compile(p, regex.V0).finditer(Folded(text).text):
            if m.end() > m.start():
                out.append((m.start(), m.end()))
    return out


def screened(patterns, text):
    return [(f.start, f.end) for f in RegexFilter(patterns).scan(Folded(text))]


def test_regex_screen_finds_what_each_pattern_finds_alone():
    for text in TEXTS:
        assert screened(PATTERNS, text) == naive(PATTERNS, text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_regex_screen_is_exact_on_any_text(text):
    assert screened(PATTERNS, text) == naive(PATTERNS, text)


def _key(pattern):
    need = requirement(pattern)
    return need and need.key


def test_requirement_reads_only_what_every_match_holds():
    assert _key(r'\batlas-\d{4}') == ('literal', 'atlas-', False)
    assert _key(r'(?i:project\s+atlas)') == ('literal', 'project', True)
    assert _key(r'(?i)Hello') == ('literal', 'hello', True)
    assert _key(r'(?:xyz)?abc') == ('literal', 'abc', False)
    assert _key(r'(?:abc){0}def') == ('literal', 'def', False)
    assert _key(r'(?:abcd){1,3}') == ('literal', 'abcd', False)
    # no literal: the longest run of classes at their least counts
    assert _key(r'\b[A-Z]{1}[-/]?\d{4,9}\b') == ('run', r'[\d]{4}')
    assert _key(r'[A-Z]{2}\d{6}') == ('run', r'[A-Z]{2}[\d]{6}')
    assert _key(r'(?i)[a-c]{3}') == ('run', '(?i)[a-c]{3}')
    assert _key(r'a|bcd') is None  # either side may match
    assert _key(r'\p{Lu}{3}') is None  # not Python's syntax: searched always
    assert _key(r'ab') is None  # too short to be worth a test
    assert _key(r'.{5}') is None  # any character: no test


def test_regex_deadline_bounds_the_whole_policy():
    # five patterns that backtrack without end on a run of a with no b: the policy
    # times out once, as one finding over the whole text, not once per pattern
    patterns = [rf'(a|aa)+b{i}' for i in range(5)]
    flt = RegexFilter(patterns, timeout_ms=30)
    findings = flt.scan(Folded('a' * 40 + '!'))
    assert [(f.kind, f.start, f.end) for f in findings] == [('timeout', 0, 41)]
