"""Filters: what finds things in text. Every filter, built-in or custom, is a class
with this interface:

    class MyFilter:
        max_match = 256          # longest span scan() reports (the stream hold-back)

        def __init__(self, config):  # the policy's `config` mapping ({} when absent)
            ...

        def scan(self, text):     # text: aegisflow.policy.normalize.Folded
            return [Finding('kind', start, end), ...]

``scan`` reads ``text.text`` (the folded form) or ``text.skeleton()`` (lower case,
confusables mapped; same offsets) and returns spans in those offsets; the engine maps
them back to the original characters. It must be pure (same text, same answer) and
fast: it runs on the hot path, once per text field per request, and on stream windows.
An exception in ``scan`` is logged and treated as a finding of kind ``error`` (fail
closed: the policy's action applies).
"""

import importlib
import logging
import time
from typing import NamedTuple

import regex

from aegisflow.policy import injection
from aegisflow.policy import injection_model
from aegisflow.policy import pii
from aegisflow.policy.screen import requirement

log = logging.getLogger('aegisflow.policy')


class Finding(NamedTuple):
    """What a filter found: a kind and a span of the folded text; `action` overrides
    the policy's (plugins decide their own verdict), `replacement` the placeholder."""

    kind: str
    start: int
    end: int
    action: str | None = None
    replacement: str | None = None


class KeywordFilter:
    """Any of `keywords`, case-insensitive, on the confusable skeleton, whole words
    where the keyword starts or ends with a letter or digit, any run of whitespace
    between words. One compiled pattern over a trie of the keywords, so thousands
    cost about what one does."""

    def __init__(self, keywords):
        from aegisflow.policy.normalize import Folded

        words = {' '.join(Folded(k).skeleton().split()) for k in keywords}
        words.discard('')
        self.max_match = max((len(w) for w in words), default=1) * 4
        self.pattern = regex.compile(_trie_pattern(sorted(words)), regex.V0)

    def scan(self, text):
        return [
            Finding('keyword', m.start(), m.end())
            for m in self.pattern.finditer(text.skeleton())
        ]


def _trie_pattern(words):
    trie = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[''] = True

    def emit(node):
        end = '' in node
        branches = []
        for ch in sorted(k for k in node if k):
            piece = r'\s+' if ch == ' ' else regex.escape(ch)
            branches.append(piece + emit(node[ch]))
        if not branches:
            return ''
        body = branches[0] if len(branches) == 1 else '(?:' + '|'.join(branches) + ')'
        return f'(?:{body})?' if end else body

    alternation = emit(trie)
    # word boundaries: only where a keyword's edge is a word character; done with
    # lookarounds so a keyword like "c++" still matches
    return rf'(?<![\w])(?:{alternation})(?![\w])' if words else r'(?!x)x'


class RegexFilter:
    """Any of `patterns` (Python regular-expression syntax, compiled at load) over the
    folded text. The policy's search runs with one deadline (`timeout_ms`, default
    20) for all its patterns together: patterns that backtrack without end cannot
    stall a worker; a timeout is a finding of kind ``timeout`` (the policy's action
    applies, fail closed).

    PERF: a pattern runs only on a text that holds what every match of it must
    contain (`aegisflow.policy.screen`: a literal, or a run of character classes),
    tested once for all the patterns that share it. Most texts hold few of them,
    so 50 patterns cost little more than one. A pattern runs as written (its flags,
    groups and every match), or not at all."""

    max_match = 256

    def __init__(self, patterns, timeout_ms=20, max_match=256):
        self.patterns = [regex.compile(p, regex.V0) for p in patterns]
        self.timeout = timeout_ms / 1000
        self.max_match = max_match
        needs = [requirement(p) for p in patterns]
        distinct = {}
        for need in needs:
            if need is not None:
                distinct.setdefault(need.key, need)
        # the distinct requirements, and each pattern's index among them (-1: none)
        self.needs = tuple(distinct.values())
        keys = list(distinct)
        self.screens = tuple(-1 if n is None else keys.index(n.key) for n in needs)
        self.fold = any(getattr(n, 'icase', False) for n in self.needs)

    def scan(self, text):
        found = []
        haystack = text.text
        folded = haystack.casefold() if self.fold else None
        present = [need.test(haystack, folded) for need in self.needs]
        deadline = time.monotonic() + self.timeout
        for pattern, screen in zip(self.patterns, self.screens, strict=True):
            if screen >= 0 and not present[screen]:
                continue
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                for m in pattern.finditer(haystack, timeout=remaining):
                    if m.end() > m.start():
                        found.append(Finding('regex', m.start(), m.end()))
            except TimeoutError:
                log.warning(
                    'regex policy timed out', extra={'pattern': pattern.pattern[:80]}
                )
                return [Finding('timeout', 0, len(haystack))]
        return found


class PiiFilter:
    """Validated PII and secrets of the configured `kinds` (aegisflow.policy.pii)."""

    # NOTE: longer values (a JWT, a PEM block) are held by `hold_from` while open
    max_match = 256

    def __init__(self, kinds):
        kinds = tuple(kinds)
        if 'ip_address' in kinds:
            kinds += ('ipv6',)
        self.kinds = kinds

    def hold_from(self, text):
        """Where a value that may still be growing at the end of a stream window
        starts, or None: an open PEM block, a last token that looks like a key or a
        JWT. The stream holds it back, however long, until it ends."""
        at = None
        if 'private_key' in self.kinds:
            i = text.rfind('-----BEGIN')
            end = text.find('-----END', i) if i >= 0 else -1
            if i >= 0 and (end < 0 or text.find('KEY-----', end) < 0):
                at = i
        if 'api_key' in self.kinds or 'jwt' in self.kinds:
            j = max(text.rfind(' '), text.rfind('\n'), text.rfind('\t')) + 1
            tail = text[j:]
            if len(tail) >= 3 and (
                'eyJ' in tail or any(p in tail for p in pii.KEY_PREFIXES)
            ):
                at = j if at is None else min(at, j)
        return at

    def scan(self, text):
        latin = text.latin()
        # NOTE: the folded text's cache (its digit shape, its long tokens) describes
        # `text.text`; a text whose look-alikes changed gets a cache of its own
        return [
            Finding(*f)
            for f in pii.find(latin, self.kinds, text if latin is text.text else None)
        ]


class InjectionFilter:
    """Prompt-injection heuristics (aegisflow.policy.injection); a finding per signal
    when the text's score reaches `threshold`."""

    max_match = 420  # the longest span a rule matches

    def __init__(self, threshold=0.5, learned=True, model=None):
        self.threshold = threshold
        # the learned model: `model`, else the shipped one (loaded with the
        # config, not by a request); none with `learned=False`: the rules alone
        # (what the model is trained on top of)
        self.model = (model or injection_model.model()) if learned else None

    def score(self, text):
        return injection.score(
            text.leet(),
            text.text,
            present=injection.GATES.intersection(text.words()),
            tokens=text.long_tokens(),
            raw=text.original,
            words=text.words(),
            model=self.model,
        )

    def scan(self, text):
        total, signals = self.score(text)
        if total < self.threshold:
            return []
        return [Finding(name, s, e) for name, s, e in signals]


def load_class(path):
    """The class a dotted path names (``package.module.Class``); raises ValueError with
    the reason."""
    module_name, _, attr = path.rpartition('.')
    if not module_name:
        raise ValueError('a dotted path package.module.Class')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f'an importable module ({exc})') from None
    cls = getattr(module, attr, None)
    if cls is None or not callable(getattr(cls, 'scan', None)):
        raise ValueError(f'a class with a scan(text) method in {module_name}')
    return cls
