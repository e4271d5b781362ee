"""Train the injection detector's learned model (`aegisflow.policy.injection_model`)
and write ``aegisflow/policy/injection_model.json``.

    make train-injection                          # the development split
    make train-injection DATA="mine.jsonl more.jsonl"   # and your own sets too

Each line of a set is ``{"label": "attack" | "benign", "text": ...}``, optionally with
a ``family`` (benign ``hard`` text gets the looser false-positive budget) and a
``source`` (items from one source are kept in one fold: near-duplicates must not
leak between a fold and the rest); an item with ``"learn": false`` is measured by
`evaluate.py` but not trained on. The held-out split is never read.

What it does, deterministically: logistic regression with L2 over each window's
word and word-pair counts (the runtime's own `features`), classes weighted
equally, full-batch Adam with numpy. A benign text gives one example per window; an
attack its first window (of its ``payload``, the injected part, when the item names
one). Features seen in fewer than two examples are dropped.

Calibration: the set is cut into five folds by source; each fold is scored by a
model trained on the other four. From those out-of-fold scores come the L2 and the
probability the model must reach to flag on top of the rules: the lowest at which
rules-or-model flags at most 1% of each ordinary benign family and 3% of hard
benign text. That probability is folded into the bias, so 0.5 stays the policy's
default threshold. The out-of-fold recall it prints is the honest estimate of what
the model adds; `bench/policy_eval/evaluate.py` then measures the shipped model on
the held-out split.
"""

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from aegisflow.policy.filters import InjectionFilter  # noqa: E402
from aegisflow.policy.injection_model import PATH  # noqa: E402
from aegisflow.policy.injection_model import WINDOW  # noqa: E402
from aegisflow.policy.injection_model import Model  # noqa: E402
from aegisflow.policy.injection_model import features  # noqa: E402
from aegisflow.policy.injection_model import starts  # noqa: E402
from aegisflow.policy.normalize import Folded  # noqa: E402

DEV = os.path.join(HERE, 'data', 'injection_dev.jsonl')
L2S = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
STEPS = 300
RATE = 0.05
FOLDS = 5
MAX_FP = {'hard': 0.03}  # every other benign family: 1%
PRUNE = 0.005  # weights smaller than this are not shipped
RULES = InjectionFilter(0.5, learned=False)


class Item:
    __slots__ = ('attack', 'family', 'source', 'words', 'taught', 'rules')

    def __init__(self, row, path):
        self.attack = row['label'] == 'attack'
        self.family = row.get('family', row['label'])
        self.source = row.get('source', path)
        text = Folded(row['text'])
        self.words = text.words()  # what is scored
        # what is learned from: an injection inside a document, its own words
        payload = row.get('payload')
        self.taught = Folded(payload).words() if payload else self.words
        self.rules = RULES.score(text)[0] >= 0.5

    def fold(self):
        digest = hashlib.sha256(self.source.encode()).hexdigest()
        return int(digest, 16) % FOLDS


def examples(items):
    """(each example's feature list, labels)."""
    xs, ys = [], []
    for item in items:
        n = len(item.taught)
        for s in starts(n)[:1] if item.attack else starts(n):
            xs.append(features(item.taught[s : s + WINDOW]))
            ys.append(1.0 if item.attack else 0.0)
    return xs, np.array(ys)


def fit(items, l2):
    """A `Model` trained on `items` (bias not yet calibrated)."""
    xs, ys = examples(items)
    seen = {}
    for x in xs:
        for f in set(x):
            seen[f] = seen.get(f, 0) + 1
    vocab = sorted(f for f, k in seen.items() if k >= 2)
    index = {f: i for i, f in enumerate(vocab)}
    rows, cols = [], []
    for r, x in enumerate(xs):
        for f in x:
            i = index.get(f)
            if i is not None:
                rows.append(r)
                cols.append(i)
    w, b = _descend(np.array(rows), np.array(cols), ys, len(vocab), l2)
    words, pairs = {}, {}
    for (kind, key), v in zip(vocab, w.tolist(), strict=True):
        (words if kind == 'w' else pairs)[key] = v
    return Model(words, pairs, float(b))


