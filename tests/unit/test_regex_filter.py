"""The regex policy's literal screen never changes what a pattern finds: for every
pattern and text, the filter's findings are the pattern's own matches, run alone."""

import regex
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aegisflow.policy.filters import RegexFilter
from aegisflow.policy.filters import required_literal
from aegisflow.policy.normalize import Folded

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
]
ALPHABET = 'abcdxyz ASTLKEIPRJOC-_=0123456789\u017f\u212aßſ'
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
]


def naive(patterns, text):
    out = []
    for p in patterns:
        for m in regex.compile(p, regex.V0).finditer(text):
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


def test_required_literal_reads_only_what_every_match_holds():
    assert required_literal(r'\batlas-\d{4}') == ('atlas-', False)
    assert required_literal(r'(?i:project\s+atlas)') == ('project', True)
    assert required_literal(r'(?i)Hello') == ('hello', True)
    assert required_literal(r'(?:xyz)?abc') == ('abc', False)
    assert required_literal(r'(?:abc){0}def') == ('def', False)
    assert required_literal(r'(?:abcd){1,3}') == ('abcd', False)
    assert required_literal(r'a|bcd') is None  # either side may match
    assert required_literal(r'\p{Lu}{3}') is None  # not Python's syntax: run always
    assert required_literal(r'ab') is None  # too short to be worth a search


def test_regex_deadline_bounds_the_whole_policy():
    # five patterns that backtrack without end on a run of a with no b: the policy
    # times out once, as one finding over the whole text, not once per pattern
    patterns = [rf'(a|aa)+b{i}' for i in range(5)]
    flt = RegexFilter(patterns, timeout_ms=30)
    findings = flt.scan(Folded('a' * 40 + '!'))
    assert [(f.kind, f.start, f.end) for f in findings] == [('timeout', 0, 41)]
