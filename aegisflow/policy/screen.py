"""What every match of a regular expression must contain, read from its parse: the
cheap test that lets a regex policy skip a pattern that cannot match a text.

`requirement(pattern)` returns the most selective of:

- a *literal*: the longest run of literal characters in sequence (zero-width
  assertions do not break it), tested with a substring search at C speed; a
  case-insensitive one is looked for in the text's case fold, a superset of what
  the pattern's own case-insensitive matching accepts;
- a *run* of character classes at their least counts (``\\d{4}`` of
  ``\\b[A-Z]{1,3}[-/]?\\d{4,9}\\b``), tested with a search of that run alone:
  linear, a fixed sequence of classes, compiled with the pattern's case flag.

Runs continue through groups and repeats that must occur (a repeat adds its least
count and, when its count varies, ends the run); alternatives, optional parts and
anything unrenderable end a run. Nothing is returned when the pattern is not in the
syntax Python's own parser reads, or no requirement is worth its test: such a
pattern is searched on every text. A requirement only ever lets a pattern be
skipped when it cannot match: the pattern itself always runs as written.
"""

import re
import re._constants as _c
import re._parser as _parser

import regex

_MIN_LITERAL = 3
_MIN_RUN = 3
_ZERO_WIDTH = frozenset((_c.AT, _c.ASSERT, _c.ASSERT_NOT))
_REPEATS = frozenset((_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT))
_CATEGORIES = {
    _c.CATEGORY_DIGIT: r'\d',
    _c.CATEGORY_NOT_DIGIT: r'\D',
    _c.CATEGORY_SPACE: r'\s',
    _c.CATEGORY_NOT_SPACE: r'\S',
    _c.CATEGORY_WORD: r'\w',
    _c.CATEGORY_NOT_WORD: r'\W',
}


class Literal:
    __slots__ = ('text', 'icase')

    def __init__(self, text, icase):
        self.text = text.casefold() if icase else text
        self.icase = icase

    @property
    def key(self):
        return ('literal', self.text, self.icase)

    def test(self, text, folded):
        return self.text in (folded if self.icase else text)


class Run:
    __slots__ = ('source', 'search')

    def __init__(self, source, icase):
        self.source = ('(?i)' if icase else '') + source
        self.search = regex.compile(self.source, regex.V0).search

    @property
    def key(self):
        return ('run', self.source)

    def test(self, text, folded):
        return self.search(text) is not None


def _set(op, av):
    """The source of one character class item, or None."""
    if op is _c.LITERAL:
        return re.escape(chr(av))
    if op is not _c.IN:
        return None
    parts = []
    for iop, iav in av:
        if iop is _c.NEGATE:
            parts.append('^')
        elif iop is _c.LITERAL:
            parts.append(re.escape(chr(iav)))
        elif iop is _c.RANGE:
            parts.append(f'{re.escape(chr(iav[0]))}-{re.escape(chr(iav[1]))}')
        elif iop is _c.CATEGORY and iav in _CATEGORIES:
            parts.append(_CATEGORIES[iav])
        else:
            return None
    return '[' + ''.join(parts) + ']'


class _Walk:
    """Collects the literal runs and class runs of a parsed pattern."""

    def __init__(self):
        self.literals, self.runs = [], []

    def sequence(self, items, icase):
        chars, run = [], []  # the current literal run; the current class run
        for op, av in items:
            if op in _ZERO_WIDTH:
                continue
            item = _set(op, av) if op in (_c.LITERAL, _c.IN) else None
            if op is _c.LITERAL:
                chars.append(chr(av))
            else:
                self._literal(chars, icase)
            if item is not None:
                run.append((item, 1))
            elif op in _REPEATS:
                self._repeat(av, run, icase)
            else:
                self._run(run, icase)
                if op is _c.SUBPATTERN:
                    _, add, remove, inner = av
                    on = (icase or bool(add & re.IGNORECASE)) and not (
                        remove & re.IGNORECASE
                    )
                    self.sequence(inner, on)
        self._literal(chars, icase)
        self._run(run, icase)

    def _repeat(self, av, run, icase):
        low, high, inner = av
        body = _set(*inner[0]) if len(inner) == 1 else None
        if low >= 1 and body is not None:
            run.append((body, low))
            if high != low:  # NOTE: what follows starts at a varying place
                self._run(run, icase)
            return
        self._run(run, icase)
        if low >= 1:
            self.sequence(inner, icase)

    def _literal(self, chars, icase):
        if chars:
            self.literals.append((len(chars), ''.join(chars), icase))
            chars.clear()

    def _run(self, run, icase):
        if run:
            size = sum(n for _, n in run)
            source = ''.join(s if n == 1 else f'{s}{{{n}}}' for s, n in run)
            self.runs.append((size, source, icase))
            run.clear()


def requirement(pattern):
    """A `Literal` or `Run` every match of `pattern` contains, or None."""
    try:
        parsed = _parser.parse(pattern)
    except Exception:
        return None
    walk = _Walk()
    walk.sequence(list(parsed), bool(parsed.state.flags & re.IGNORECASE))
    literal = max(walk.literals, default=None)
    if literal is not None and literal[0] >= _MIN_LITERAL:
        return Literal(literal[1], literal[2])
    best = max(walk.runs, default=None)
    if best is not None and best[0] >= _MIN_RUN:
        return Run(best[1], best[2])
    return None
