"""Typed, path-aware reading of a parsed YAML document.

A `Node` wraps one value and the key path that led to it (``providers[1].models``).
Its accessors return the value converted, or record a `Problem` (path, what was
expected, what was found) and return a harmless default, so one pass over a file
reports every mistake in it, not just the first.

Values read with ``secret=True`` are never echoed back in a problem.
"""

import difflib
from dataclasses import dataclass
from math import isfinite

MISSING = object()
REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    expected: str
    found: str

    def __str__(self):
        where = self.path or '(top level)'
        return f'{where}: expected {self.expected}, found {self.found}'


def describe(value, *, secret=False):
    """A short, type-revealing description of a YAML value for an error message."""
    if value is MISSING:
        return 'nothing (the key is missing)'
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return f'{str(value).lower()} (boolean)'
    if isinstance(value, int):
        return f'{value} (integer)'
    if isinstance(value, float):
        return f'{value} (number)'
    if isinstance(value, str):
        if secret:
            return f'a string of {len(value)} characters'
        shown = value if len(value) <= 60 else value[:57] + '...'
        return f'{shown!r} (string)'
    if isinstance(value, list):
        return f'a list of {len(value)} item{"s" if len(value) != 1 else ""}'
    if isinstance(value, dict):
        return 'a mapping'
    return type(value).__name__


class Node:
    __slots__ = ('value', 'path', 'problems')

    def __init__(self, value, path, problems):
        self.value = value
        self.path = path
        self.problems = problems

    # -- structure -------------------------------------------------------------

    def fail(self, expected, *, found=None, secret=False):
        if found is None:
            found = describe(self.value, secret=secret)
        self.problems.append(Problem(self.path, expected, found))

    @property
    def missing(self):
        return self.value is MISSING

    def child_path(self, key):
        return f'{self.path}.{key}' if self.path else str(key)

    def get(self, key):
        value = (
            self.value.get(key, MISSING) if isinstance(self.value, dict) else MISSING
        )
        return Node(value, self.child_path(key), self.problems)

    def mapping(self, allowed, *, optional=False):
        """Check this is a mapping with only `allowed` keys (required keys are reported
        by the accessor that reads them). True when the node can be read further.
        """
        if self.value is MISSING or self.value is None:
            if optional:
                self.value = {}
                return True
            self.fail('a mapping')
            return False
        if not isinstance(self.value, dict):
            self.fail('a mapping')
            return False
        for key in self.value:
            if not isinstance(key, str):
                self.problems.append(Problem(self.path, 'string keys', describe(key)))
            elif key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                expected = 'one of the keys ' + ', '.join(sorted(allowed))
                if hint:
                    expected = f'{hint[0]!r} or another of the keys ' + ', '.join(
                        sorted(allowed)
                    )
                self.problems.append(
                    Problem(self.child_path(key), expected, 'an unknown key')
                )
        return True

    def items(self):
        """(key, Node) pairs of a mapping node (empty when not a mapping)."""
        if not isinstance(self.value, dict):
            return []
        return [
            (k, Node(v, self.child_path(k), self.problems))
            for k, v in self.value.items()
        ]

    def list(self, default=REQUIRED, *, min_items=0, what='a list'):
        value = self.value
        if value is MISSING:
            if default is REQUIRED:
                self.fail(what)
                return []
            return default
        if not isinstance(value, list):
            self.fail(what)
            return []
        if len(value) < min_items:
            self.fail(
                f'{what} of at least {min_items} item{"s" if min_items > 1 else ""}'
            )
        return [
            Node(v, f'{self.path}[{i}]', self.problems) for i, v in enumerate(value)
        ]

    # -- scalars ---------------------------------------------------------------

    def _absent(self, default, expected):
        if default is REQUIRED:
            self.fail(expected)
        return None if default is REQUIRED else default

    def str(
        self, default=REQUIRED, *, choices=None, check=None, expected=None, secret=False
    ):
        if choices:
            expected = expected or 'one of ' + ', '.join(choices)
        expected = expected or 'a non-empty string'
        if self.value is MISSING:
            return self._absent(default, expected)
        value = self.value
        if not isinstance(value, str) or not value:
            self.fail(expected, secret=secret)
            return None if default is REQUIRED else default
        if choices and value not in choices:
            self.fail(expected, secret=secret)
            return None if default is REQUIRED else default
        if check is not None and not check(value):
            self.fail(expected, secret=secret)
            return None if default is REQUIRED else default
        return value

    def int(self, default=REQUIRED, *, min=None, max=None):
        expected = _range_words('an integer', min, max)
        if self.value is MISSING:
            return self._absent(default, expected)
        value = self.value
        ok = isinstance(value, int) and not isinstance(value, bool)
        if (
            not ok
            or (min is not None and value < min)
            or (max is not None and value > max)
        ):
            self.fail(expected)
            return None if default is REQUIRED else default
        return value

    def num(self, default=REQUIRED, *, min=None, max=None):
        expected = _range_words('a number', min, max)
        if self.value is MISSING:
            return self._absent(default, expected)
        value = self.value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        # NOTE: YAML writes .inf and .nan; an int past a float's range is not one
        ok = ok and (abs(value) < 1e300 if isinstance(value, int) else isfinite(value))
        if (
            not ok
            or (min is not None and value < min)
            or (max is not None and value > max)
        ):
            self.fail(expected)
            return None if default is REQUIRED else default
        return float(value)

    def bool(self, default=REQUIRED):
        if self.value is MISSING:
            return self._absent(default, 'true or false')
        if not isinstance(self.value, bool):
            self.fail('true or false')
            return False if default is REQUIRED else default
        return self.value


def _range_words(kind, lo, hi):
    if lo is not None and hi is not None:
        return f'{kind} from {lo} to {hi}'
    if lo is not None:
        return f'{kind} >= {lo}'
    if hi is not None:
        return f'{kind} <= {hi}'
    return kind
