"""Model-name globs (``gpt-*``, ``mock?``, ``claude-[0-9]*``): checked, compiled."""

import fnmatch
import re


def is_valid_glob(pattern):
    """A glob is a non-empty string without whitespace whose brackets are balanced."""
    if not isinstance(pattern, str) or not pattern or any(c.isspace() for c in pattern):
        return False
    depth = 0
    for i, ch in enumerate(pattern):
        if ch == '[':
            if depth:
                return False
            depth = 1
        elif ch == ']' and depth:
            # NOTE: "[]" and "[!]" are empty classes, which fnmatch reads as literals.
            if pattern[i - 1] in '[!':
                return False
            depth = 0
    return depth == 0


def is_glob(pattern):
    return any(c in pattern for c in '*?[')


def compile_globs(patterns):
    """One compiled alternation for a list of globs; `None` when the list is empty."""
    if not patterns:
        return None
    return re.compile('|'.join(f'(?:{fnmatch.translate(p)})' for p in patterns))


class GlobSet:
    """Matches a name against several globs with one regex call."""

    __slots__ = ('patterns', '_match')

    def __init__(self, patterns):
        self.patterns = tuple(patterns)
        rx = compile_globs(self.patterns)
        self._match = rx.match if rx else None

    def __call__(self, name):
        return self._match is not None and self._match(name) is not None

    def __repr__(self):
        return f'GlobSet({list(self.patterns)!r})'
