"""The learned half of the injection detector: a linear model over the words and the
word pairs of a text, read on the same leetspeak skeleton the rules read
(`Folded.words`), trained offline by ``bench/policy_eval/train_injection.py`` and
shipped as ``injection_model.json``.

Why: the rules read patterns somebody wrote down; the model reads which words an
attack is made of (a persona that "answers anything", a task "before you reply",
"no warnings") in orders no pattern states. It is scored with dictionary lookups and
sums: no network, no GPU, no dependency.

A text is read in windows of `WINDOW` words overlapping by half, so an instruction
hidden in a long document weighs what the same words weigh alone, and a long
document does not add up faint words into a block. Each occurrence of a word or a
pair adds its weight; a text's probability is its highest window's. The trainer
folds its calibration into the bias: probability 0.5 is the point at which the
model flags alone within the false-positive budget it was trained for (`meta`).
"""

import itertools
import json
import math
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'injection_model.json')
WINDOW = 120  # words
STEP = WINDOW // 2


def starts(n):
    """The first word of each window over `n` words."""
    return range(0, max(1, n - STEP), STEP)


def features(words):
    """One window's features, one per occurrence: ``('w', word)`` for each word and
    ``('p', 'a b')`` for each adjacent pair (what the trainer counts)."""
    return [('w', w) for w in words] + [
        ('p', a + ' ' + b) for a, b in zip(words, words[1:], strict=False)
    ]


class Model:
    """Weights of words and of word pairs ("a b"), and a bias."""

    __slots__ = ('words', 'pairs', 'bias', 'meta', '_pairs')

    def __init__(self, words, pairs, bias, meta=None):
        self.words = words
        self.pairs = pairs
        self.bias = bias
        self.meta = meta or {}
        self._pairs = {tuple(pair.split(' ', 1)): w for pair, w in pairs.items()}

    @classmethod
    def load(cls, path=PATH):
        """The model in a weights file; ValueError (or OSError) saying what is
        wrong with it."""
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except ValueError as exc:
                raise ValueError(f'not JSON ({exc})') from None
        if not isinstance(data, dict) or not {'words', 'pairs', 'bias'} <= data.keys():
            raise ValueError('no "words", "pairs" and "bias"')
        words, pairs, bias = data['words'], data['pairs'], data['bias']
        if not (
            isinstance(words, dict)
            and isinstance(pairs, dict)
            and isinstance(bias, int | float)
            and all(isinstance(v, int | float) for v in words.values())
            and all(isinstance(v, int | float) for v in pairs.values())
            and all(' ' in k for k in pairs)
        ):
            raise ValueError('"words" and "pairs" must map to numbers, "bias" a number')
        return cls(words, pairs, float(bias), data.get('meta'))

    def logit(self, words):
        """The highest window's log-odds that `words` (a skeleton's words) attack."""
        n = len(words)
        if n == 0:
            return -30.0
        # PERF: the lookups run in map() (C loops, pairs keyed by zip's tuples: no
        # string is built); each window is a difference of prefix sums
        single = map(self.words.get, words, itertools.repeat(0.0))
        pairs = zip(words, words[1:], strict=False)
        paired = map(self._pairs.get, pairs, itertools.repeat(0.0))
        if n <= WINDOW:
            return self.bias + sum(single) + sum(paired)
        ones = list(itertools.accumulate(single, initial=0.0))
        twos = list(itertools.accumulate(paired, initial=0.0))
        # a window [s, e) holds the pairs that start at s .. e - 2
        best = max(
            ones[e] - ones[s] + twos[e - 1] - twos[s]
            for s in starts(n)
            for e in (min(n, s + WINDOW),)
        )
        return self.bias + best

    def probability(self, words):
        z = self.logit(words)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


_LOADED = {}  # (path, mtime, size) -> Model


def model():
    """The shipped model, loaded once per process."""
    return load(PATH)


def load(path):
    """The model in the weights file at `path` (the shipped one, or a retrained
    one a policy names), loaded once per process and again when the file changes
    (a reload after retraining into the same file reads the new weights)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    found = _LOADED.get(key)
    if found is None:
        found = _LOADED[key] = Model.load(path)
    return found