def _descend(rows, cols, ys, d, l2):
    n = len(ys)
    positives = ys.sum()
    sample = np.where(ys == 1, 0.5 / positives, 0.5 / (n - positives))
    w, b = np.zeros(d), 0.0
    m_w, v_w, m_b, v_b = np.zeros(d), np.zeros(d), 0.0, 0.0
    for t in range(1, STEPS + 1):
        z = np.bincount(rows, weights=w[cols], minlength=n) + b
        g = (1 / (1 + np.exp(-z)) - ys) * sample
        grad_w = np.bincount(cols, weights=g[rows], minlength=d) + l2 * w
        grad_b = g.sum()
        m_w = 0.9 * m_w + 0.1 * grad_w
        v_w = 0.999 * v_w + 0.001 * grad_w**2
        m_b = 0.9 * m_b + 0.1 * grad_b
        v_b = 0.999 * v_b + 0.001 * grad_b**2
        step = RATE * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w -= step * m_w / (np.sqrt(v_w) + 1e-8)
        b -= step * m_b / (math.sqrt(v_b) + 1e-8)
    return w, b


def threshold(items, scores):
    """The lowest probability at which rules-or-model stays within every benign
    family's false-positive budget."""
    tau = 0.5
    for family in sorted({i.family for i in items if not i.attack}):
        members = [
            k for k, i in enumerate(items) if not i.attack and i.family == family
        ]
        budget = int(MAX_FP.get(family, 0.01) * len(members))
        budget -= sum(items[k].rules for k in members)
        rest = sorted((scores[k] for k in members if not items[k].rules), reverse=True)
        if len(rest) > max(0, budget):
            tau = max(tau, rest[max(0, budget)] + 1e-6)
    return min(tau, 0.9999)


def recall(items, flags):
    attacks = [f for f, i in zip(flags, items, strict=True) if i.attack]
    return sum(attacks) / len(attacks)


def calibrate(items):
    """(L2, calibrated probability, out-of-fold report) by out-of-fold scores."""
    best = None
    for l2 in L2S:
        scores = [0.0] * len(items)
        for k in range(FOLDS):
            model = fit([i for i in items if i.fold() != k], l2)
            for n, item in enumerate(items):
                if item.fold() == k:
                    scores[n] = model.probability(item.words)
        tau = threshold(items, scores)
        alone = recall(items, [s >= tau for s in scores])
        flags = [i.rules or s >= tau for s, i in zip(scores, items, strict=True)]
        both = recall(items, flags)
        print(
            f'L2 {l2:g}: out-of-fold recall {both:.3f} with the rules '
            f'({alone:.3f} alone) at p >= {tau:.4f}'
        )
        if best is None or both > best[0]:
            best = (both, l2, tau, alone)
    report = {'with_rules': round(best[0], 4), 'alone': round(best[3], 4)}
    return best[1], best[2], report


def load(paths):
    items = []
    for path in paths:
        name = os.path.relpath(path, ROOT)
        with open(path, encoding='utf-8') as f:
            rows = [json.loads(line) for line in f if line.strip()]
        items += [Item(row, name) for row in rows if row.get('learn', True)]
    return items


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data', nargs='*', help='more JSONL sets to train on')
    parser.add_argument('--out', default=PATH)
    parser.add_argument(
        '--base', default=DEV, help="the set trained on before DATA ('' for none)"
    )
    args = parser.parse_args(argv)
    paths = ([args.base] if args.base else []) + args.data
    items = load(paths)
    rules = recall(items, [i.rules for i in items])
    print(f'{len(items)} items; the rules alone flag {rules:.3f} of the attacks')
    l2, tau, oof = calibrate(items)
    model = fit(items, l2)
    bias = model.bias - math.log(tau / (1 - tau))  # NOTE: p >= tau becomes p >= 0.5
    xs, ys = examples(items)
    out = {
        'bias': round(bias, 4),
        'meta': {
            'trained_on': [os.path.relpath(p, ROOT) for p in paths],
            'items': len(items),
            'examples': len(xs),
            'attack_examples': int(ys.sum()),
            'window_words': WINDOW,
            'l2': l2,
            'calibrated_probability': round(tau, 6),
            'out_of_fold_recall': oof,
        },
        'pairs': _shipped(model.pairs),
        'words': _shipped(model.words),
    }
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(out, f, ensure_ascii=False, separators=(',', ':'), sort_keys=True)
        f.write('\n')
    kept = len(out['words']) + len(out['pairs'])
    where = os.path.relpath(args.out, ROOT)
    print(f'L2 {l2:g}, flags at p >= {tau:.4f}; {kept} weights -> {where}')


def _shipped(weights):
    return {k: round(v, 3) for k, v in sorted(weights.items()) if abs(v) >= PRUNE}


if __name__ == '__main__':
    main()
